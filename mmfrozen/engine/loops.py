"""An epoch-based train loop whose ``--resume`` continues bit for bit where the run stopped.

MMEngine's :class:`~mmengine.runner.EpochBasedTrainLoop` restores the epoch and the iteration
count, but not the random generators, and an interrupted epoch restarts at its first batch. This
loop, with :class:`~mmfrozen.engine.hooks.RNGStateHook` (which it registers), makes a resumed
run equal to an uninterrupted one, given ``randomness = dict(seed=..., deterministic=True)``:

* every rank's Python, NumPy, torch and CUDA generator states are saved in each checkpoint and
  restored at the iteration the checkpoint was written at;
* a checkpoint written within an epoch (``CheckpointHook(by_epoch=False)``) resumes at its
  batch: the batches already trained are drawn from the data loader and discarded (not trained
  on), so that the sampler, and data-loader workers seeded at the epoch's start, are where they
  were;
* drawing the data loader's base seed and validating do not advance the random generators, so
  that the uninterrupted run draws, after each checkpoint, what the resumed run draws.

A config opts in with ``train_cfg = dict(type='ExactResumeEpochBasedTrainLoop')``. Randomness
that lives in persistent data-loader workers (``persistent_workers=True`` with a random
pipeline) carries over epochs inside the workers and is not restored; the loop warns.
"""
import logging
from typing import Any, Dict, Iterator, Optional

from mmengine.logging import print_log
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.runner import EpochBasedTrainLoop

from mmdet.registry import LOOPS
from mmfrozen.engine.hooks.rng_state_hook import (RNGStateHook, preserved_rng_state,
                                                  restore_rng_state)


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
        hooks = [hook for hook in runner.hooks if isinstance(hook, RNGStateHook)]
        if hooks:
            self.rng_hook = hooks[0]
        else:
            self.rng_hook = RNGStateHook()
            runner.register_hook(self.rng_hook)
        if getattr(self.dataloader, 'persistent_workers', False):
            print_log(
                'ExactResumeEpochBasedTrainLoop: persistent data-loader workers keep their '
                'random state across epochs, which checkpoints cannot hold; a resumed run is '
                'bit-identical only if the training pipeline draws no random numbers. Set '
                'train_dataloader.persistent_workers=False for exact resumes.',
                logger='current', level=logging.WARNING)

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
                with preserved_rng_state():
                    self.runner.val_loop.run()

        self.runner.call_hook('after_train')
        return self.runner.model

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
                next(batches)
            if resume['rng'] is not None:
                restore_rng_state(resume['rng'])
            else:
                self.runner.logger.warning(
                    'The checkpoint holds no random states (written without '
                    'ExactResumeEpochBasedTrainLoop): the resumed run will draw other random '
                    'numbers than an uninterrupted one.')
        return batches

    def run_epoch(self, resume: Optional[Dict[str, Any]] = None) -> None:
        """Iterate one epoch, from the checkpoint's batch when resuming.

        Args:
            resume: what :meth:`_resume_point` returned, for the first epoch after a resume.
        """
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        start = resume['done_in_epoch'] if resume is not None else 0
        for idx, data_batch in enumerate(self._batches(resume), start=start):
            self.run_iter(idx, data_batch)

        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
