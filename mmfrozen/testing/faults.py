"""Faults for the reliability tests, injected into real training runs.

Imported by the training subprocess (``custom_imports=dict(imports=['mmfrozen.testing.faults'])``):

* :class:`KillAtIterHook` kills its own process with SIGKILL after the iteration named by
  ``MMFROZEN_TEST_KILL_AT_ITER`` (after that iteration's checkpoint, if any, is written);
* :class:`NaNFeaturesHook` makes the neck's output NaN in the iterations it is given, so that
  every loss term is NaN while the weights are still finite.
"""
import os
import signal
from typing import Sequence

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

KILL_ENV = 'MMFROZEN_TEST_KILL_AT_ITER'


@HOOKS.register_module()
class KillAtIterHook(Hook):
    """SIGKILL this process after iteration ``$MMFROZEN_TEST_KILL_AT_ITER`` (1-based)."""

    priority = 'LOWEST'  # after the checkpoint hook

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        kill_at = os.environ.get(KILL_ENV)
        if kill_at and runner.iter + 1 == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class NaNFeaturesHook(Hook):
    """Multiply the neck's outputs by NaN in the given iterations (1-based)."""

    def __init__(self, iters: Sequence[int]) -> None:
        self.iters = set(iters)
        self._handle = None

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter + 1 not in self.iters:
            return
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        self._handle = model.neck.register_forward_hook(
            lambda module, args, out: tuple(x * float('nan') for x in out))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
