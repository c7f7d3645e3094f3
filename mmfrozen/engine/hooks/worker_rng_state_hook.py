"""Random-number state of persistent data-loader workers, in checkpoints.

With ``persistent_workers=True`` (MMDetection's default) the training data-loader workers live
for the whole run: the random transforms of epoch 2 (``RandomFlip``, ``RandomResize``, ...)
continue the random streams the workers drew from in epoch 1. A resumed run starts fresh
workers, seeded as at the start of training, and would flip other images than the
uninterrupted run did.

:class:`WorkerRNGStateHook` makes those streams part of the checkpoint. Each worker tags every
batch it collates with its id and its random states after the batch (:class:`TaggingCollate`);
the train loop takes the tag off before anything else sees the batch and hands it to
:meth:`WorkerRNGStateHook.observe`. At the end of each epoch the hook gathers every rank's
latest worker states: they are the states the workers start the next epoch with. A checkpoint
holds the states of the start of the epoch it resumes in; on ``--resume`` fresh workers are
set to them (:class:`RestoringWorkerInit`) and the loop's drawing of the batches already trained
in that epoch brings them to where the killed run's workers were.

:class:`~mmfrozen.engine.loops.ExactResumeEpochBasedTrainLoop` registers this hook when its
data loader has persistent workers; it needs batches that are dicts (MMEngine's
``pseudo_collate`` and ``default_collate`` of dict samples, as in MMDetection).
"""
import logging
from typing import Any, Callable, Dict, List, Optional

from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from torch.utils.data import DataLoader, get_worker_info

from mmfrozen.engine.hooks.rng_state_hook import capture_rng_state, restore_rng_state

#: The checkpoint key that holds the workers' random states.
CHECKPOINT_KEY = 'mmfrozen_worker_rng_state'
#: The key a worker adds to each batch: ``(worker id, its random states after the batch)``.
BATCH_KEY = 'mmfrozen_worker_rng'

WorkerStates = Dict[int, Dict[str, Any]]


def has_persistent_workers(dataloader: Any) -> bool:
    """Whether ``dataloader`` keeps its worker processes (and their random state) across epochs.
    """
    return (isinstance(dataloader, DataLoader) and dataloader.num_workers > 0
            and bool(dataloader.persistent_workers))


class TaggingCollate:
    """A collate function that tags each batch with its worker's id and random states.

    Runs in the worker; a dict batch gets ``batch[BATCH_KEY] = (worker id, states)``.

    Args:
        collate_fn: the data loader's collate function.
    """

    def __init__(self, collate_fn: Callable) -> None:
        self.collate_fn = collate_fn

    def __call__(self, samples: Any) -> Any:
        batch = self.collate_fn(samples)
        worker = get_worker_info()
        if worker is not None and isinstance(batch, dict):
            batch[BATCH_KEY] = (worker.id, capture_rng_state())
        return batch


class RestoringWorkerInit:
    """A worker init function that seeds as before, then restores the worker's saved states.

    Args:
        worker_init_fn: the data loader's own (MMEngine's seeding), or None.
        states: worker id -> random states to start with.
    """

    def __init__(self, worker_init_fn: Optional[Callable], states: WorkerStates) -> None:
        self.worker_init_fn = worker_init_fn
        self.states = states

    def __call__(self, worker_id: int) -> None:
        if self.worker_init_fn is not None:
            self.worker_init_fn(worker_id)
        if worker_id in self.states:
            restore_rng_state(self.states[worker_id])


@HOOKS.register_module()
class WorkerRNGStateHook(Hook):
    """Save and restore the random states of persistent training data-loader workers.

    ``checkpoint['mmfrozen_worker_rng_state']`` holds ``start`` (per rank, the states of each
    worker at the start of the epoch a resumed run continues in; None for the first epoch,
    whose workers start from their seeds), ``num_workers`` and ``world_size``.

    :class:`~mmfrozen.engine.loops.ExactResumeEpochBasedTrainLoop` registers it and calls
    :meth:`observe` with every batch it draws; it does nothing for a data loader without
    persistent workers.
    """

    # after_train_epoch: gather before the checkpoint hook (VERY_LOW) saves the epoch
    priority = 'LOW'

    def __init__(self) -> None:
        self.loaded: Optional[Dict[str, Any]] = None
        self._dataloader: Optional[DataLoader] = None
        self._latest: WorkerStates = {}
        self._start: Optional[List[WorkerStates]] = None
        self._untagged_warned = False

    def before_train(self, runner) -> None:
        """Tag the batches; on a resume, start the workers from the checkpoint's states."""
        loop = runner.train_loop
        loader = loop.dataloader
        loaded, self.loaded = self.loaded, None
        if not has_persistent_workers(loader):
            return
        if getattr(loop, 'worker_rng_hook', None) is not self:
            # a loop that does not take the tags off would hand them to the model
            runner.logger.warning(
                'WorkerRNGStateHook does nothing without ExactResumeEpochBasedTrainLoop '
                "(train_cfg.type), which registers it; remove it from custom_hooks.")
            return
        self._dataloader = loader
        if not isinstance(loader.collate_fn, TaggingCollate):
            loader.collate_fn = TaggingCollate(loader.collate_fn)
        if runner.iter == 0:  # a new run, or load_from another run's weights
            return
        if loaded is None:
            runner.logger.warning(
                'The checkpoint holds no random states of persistent data-loader workers '
                '(written with persistent_workers=False, or without '
                'ExactResumeEpochBasedTrainLoop): the workers start from their seeds, and '
                'random transforms draw other numbers than in an uninterrupted run.')
            return
        states = self._states_for_this_rank(loaded, loader)
        self._start = loaded['start']
        if states:
            self._latest = dict(states)
            loader.worker_init_fn = RestoringWorkerInit(loader.worker_init_fn, states)

    @staticmethod
    def _states_for_this_rank(loaded: Dict[str, Any], loader: DataLoader) -> WorkerStates:
        if loaded['start'] is None:
            return {}
        world_size = get_world_size()
        if loaded['world_size'] != world_size:
            raise RuntimeError(
                f'The checkpoint was written by {loaded["world_size"]} processes and this run '
                f'has {world_size}: the random states of their data-loader workers cannot be '
                'restored. Resume with the same number of processes.')
        if loaded['num_workers'] != loader.num_workers:
            raise RuntimeError(
                f'The checkpoint was written with train_dataloader.num_workers='
                f'{loaded["num_workers"]} and this run has {loader.num_workers}: the random '
                'states of the persistent workers cannot be mapped onto this run\'s. Resume '
                'with the same train_dataloader.num_workers.')
        return loaded['start'][get_rank()]

    def observe(self, data_batch: Any) -> None:
        """Take the worker's tag off a batch the train loop drew, and keep its states.

        Args:
            data_batch: the batch, changed in place (its :data:`BATCH_KEY` removed).
        """
        if self._dataloader is None:
            return
        tag = data_batch.pop(BATCH_KEY, None) if isinstance(data_batch, dict) else None
        if tag is None:
            if not self._untagged_warned:
                print_log(
                    'WorkerRNGStateHook: the training batches are not dicts, so the random '
                    'states of the persistent data-loader workers cannot travel with them: a '
                    'resumed run is exact only with persistent_workers=False.',
                    logger='current', level=logging.WARNING)
                self._untagged_warned = True
            return
        worker_id, state = tag
        self._latest[worker_id] = state

    def after_train_epoch(self, runner) -> None:
        """Gather every rank's worker states: those the workers start the next epoch with."""
        if self._dataloader is None:
            return
        latest = dict(self._latest)
        self._start = all_gather_object(latest) if get_world_size() > 1 else [latest]

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add the workers' states of the start of the epoch to resume in."""
        if self._dataloader is None:
            return
        checkpoint[CHECKPOINT_KEY] = dict(start=self._start,
                                          num_workers=self._dataloader.num_workers,
                                          world_size=get_world_size())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the checkpoint's worker states (or None) until training starts."""
        self.loaded = checkpoint.get(CHECKPOINT_KEY)
