"""Random-number state in checkpoints, so that a resumed run draws what the killed one would have.

MMEngine 0.10.7's checkpoints hold no RNG state: after ``--resume`` the RPN and R-CNN samplers
(torch's RNG), random augmentations (NumPy's, Python's) and anything else random draw other
numbers than the uninterrupted run would have. :class:`RNGStateHook` writes every rank's
Python, NumPy, torch (and CUDA) generator states into the checkpoint and reads them back;
:class:`~mmfrozen.engine.loops.ExactResumeEpochBasedTrainLoop` registers it and restores the
states at the iteration the checkpoint was written at.
"""
import contextlib
import random
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook

#: The checkpoint key that holds the resume state.
CHECKPOINT_KEY = 'mmfrozen_resume_state'


def capture_rng_state() -> Dict[str, Any]:
    """This process's random generator states (Python, NumPy, torch and CUDA if in use).

    NumPy's state is stored as plain lists and numbers so that a checkpoint holding it loads
    with ``torch.load(weights_only=True)``.

    Returns:
        dict: ``python``, ``numpy``, ``torch`` and, where CUDA is initialised, ``cuda``.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: Dict[str, Any] = dict(
        python=random.getstate(),
        numpy=(name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)),
        torch=torch.get_rng_state(),
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Set this process's generators to a state :func:`capture_rng_state` returned.

    Args:
        state: the captured state.
    """
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


@contextlib.contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Run a block without it advancing any random generator of this process."""
    state = capture_rng_state()
    try:
        yield
    finally:
        restore_rng_state(state)


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Write every rank's random generator states into checkpoints and read them back.

    ``checkpoint['mmfrozen_resume_state']`` holds ``rng`` (one state per rank, indexed by
    rank), ``world_size`` and ``batches_per_epoch``. On load the hook only keeps what it read
    in :attr:`loaded`; the train loop decides whether and where to restore it (a ``load_from``
    of another run's checkpoint must not restore anything).

    :class:`~mmfrozen.engine.loops.ExactResumeEpochBasedTrainLoop` registers this hook itself;
    a config needs only ``train_cfg = dict(type='ExactResumeEpochBasedTrainLoop')``.

    Attributes:
        loaded_checkpoint (bool): whether a checkpoint was loaded since the loop last asked.
        loaded (dict | None): the resume state of the checkpoint loaded last, if it had one.
    """

    # after every iteration, before the checkpoint hook (VERY_LOW) may save
    priority = 'LOW'

    def __init__(self) -> None:
        self.loaded_checkpoint = False
        self.loaded: Optional[Dict[str, Any]] = None
        self._states: Optional[List[Dict[str, Any]]] = None

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None,
                         outputs: Any = None) -> None:
        """Gather every rank's RNG state as it is after this iteration.

        MMEngine saves checkpoints on rank 0 only (``Runner.save_checkpoint`` is master-only),
        so the other ranks' states are gathered here, where every rank passes, in one small
        collective per iteration; nothing draws random numbers between here and a save.
        """
        state = capture_rng_state()
        self._states = all_gather_object(state) if get_world_size() > 1 else [state]

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add every rank's RNG state, as after the last iteration, to the checkpoint."""
        if self._states is None and get_world_size() == 1:
            self._states = [capture_rng_state()]
        loop = getattr(runner, '_train_loop', None)
        dataloader = getattr(loop, 'dataloader', None)
        checkpoint[CHECKPOINT_KEY] = dict(
            rng=self._states, world_size=get_world_size(),
            batches_per_epoch=len(dataloader) if dataloader is not None else None)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the checkpoint's resume state (or None) for the train loop."""
        self.loaded_checkpoint = True
        self.loaded = checkpoint.get(CHECKPOINT_KEY)

    def state_for_this_rank(self) -> Optional[Dict[str, Any]]:
        """This rank's RNG state from the loaded checkpoint, or None if it has none.

        Raises:
            RuntimeError: the checkpoint was written by a different number of processes,
                whose random streams cannot be mapped onto this run's.
        """
        if self.loaded is None or self.loaded.get('rng') is None:
            return None
        world_size = get_world_size()
        if self.loaded['world_size'] != world_size:
            raise RuntimeError(
                f'The checkpoint was written by {self.loaded["world_size"]} processes and this '
                f'run has {world_size}: its random states cannot be restored exactly. Resume '
                'with the same number of processes, or resume with the stock '
                "EpochBasedTrainLoop (train_cfg.type='EpochBasedTrainLoop'), which does not "
                'restore random states.')
        return self.loaded['rng'][get_rank()]
