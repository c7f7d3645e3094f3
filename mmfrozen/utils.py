"""Small helpers shared across mmfrozen: a config's experiment arm, the model inside a wrapper,
and writing a file atomically (to the disk, ``fsync``-ed).

(LVIS's frequency group of a class is :func:`mmfrozen.evaluation.annotation_stats.frequency_group`;
parameter counts are :func:`mmfrozen.cost.count_parameters`.)
"""
import os
import os.path as osp
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from mmengine.model import is_model_wrapper
from torch import nn

#: The experiment arms, spelled as the config names spell them (``...-frozen_...``);
#: ``lastlayers``: few-shot fine-tuning of the last box layers only (TFA's).
FROZEN, FINETUNE, SCRATCH, STAGE2 = 'frozen', 'finetune', 'scratch', 'stage2'
LAST_LAYERS = 'lastlayers'
ARMS = (FROZEN, FINETUNE, SCRATCH, STAGE2, LAST_LAYERS)


def config_arm(name: str, cfg: Optional[Any] = None) -> Optional[str]:
    """The experiment arm of a config: frozen, fine-tuned, from scratch, LVIS stage 2 or
    last layers only.

    The config's name says it first (``faster-rcnn_r50-frozen_fpn_1x_coco`` is frozen,
    ``...-finetune_...`` fine-tuned, ``...-scratch_...`` from scratch, ``..._stage2-...`` an LVIS
    stage-2 classifier fine-tuning, ``...-lastlayers_...`` a few-shot fine-tuning of the last
    box layers only). A name without such a token is read from the config
    itself, when given: a ``frozen`` field that names modules means frozen; a backbone without
    ``init_cfg`` and no ``load_from`` means from scratch; anything else fine-tuned.

    Args:
        name: the config's file name or path.
        cfg: the loaded config (an MMEngine ``Config`` or dict), for names without a token.

    Returns:
        str or None: one of :data:`ARMS`; None when the name has no token and no config is
        given.
    """
    stem = osp.splitext(osp.basename(name))[0]
    for arm in (FROZEN, FINETUNE, SCRATCH, LAST_LAYERS):
        if f'-{arm}_' in stem:
            return arm
    if STAGE2 in stem:
        return STAGE2
    if cfg is None:
        return None
    if (cfg.get('frozen') or {}).get('modules'):
        return FROZEN
    backbone = (cfg.get('model') or {}).get('backbone') or {}
    if not backbone.get('init_cfg') and not cfg.get('load_from'):
        return SCRATCH
    return FINETUNE


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside a DDP / ``MMDistributedDataParallel`` wrapper, or the model itself.

    Args:
        model: a model, wrapped or not (MMEngine's ``is_model_wrapper`` decides).

    Returns:
        nn.Module: the wrapped model.
    """
    return model.module if is_model_wrapper(model) else model


@contextmanager
def atomic_write(path: str, suffix: str = '') -> Iterator[str]:
    """Write ``path`` through a temporary file that replaces it only when writing succeeded.

    The temporary file, in the same folder, is flushed to disk (``fsync``) before
    ``os.replace`` puts it in place, and the folder after, so that a crash, a full disk or an
    error mid-write never leaves a truncated ``path`` behind (readers see the old file or the
    new one, also after a power loss). On an error the temporary file is removed; a process
    killed mid-write leaves only ``<path>.tmp<suffix>``.

    Args:
        path: the file to write; its folder is created.
        suffix: ending the temporary name needs, for writers that add one (``'.npz'`` for
            ``np.savez``).

    Yields:
        str: the temporary path to write to, next to ``path``.

    Example:
        >>> with atomic_write('out/cost.json') as tmp:
        ...     mmengine.dump(report, tmp, file_format='json')
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = temporary_path(path, suffix)
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(folder)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def temporary_path(path: str, suffix: str = '') -> str:
    """The temporary file :func:`atomic_write` writes ``path`` through."""
    return f'{path}.tmp{suffix}'


def fsync_path(path: str) -> None:
    """Flush a written file, or a folder's entries, to the disk.

    Args:
        path: a file (closed by its writer) or a folder. Folders cannot be opened where the
            system has no ``O_DIRECTORY`` (Windows); there this does nothing for them.
    """
    if osp.isdir(path):
        if not hasattr(os, 'O_DIRECTORY'):
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    else:
        fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
