"""What the runner does for a ``DetectorGroup`` run beyond a single run: ``DetectorGroupHook``.

* Before the run: refuses a group config whose training data or schedule differs from its
  detectors' (naming detector and field), builds each detector's ``param_scheduler`` from its
  own config (when the group config's is None), and writes each detector's config to
  ``<work_dir>/<name>/``.
* Checkpoints: writes each detector's random stream into the group's checkpoint (an exact
  ``--resume``), and after each checkpoint the group writes, a checkpoint per detector,
  ``<work_dir>/<name>/<same file name>``, that the detector's own config loads as if it had
  been trained alone (``tools/test.py <its config> <that file>``), with its ``last_checkpoint``.
* Validation: each detector's metrics, without the name prefix, in
  ``<work_dir>/<name>/metrics/val_<iteration>.json`` (``tools/compare.py`` reads a group's
  work dir as one run per detector; ``detector_group.json`` at the root lists them).
"""
import json
import os
import os.path as osp
from typing import Any, Dict, Optional

import torch
from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.optim import OptimWrapperDict

from mmfrozen.models.detector_group import (DetectorGroup, DetectorGroupError, config_field,
                                            split_state_dict, _show)
from mmfrozen.utils import atomic_write, unwrap_model

#: The group checkpoint's key holding each detector's random stream.
STREAMS_KEY = 'detector_group_rng'
#: The file at a group run's work dir root that names its detectors.
GROUP_INDEX = 'detector_group.json'
#: Fields of the group config that each detector's config must have the same.
GROUP_RUN_FIELDS = ('train_dataloader.dataset.pipeline', 'train_dataloader.batch_size',
                    'train_dataloader.sampler', 'train_cfg', 'randomness')


def _group(runner) -> DetectorGroup:
    model = unwrap_model(runner.model)
    if not isinstance(model, DetectorGroup):
        raise TypeError(f'DetectorGroupHook serves a DetectorGroup model; this run has '
                        f'{type(model).__name__} ({runner.cfg.filename})')
    return model


@HOOKS.register_module()
class DetectorGroupHook(Hook):
    """Per-detector schedules, checkpoints and metrics of a ``DetectorGroup`` run."""

    priority = 'LOWEST'  # after the checkpoint hook (VERY_LOW) has saved

    def __init__(self) -> None:
        self._pending: Optional[dict] = None
        self._exported: Optional[str] = None

    def before_run(self, runner) -> None:
        """Check the group's data and schedule, build each detector's schedulers, dump configs."""
        model = _group(runner)
        source = runner.cfg.filename or 'the group config'
        for name, cfg in model.detector_cfgs.items():
            for field in GROUP_RUN_FIELDS:
                ours, theirs = config_field(runner.cfg, field), config_field(cfg, field)
                if ours != theirs:
                    raise DetectorGroupError(
                        f'detector {name!r} ({cfg.filename}): {field} differs from the group '
                        f"config's ({source}), which trains every detector: {_show(theirs)} vs "
                        f'{_show(ours)}')
        # training only: tools/test.py builds no optimizer wrapper
        if runner.param_schedulers is None and isinstance(getattr(runner, 'optim_wrapper', None),
                                                          OptimWrapperDict):
            schedulers = {name: list(cfg.get('param_scheduler') or [])
                          for name, cfg in model.detector_cfgs.items()}
            runner.param_schedulers = runner.build_param_scheduler(schedulers)
        if is_main_process():
            for name, cfg in model.detector_cfgs.items():
                folder = osp.join(runner.work_dir, name)
                os.makedirs(folder, exist_ok=True)
                cfg.dump(osp.join(folder, osp.basename(cfg.filename)))
            with atomic_write(osp.join(runner.work_dir, GROUP_INDEX)) as tmp:
                with open(tmp, 'w') as f:
                    json.dump(dict(detectors={name: osp.basename(cfg.filename)
                                              for name, cfg in model.detector_cfgs.items()}),
                              f, indent=1)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add each detector's random stream; keep the checkpoint to split after it is saved."""
        checkpoint[STREAMS_KEY] = _group(runner).rng_streams()
        self._pending = checkpoint

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore each detector's random stream (resume)."""
        if STREAMS_KEY in checkpoint:
            _group(runner).load_rng_streams(checkpoint[STREAMS_KEY])

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        self._export(runner)

    def after_train_epoch(self, runner) -> None:
        self._export(runner)

    def after_train(self, runner) -> None:
        self._export(runner)

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        """Write each detector's metrics, unprefixed, beside its checkpoints."""
        if not metrics or not is_main_process():
            return
        for name in _group(runner).detectors:
            own = {key[len(name) + 1:]: value for key, value in metrics.items()
                   if key.startswith(f'{name}/')}
            own.update(epoch=runner.epoch, iter=runner.iter)
            folder = osp.join(runner.work_dir, name, 'metrics')
            os.makedirs(folder, exist_ok=True)
            with atomic_write(osp.join(folder, f'val_{runner.iter:08d}.json')) as tmp:
                with open(tmp, 'w') as f:
                    json.dump(own, f, indent=1)

    def _export(self, runner) -> None:
        """Split the checkpoint the checkpoint hook just wrote into one per detector."""
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        path = getattr(hook, 'last_ckpt', None)
        if self._pending is None or path is None or path == self._exported:
            return
        checkpoint, self._pending, self._exported = self._pending, None, path
        if not is_main_process():
            return
        model = _group(runner)
        for name in model.detectors:
            folder = osp.join(runner.work_dir, name)
            os.makedirs(folder, exist_ok=True)
            target = osp.join(folder, osp.basename(path))
            with atomic_write(target) as tmp:
                torch.save(detector_checkpoint(checkpoint, name), tmp)
            with atomic_write(osp.join(folder, 'last_checkpoint')) as tmp:
                with open(tmp, 'w') as f:
                    f.write(target)


def detector_checkpoint(checkpoint: dict, name: str) -> dict:
    """Detector ``name``'s checkpoint from its group's: as if it had been trained alone.

    Args:
        checkpoint: the group's checkpoint dict.
        name: the detector's name.

    Returns:
        dict: ``meta``, ``state_dict`` (its own config's keys) and, where the group's has
        them, its ``optimizer`` and ``param_schedulers`` states.
    """
    out: Dict[str, Any] = dict(meta=dict(checkpoint.get('meta', {}), detector_group_name=name),
                               state_dict=split_state_dict(checkpoint['state_dict'], name))
    for key in ('optimizer', 'param_schedulers'):
        value = checkpoint.get(key)
        if isinstance(value, dict) and name in value:
            out[key] = value[name]
    return out
