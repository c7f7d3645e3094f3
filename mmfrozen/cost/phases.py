"""Marking where the backward pass of an MMEngine training step begins and ends."""
from contextlib import contextmanager
from typing import Any, Callable, Iterator

_MISSING = object()


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
