"""Faults for the reliability tests, injected into real training runs.

Imported by the training subprocess (``custom_imports=dict(imports=['mmfrozen.testing.faults'])``):

* :class:`KillAtIterHook` kills its own process with SIGKILL after the iteration named by
  ``MMFROZEN_TEST_KILL_AT_ITER`` (after that iteration's checkpoint, if any, is written); with
  ``MMFROZEN_TEST_KILL_RANK`` only that rank dies (a dead rank in a distributed run);
* :class:`NaNFeaturesHook` makes the neck's output NaN in the iterations it is given, so that
  every loss term is NaN while the weights are still finite;
* :class:`FailCheckpointWriteHook` makes the file write of the checkpoint of iteration
  ``MMFROZEN_TEST_FAIL_SAVE_AT_ITER`` stop half-way, as a full disk does (``ENOSPC``) or as a
  kill does (``MMFROZEN_TEST_FAIL_SAVE_WITH=sigkill``);
* :class:`RaisingCocoMetric` is MMDetection's ``CocoMetric`` that raises while
  ``MMFROZEN_TEST_METRIC_RAISES`` is set (a failing evaluation).

The faults read the environment, so that the ``--resume`` run of the same config, without the
variable, runs clean.
"""
import errno
import os
import signal
import sys
import time
from typing import Any, Callable, Sequence

from mmdet.evaluation import CocoMetric
from mmdet.registry import HOOKS, METRICS
from mmengine.dist import get_rank
from mmengine.fileio import LocalBackend
from mmengine.hooks import Hook

KILL_ENV = 'MMFROZEN_TEST_KILL_AT_ITER'
KILL_RANK_ENV = 'MMFROZEN_TEST_KILL_RANK'
FAIL_SAVE_ENV = 'MMFROZEN_TEST_FAIL_SAVE_AT_ITER'
FAIL_SAVE_WITH_ENV = 'MMFROZEN_TEST_FAIL_SAVE_WITH'
METRIC_RAISES_ENV = 'MMFROZEN_TEST_METRIC_RAISES'
#: What :class:`KillAtIterHook` prints, flushed, just before the kill: rank, pid and time.time().
KILLED_LINE = 'KillAtIterHook: SIGKILL to rank {rank} (pid {pid}) at {time:.3f}'


@HOOKS.register_module()
class KillAtIterHook(Hook):
    """SIGKILL this process after iteration ``$MMFROZEN_TEST_KILL_AT_ITER`` (1-based).

    With ``$MMFROZEN_TEST_KILL_RANK`` set, only the process of that rank is killed. Before the
    kill it prints :data:`KILLED_LINE` to stdout, so that a test can time the job's end.
    """

    priority = 'LOWEST'  # after the checkpoint hook

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        kill_at = os.environ.get(KILL_ENV)
        if not kill_at or runner.iter + 1 != int(kill_at):
            return
        kill_rank = os.environ.get(KILL_RANK_ENV)
        if kill_rank and int(kill_rank) != get_rank():
            return
        print(KILLED_LINE.format(rank=get_rank(), pid=os.getpid(), time=time.time()),
              flush=True)
        sys.stderr.flush()
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


def failing_put(put: Callable, how: str) -> Callable:
    """``LocalBackend.put`` that writes half of the bytes, then fails as ``how`` says, once.

    Args:
        put: the original ``LocalBackend.put``, put back after the failure.
        how: ``'enospc'`` (raise ``OSError(ENOSPC)``, as a full disk) or ``'sigkill'``.

    Returns:
        callable: the replacement.
    """

    def put_half(backend: LocalBackend, obj: bytes, filepath: Any) -> None:
        LocalBackend.put = put
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
            f.flush()
            os.fsync(f.fileno())
            if how == 'sigkill':
                os.kill(os.getpid(), signal.SIGKILL)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filepath))

    return put_half


@HOOKS.register_module()
class FailCheckpointWriteHook(Hook):
    """Make the write of the checkpoint of iteration ``$MMFROZEN_TEST_FAIL_SAVE_AT_ITER`` fail.

    The checkpoint's bytes reach MMEngine's ``LocalBackend.put``; half of them are written to
    the file it was asked to write, then the process gets ``ENOSPC`` or, with
    ``$MMFROZEN_TEST_FAIL_SAVE_WITH=sigkill``, SIGKILL. Nothing else is changed.
    """

    priority = 'LOWEST'  # the last to see the checkpoint before it is written

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        fail_at = os.environ.get(FAIL_SAVE_ENV)
        if fail_at and checkpoint['meta']['iter'] == int(fail_at):
            how = os.environ.get(FAIL_SAVE_WITH_ENV, 'enospc')
            LocalBackend.put = failing_put(LocalBackend.put, how)


@METRICS.register_module()
class RaisingCocoMetric(CocoMetric):
    """``CocoMetric`` whose ``compute_metrics`` raises ``ValueError($MMFROZEN_TEST_METRIC_RAISES)``
    while that variable is set, and computes as ``CocoMetric`` otherwise."""

    def compute_metrics(self, results: list) -> dict:
        message = os.environ.get(METRIC_RAISES_ENV)
        if message:
            raise ValueError(message)
        return super().compute_metrics(results)
