"""An epoch-based train loop whose ``--resume`` continues bit for bit where the run stopped.

MMEngine's :class:`~mmengine.runner.EpochBasedTrainLoop` restores the epoch and the iteration
count, but not the random generators, and an interrupted epoch restarts at its first batch. This
loop, with :class:`~mmfrozen.engine.hooks.RNGStateHook` (which it registers), makes a resumed
run equal to an uninterrupted one, given ``randomness = dict(seed=..., deterministic=True)``:

* every rank's Python, NumPy, torch and CUDA generator states are saved in each checkpoint and
  restored at the iteration the checkpoint was written at;
* with persistent data-loader workers (``persistent_workers=True``, MMDetection's default) the
  workers' generator states are saved too, and a resumed run's fresh workers start from them
  (:class:`~mmfrozen.engine.hooks.WorkerRNGStateHook`, registered for such a data loader);
* a checkpoint written within an epoch (``CheckpointHook(by_epoch=False)``) resumes at its
  batch: the batches already trained are drawn from the data loader and discarded (not trained
  on), so that the sampler and the data-loader workers are where they were;
* drawing the data loader's base seed and validating do not advance the random generators, so
  that the uninterrupted run draws, after each checkpoint, what the resumed run draws.

When validation fails after an epoch (bad ground truth, a missing package), that epoch's
training is on disk before the error ends the run: the checkpoint hook saved it, or the loop
saves it then (when the hook's interval skipped this epoch), and :class:`EvaluationError` says
which file holds it and how to evaluate it alone or resume.

A config opts in with ``train_cfg = dict(type='ExactResumeEpochBasedTrainLoop')``.
"""
import os.path as osp
from typing import Any, Dict, Iterator, Optional

from mmengine.dist import get_rank, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.runner import EpochBasedTrainLoop

from mmdet.registry import LOOPS
from mmfrozen.engine.hooks.atomic_checkpoint_hook import read_last_checkpoint
from mmfrozen.engine.hooks.rng_state_hook import (RNGStateHook, preserved_rng_state,
                                                  restore_rng_state)
from mmfrozen.engine.hooks.worker_rng_state_hook import (WorkerRNGStateHook,
                                                         has_persistent_workers)


class EvaluationError(RuntimeError):
    """Validation during training failed; the message says where the training is saved."""


# mmengine's Runner builds loops from mmengine's registry when no default scope is set yet, as
# in tools/train.py: register in both (a registry never looks into its children).
@MMENGINE_LOOPS.register_module()
@LOOPS.register_module()
class ExactResumeEpochBasedTrainLoop(EpochBasedTrainLoop):
    """:class:`~mmengine.runner.EpochBasedTrainLoop` that resumes exactly, mid-epoch included.

    Same arguments as :class:`~mmengine.runner.EpochBasedTrainLoop`.
    """

    def __init__(self, runner, *args: Any, **kwargs: Any) -> None:
        super().__init__(runner, *args, **kwargs)
        self.rng_hook = self._hook(runner, RNGStateHook)
        self.worker_rng_hook = (self._hook(runner, WorkerRNGStateHook)
                                if has_persistent_workers(self.dataloader) else None)

    @staticmethod
    def _hook(runner, hook_type: type):
        """The runner's hook of ``hook_type``, registered here if the config has none."""
        hooks = [hook for hook in runner.hooks if isinstance(hook, hook_type)]
        if hooks:
            return hooks[0]
        hook = hook_type()
        runner.register_hook(hook)
        return hook

    def _resume_point(self) -> Optional[Dict[str, Any]]:
        """What to restore when this run resumed from a checkpoint of ours, else None.

        ``load_from`` (initialising from another run's weights) leaves the iteration at 0 and
        restores nothing.
        """
        loaded, was_loaded = self.rng_hook.loaded, self.rng_hook.loaded_checkpoint
        if not was_loaded or self._iter == 0:
            self.rng_hook.loaded, self.rng_hook.loaded_checkpoint = None, False
            return None
        rng = self.rng_hook.state_for_this_rank()
        self.rng_hook.loaded, self.rng_hook.loaded_checkpoint = None, False
        batches = len(self.dataloader)
        if loaded is not None and loaded.get('batches_per_epoch') not in (None, batches):
            raise RuntimeError(
                f'The checkpoint was written with {loaded["batches_per_epoch"]} batches per '
                f'epoch and this run has {batches} (another data set, batch size or number of '
                'processes?): its position in the epoch cannot be restored.')
        done_in_epoch = self._iter - self._epoch * batches
        if not 0 <= done_in_epoch <= batches:
            raise RuntimeError(
                f'The checkpoint is at iteration {self._iter}, epoch {self._epoch}, which does '
                f'not fit {batches} batches per epoch.')
        # a checkpoint of the stock loop has no random states: resume at its batch all the same
        return dict(rng=rng, done_in_epoch=done_in_epoch)

    def run(self):
        """Launch training (as :meth:`EpochBasedTrainLoop.run`, validation RNG-neutral)."""
        self.runner.call_hook('before_train')
        resume = self._resume_point()
        while self._epoch < self._max_epochs and not self.stop_training:
            self.run_epoch(resume)
            resume = None

            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._epoch >= self.val_begin
                    and (self._epoch % self.val_interval == 0
                         or self._epoch == self._max_epochs)):
                self._validate()

        self.runner.call_hook('after_train')
        return self.runner.model

    def _validate(self) -> None:
        """Run the validation loop, RNG-neutral; if it fails, say where the training is saved.

        Raises:
            EvaluationError: validation raised; chained to its error.
        """
        try:
            with preserved_rng_state():
                self.runner.val_loop.run()
        except Exception as exc:
            message = self._evaluation_failed(exc)
            self.runner.logger.error(message)
            raise EvaluationError(message) from exc

    def _evaluation_failed(self, exc: Exception) -> str:
        """Save this epoch if the checkpoint hook has not; the error message."""
        runner = self.runner
        name, not_saved = self._save_this_epoch()
        checkpoint = read_last_checkpoint(runner.work_dir)
        if name is not None and checkpoint is not None and osp.basename(checkpoint) == name:
            saved = f'The training up to here is saved in {checkpoint} (last_checkpoint names it).'
        else:
            saved = (f'The training of epoch {self._epoch} is not saved ({not_saved}); '
                     f'last_checkpoint names {checkpoint}.')
        config = runner.cfg.filename or 'CONFIG'
        return (f'Evaluation after epoch {self._epoch} (iteration {self._iter}) failed with '
                f'{type(exc).__name__}: {exc}\n{saved} Evaluate it alone: python tools/test.py '
                f'{config} {checkpoint or "CHECKPOINT"}\nOr, once the cause is fixed, continue '
                f'training from it: python tools/train.py {config} --work-dir {runner.work_dir} '
                '--resume')

    def _save_this_epoch(self):
        """Save the epoch just trained if the checkpoint hook has not (its interval skipped it).

        Returns:
            tuple: the name this epoch's checkpoint has (None without a checkpoint hook), and
            why it may be missing.
        """
        runner = self.runner
        hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
        if hook is None:
            return None, 'the run has no CheckpointHook'
        step = self._epoch if hook.by_epoch else self._iter
        name = hook.filename_tmpl.format(step)
        if not is_main_process():
            return name, f'rank 0 writes checkpoints and this is rank {get_rank()}'
        if hook.last_ckpt is None or osp.basename(str(hook.last_ckpt)) != name:
            runner.logger.info(f'Saving checkpoint {name}: validation failed, and the '
                               'checkpoint hook had not saved this epoch.')
            try:
                # the meta of a checkpoint of the epoch's end: a resume starts the next epoch
                hook._save_checkpoint_with_step(runner, step, dict(epoch=self._epoch,
                                                                   iter=self._iter))
            except Exception as exc:  # the evaluation's error is the one to raise
                return name, f'saving it failed: {type(exc).__name__}: {exc}'
        return name, 'it was not written'

    def _batches(self, resume: Optional[Dict[str, Any]]) -> Iterator:
        with preserved_rng_state():  # the loader's base seed must not shift the stream
            batches = iter(self.dataloader)
        if resume is not None:
            skip = resume['done_in_epoch']
            if skip:
                self.runner.logger.info(
                    f'Resuming epoch {self._epoch + 1} at batch {skip + 1}: drawing and '
                    f'discarding the {skip} batches already trained on.')
            for _ in range(skip):
                self._observe(next(batches))
            if resume['rng'] is not None:
                restore_rng_state(resume['rng'])
            else:
                self.runner.logger.warning(
                    'The checkpoint holds no random states (written without '
                    'ExactResumeEpochBasedTrainLoop): the resumed run will draw other random '
                    'numbers than an uninterrupted one.')
        return batches

    def _observe(self, data_batch: Any) -> None:
        """Hand a drawn batch's worker tag to the worker RNG hook (which removes it)."""
        if self.worker_rng_hook is not None:
            self.worker_rng_hook.observe(data_batch)

    def run_epoch(self, resume: Optional[Dict[str, Any]] = None) -> None:
        """Iterate one epoch, from the checkpoint's batch when resuming.

        Args:
            resume: what :meth:`_resume_point` returned, for the first epoch after a resume.
        """
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        start = resume['done_in_epoch'] if resume is not None else 0
        for idx, data_batch in enumerate(self._batches(resume), start=start):
            self._observe(data_batch)
            self.run_iter(idx, data_batch)

        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
