"""Training FLOPs of a real step, counted with ``torch.utils.flop_counter.FlopCounterMode``.

What is counted is what ``FlopCounterMode`` counts: matrix multiplications and convolutions
(``mm``, ``addmm``, ``bmm``, ``convolution`` and their backward, attention), two FLOPs per
multiply-accumulate, on the ops that actually run. A frozen layer therefore costs its forward
only, and a layer whose input needs no gradient skips its input-gradient convolution.

Not counted: element-wise ops (normalisation, activations, losses), the optimizer step, and
mmcv's C++ ops (RoIAlign, NMS, deformable convolution, ...), which bypass PyTorch's dispatcher;
for R-CNN detectors these are a small share of the total.
"""
from typing import Dict, Optional

from torch.utils.flop_counter import FlopCounterMode

GLOBAL = 'Global'


class TrainingFlopCounter:
    """Count the FLOPs of one training step, split into forward and backward.

    Use as a context manager around the step; call :meth:`mark_backward_start` and
    :meth:`mark_backward_end` around the backward pass (see
    :func:`mmfrozen.cost.phases.watch_backward`). FLOPs before the start mark are forward,
    between the marks backward; what follows (the optimizer step) is neither. Without marks,
    everything counts as forward.

    Example:
        >>> with TrainingFlopCounter() as counter:
        ...     loss = net(x).sum()
        ...     counter.mark_backward_start()
        ...     loss.backward()
        ...     counter.mark_backward_end()
        >>> counter.forward, counter.backward
    """

    def __init__(self) -> None:
        self._mode = FlopCounterMode(display=False)
        self._at_backward_start: Optional[Dict[str, int]] = None
        self._at_backward_end: Optional[Dict[str, int]] = None
        self._at_exit: Dict[str, int] = {}

    def __enter__(self) -> 'TrainingFlopCounter':
        self._at_backward_start = self._at_backward_end = None
        self._mode.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._at_exit = self._snapshot()
        self._mode.__exit__(*exc_info)

    def _snapshot(self) -> Dict[str, int]:
        """FLOPs so far, per module name as ``FlopCounterMode`` tracks it (and ``'Global'``)."""
        return {name: sum(counts.values()) for name, counts in self._mode.flop_counts.items()}

    def mark_backward_start(self) -> None:
        """Record that the backward pass starts now."""
        self._at_backward_start = self._snapshot()

    def mark_backward_end(self) -> None:
        """Record that the backward pass ended now."""
        self._at_backward_end = self._snapshot()

    def _phases(self, name: str) -> Dict[str, int]:
        start = self._at_backward_start if self._at_backward_start is not None else self._at_exit
        end = self._at_backward_end if self._at_backward_end is not None else self._at_exit
        forward = start.get(name, 0)
        return dict(forward=forward, backward=end.get(name, 0) - forward)

    @property
    def forward(self) -> int:
        """FLOPs of the forward pass (loss computation included)."""
        return self._phases(GLOBAL)['forward']

    @property
    def backward(self) -> int:
        """FLOPs of the backward pass."""
        return self._phases(GLOBAL)['backward']

    @property
    def total(self) -> int:
        """Forward plus backward FLOPs."""
        return self.forward + self.backward
