"""A checkpoint hook that never leaves a broken checkpoint behind.

MMEngine 0.10.7's :class:`~mmengine.hooks.CheckpointHook` has ``Runner.save_checkpoint`` write
``epoch_N.pth`` / ``iter_N.pth`` in place (``LocalBackend.put`` opens the final name and
writes), so a crash or a full disk mid-write leaves a truncated file under the checkpoint's own
name. It writes ``last_checkpoint`` in place too (a crash between truncating and writing leaves
it empty, and ``--resume`` fails). With ``max_keep_ckpts`` it deletes the oldest checkpoint
*before* writing the new one: with ``max_keep_ckpts=1`` a failed write leaves no checkpoint at
all, and ``last_checkpoint`` names the deleted file.

:class:`AtomicCheckpointHook` keeps every argument and behaviour of ``CheckpointHook`` and, for
checkpoints on the local file system:

* writes each checkpoint (``epoch_N.pth``, ``iter_N.pth``, ``best_*.pth``) to
  ``<name>.tmp`` in the same folder, ``fsync``-s it and renames it into place
  (:func:`mmfrozen.utils.atomic_write`), so a checkpoint's name only ever holds a complete file;
* writes ``last_checkpoint`` the same way, after the checkpoint it names is complete;
* deletes the checkpoints that ``max_keep_ckpts`` drops only after the new one is complete;
* on a failed write (``ENOSPC``, ...) raises :class:`CheckpointWriteError` naming the file and
  the checkpoint ``last_checkpoint`` still names, and leaves no temporary file behind; a
  ``<name>.tmp`` that a killed process left is removed when training starts again.

Other storage backends (``backend_args=dict(backend='petrel')``, ...) write an object in one
request and are used as ``CheckpointHook`` uses them. Published copies (``published_keys``) are
written by MMEngine as before, from a complete checkpoint, after training.

A config opts in with::

    default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1))
"""
import glob
import inspect
import os.path as osp
from collections import deque
from typing import Any, Callable, List, Optional

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.fileio import FileClient, LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS as MMENGINE_HOOKS

from mmfrozen.utils import atomic_write, temporary_path

LAST_CHECKPOINT = 'last_checkpoint'


class CheckpointWriteError(OSError):
    """A checkpoint could not be written; no partial file of it was left behind."""


def writes_local_files(out_dir: str, file_client_args: Optional[dict] = None,
                       backend_args: Optional[dict] = None) -> bool:
    """Whether checkpoints under ``out_dir`` go to the local file system.

    Args:
        out_dir: the checkpoint folder (or URI).
        file_client_args: ``CheckpointHook``'s deprecated ``file_client_args``.
        backend_args: ``CheckpointHook``'s ``backend_args``.

    Returns:
        bool: True for MMEngine's local (hard disk) backend.
    """
    if file_client_args is not None:
        backend = FileClient.infer_client(file_client_args, out_dir).client
    else:
        backend = get_file_backend(out_dir, backend_args=backend_args)
    return isinstance(backend, LocalBackend)


def read_last_checkpoint(work_dir: str) -> Optional[str]:
    """What ``<work_dir>/last_checkpoint`` names, or None if there is none."""
    path = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return f.read().strip() or None


class AtomicSaveCheckpoint:
    """A runner's ``save_checkpoint`` that writes local files through a temporary file.

    Installed by :class:`AtomicCheckpointHook` on the runner it is registered in (that runner
    only), so that every checkpoint the run writes through ``runner.save_checkpoint`` (regular,
    best, another hook's) is complete or absent.

    Args:
        save_checkpoint: the runner's own (bound) ``save_checkpoint``.
        work_dir: the runner's work folder, where ``last_checkpoint`` lives (for messages).
    """

    def __init__(self, save_checkpoint: Callable, work_dir: str) -> None:
        self.save_checkpoint = save_checkpoint
        self.work_dir = work_dir
        self._signature = inspect.signature(save_checkpoint)

    def __call__(self, out_dir: str, filename: str, *args: Any, **kwargs: Any) -> Any:
        """Save as the runner does; on the local file system through ``<filename>.tmp``."""
        given = self._signature.bind(out_dir, filename, *args, **kwargs).arguments
        if not is_main_process() or not writes_local_files(
                out_dir, given.get('file_client_args'), given.get('backend_args')):
            # rank > 0 writes nothing (Runner.save_checkpoint is master_only); object stores
            # write an object in one request
            return self.save_checkpoint(out_dir, filename, *args, **kwargs)
        path = osp.join(out_dir, filename)
        try:
            with atomic_write(path):
                return self.save_checkpoint(out_dir, temporary_path(filename), *args, **kwargs)
        except OSError as exc:
            last = read_last_checkpoint(self.work_dir)
            where = (f'{osp.join(self.work_dir, LAST_CHECKPOINT)} still names {last}, which is '
                     'complete: continue from it with --resume' if last else
                     'no earlier checkpoint exists: start again')
            message = (f'Could not write checkpoint {path}: {exc.strerror or exc}. No part of '
                       f'it was left behind; {where} once the cause (a full disk?) is fixed.')
            error = (CheckpointWriteError(exc.errno, message) if exc.errno is not None else
                     CheckpointWriteError(message))
            raise error from exc


@MMENGINE_HOOKS.register_module()
@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`~mmengine.hooks.CheckpointHook` whose checkpoints are complete or absent.

    Same arguments as ``CheckpointHook``. See the module's docstring for what changes on the
    local file system; with another storage backend it is ``CheckpointHook``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = False

    def before_train(self, runner) -> None:
        """Set up as ``CheckpointHook``; make this runner's saves atomic on local files."""
        super().before_train(runner)
        self._local = writes_local_files(self.out_dir, self.file_client_args,
                                         self.backend_args)
        if not self._local:
            return
        if not isinstance(runner.save_checkpoint, AtomicSaveCheckpoint):
            runner.save_checkpoint = AtomicSaveCheckpoint(runner.save_checkpoint,
                                                          runner.work_dir)
        if is_main_process():
            self._remove_partial_files(runner)

    def _remove_partial_files(self, runner) -> None:
        # what a process killed mid-write left (the disk may be full of it)
        folder = glob.escape(self.out_dir)
        patterns = [self.filename_tmpl.format('*'), 'best_*']
        for pattern in patterns:
            for partial in glob.glob(temporary_path(osp.join(folder, pattern))):
                runner.logger.warning(f'Removing {partial}: a checkpoint write that did not '
                                      'finish (the process was killed).')
                self._remove(partial)

    def _save_checkpoint_with_step(self, runner, step: int, meta: dict) -> None:
        """Save checkpoint ``step``, then ``last_checkpoint``, then drop the oldest kept one."""
        if not self._local:
            super()._save_checkpoint_with_step(runner, step, meta)
            return
        before = (self.last_ckpt, runner.message_hub.get_info('last_ckpt'),
                  list(getattr(self, 'keep_ckpt_ids', [])))
        dropped = self._keep(runner, step)
        filename = self.filename_tmpl.format(step)
        # in the message hub before saving, as CheckpointHook does: the checkpoint holds it
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        try:
            runner.save_checkpoint(
                self.out_dir, filename, self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args, **self.args)
        except BaseException:
            self._restore(runner, *before)
            raise
        if not is_main_process():
            return
        with atomic_write(osp.join(runner.work_dir, LAST_CHECKPOINT)) as tmp, \
                open(tmp, 'w') as f:
            f.write(self.last_ckpt)
        for old_step in dropped:
            self._remove(self.file_backend.join_path(self.out_dir,
                                                     self.filename_tmpl.format(old_step)))

    def _keep(self, runner, step: int) -> List[int]:
        """Record ``step`` among the kept checkpoints; the steps it pushes out (max_keep_ckpts).

        Saving the same step again (the best-checkpoint hook re-saves the last one) keeps the
        list as it is.
        """
        if self.max_keep_ckpts <= 0:
            return []
        if self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step:
            return []
        dropped = []
        while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
            dropped.append(self.keep_ckpt_ids.popleft())
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        return dropped

    def _restore(self, runner, last_ckpt: Optional[str], hub_last_ckpt: Optional[str],
                 kept: List[int]) -> None:
        """Undo the bookkeeping of a save that failed."""
        self.last_ckpt = last_ckpt
        if hub_last_ckpt is None:
            runner.message_hub.runtime_info.pop('last_ckpt', None)
        else:
            runner.message_hub.update_info('last_ckpt', hub_last_ckpt)
        if self.max_keep_ckpts > 0:
            self.keep_ckpt_ids = deque(kept, self.max_keep_ckpts)
            runner.message_hub.update_info('keep_ckpt_ids', list(kept))

    def _remove(self, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # checkpoints saved by DeepSpeed are folders
            self.file_backend.rmtree(path)
