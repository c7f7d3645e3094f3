"""Training FLOPs of a real step, split into forward and backward.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode``; :func:`watch_backward`
marks where the backward pass of an MMEngine training step begins and ends.

What is counted, on the ops that actually run, two FLOPs per multiply-accumulate:

- what ``FlopCounterMode`` counts: matrix multiplications and convolutions (``mm``, ``addmm``,
  ``bmm``, ``convolution`` and their backward, attention). A frozen layer therefore costs its
  forward only, and a layer whose input needs no gradient skips its input-gradient
  convolution;
- mmcv's RoIAlign, RoIPool and NMS (forward and backward), which bypass PyTorch's dispatcher,
  analytically (:mod:`mmfrozen.cost.mmcv_ops`).

Not counted (:data:`NOT_COUNTED`): element-wise ops (normalisation, activations, losses,
box coding), sorting and indexing, the optimizer step, and mmcv's other compiled ops.
"""
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Dict, Iterator, Optional

from torch.utils.flop_counter import FlopCounterMode

from .mmcv_ops import MMCV_FLOP_FORMULAS, count_mmcv_ops, op_name

GLOBAL = 'Global'
_MISSING = object()
#: What the counts include and leave out, for reports (``tools/cost.py``'s JSON).
COUNTED = ('matrix multiplications and convolutions, forward and backward, as '
           'torch.utils.flop_counter.FlopCounterMode counts them (mm, addmm, bmm, '
           'convolution, attention)',
           'mmcv RoIAlign and RoIPool (forward and backward) and NMS, analytically: '
           'mmfrozen.cost.mmcv_ops')
NOT_COUNTED = ('element-wise ops (normalisation, activations, losses, box coding)',
               'sorting, indexing and data movement', 'the optimizer step',
               "mmcv's other compiled ops (none runs in a Faster/Cascade/Mask R-CNN or "
               'RetinaNet training step on a CPU)')


class TrainingFlopCounter:
    """Count the FLOPs of one training step, split into forward and backward.

    Use as a context manager around the step; call :meth:`mark_backward_start` and
    :meth:`mark_backward_end` around the backward pass (see :func:`watch_backward`). FLOPs
    before the start mark are forward, between the marks backward; what follows (the
    optimizer step) is neither. Without marks, everything counts as forward. mmcv's RoIAlign,
    RoIPool and NMS are counted too (:func:`mmfrozen.cost.mmcv_ops.count_mmcv_ops`).

    Example:
        >>> with TrainingFlopCounter() as counter:
        ...     loss = net(x).sum()
        ...     counter.mark_backward_start()
        ...     loss.backward()
        ...     counter.mark_backward_end()
        >>> counter.forward, counter.backward, counter.by_op()
    """

    def __init__(self) -> None:
        self._mode = FlopCounterMode(display=False, custom_mapping=MMCV_FLOP_FORMULAS)
        self._stack: Optional[ExitStack] = None
        self._at_backward_start: Optional[Dict[str, int]] = None
        self._at_backward_end: Optional[Dict[str, int]] = None
        self._at_exit: Dict[str, int] = {}

    def __enter__(self) -> 'TrainingFlopCounter':
        self._at_backward_start = self._at_backward_end = None
        with ExitStack() as stack:
            stack.enter_context(count_mmcv_ops())
            stack.enter_context(self._mode)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc_info) -> None:
        self._at_exit = self._snapshot()
        stack, self._stack = self._stack, None
        stack.__exit__(*exc_info)

    def _snapshot(self) -> Dict[str, int]:
        """FLOPs so far per op (``'aten.convolution'``, ``'mmcv.nms'``, ...)."""
        return {op_name(op): count for op, count in self._mode.flop_counts[GLOBAL].items()}

    def mark_backward_start(self) -> None:
        """Record that the backward pass starts now."""
        self._at_backward_start = self._snapshot()

    def mark_backward_end(self) -> None:
        """Record that the backward pass ended now."""
        self._at_backward_end = self._snapshot()

    def by_op(self) -> Dict[str, Dict[str, int]]:
        """FLOPs per op: ``{op: {'forward': int, 'backward': int}}``, ops with FLOPs only."""
        start = self._at_backward_start if self._at_backward_start is not None else self._at_exit
        end = self._at_backward_end if self._at_backward_end is not None else self._at_exit
        result = {}
        for op in sorted(set(start) | set(end)):
            forward = start.get(op, 0)
            backward = end.get(op, 0) - forward
            if forward or backward:
                result[op] = dict(forward=forward, backward=backward)
        return result

    @property
    def forward(self) -> int:
        """FLOPs of the forward pass (loss computation included)."""
        return sum(counts['forward'] for counts in self.by_op().values())

    @property
    def backward(self) -> int:
        """FLOPs of the backward pass."""
        return sum(counts['backward'] for counts in self.by_op().values())

    @property
    def total(self) -> int:
        """Forward plus backward FLOPs."""
        return self.forward + self.backward


@contextmanager
def watch_backward(optim_wrapper: Any, on_start: Callable[[], None],
                   on_end: Callable[[], None]) -> Iterator[bool]:
    """Call ``on_start`` just before and ``on_end`` just after ``optim_wrapper.backward``.

    ``model.train_step`` runs the forward pass, then ``optim_wrapper.update_params(loss)``, which
    calls ``optim_wrapper.backward(loss)`` and then the optimizer step. Wrapping that one call
    splits a real step into forward, backward and optimizer phases without changing it.

    Args:
        optim_wrapper: an MMEngine ``OptimWrapper`` (or subclass, e.g. ``AmpOptimWrapper``).
        on_start: called right before the backward pass.
        on_end: called right after it.

    Yields:
        bool: whether the wrapper could be watched (an ``OptimWrapperDict`` has no single
        ``backward`` and is not).
    """
    original = getattr(optim_wrapper, 'backward', None)
    if original is None:
        yield False
        return

    def backward(loss: Any, **kwargs: Any) -> Any:
        on_start()
        result = original(loss, **kwargs)
        on_end()
        return result

    previous = optim_wrapper.__dict__.get('backward', _MISSING)
    optim_wrapper.backward = backward
    try:
        yield True
    finally:
        if previous is _MISSING:
            del optim_wrapper.backward
        else:
            optim_wrapper.backward = previous
