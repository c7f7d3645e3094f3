"""Faults for the reliability tests, injected into real training runs.

Imported by the training subprocess (``custom_imports``, with ``tests/`` on ``PYTHONPATH``):

* :class:`KillAtIterHook` kills its own process with SIGKILL after the iteration named by
  ``MMFROZEN_TEST_KILL_AT_ITER`` (after that iteration's checkpoint, if any, is written);
* :class:`NaNFeaturesHook` makes the neck's output NaN in the iterations it is given, so that
  every loss term is NaN while the weights are still finite.

Also helpers for the tests themselves (configs, checkpoints, annotation files).
"""
import json
import os
import os.path as osp
import signal
from typing import Dict, List, Sequence

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

import mmfrozen  # noqa: F401  checkpoints load with weights_only=True (mmfrozen.compat)

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


def write_config(path: str, base: str, lines: Sequence[str]) -> str:
    """A config file that inherits ``base`` and adds ``lines``; returns its path."""
    with open(path, 'w') as f:
        f.write(f'_base_ = {base!r}\n')
        f.write("custom_imports = dict(imports=['mmfrozen', 'helpers_reliability'], "
                'allow_failed_imports=False)\n')
        f.write('\n'.join(lines) + '\n')
    return path


def state_dict(checkpoint: str) -> Dict[str, torch.Tensor]:
    """The model weights of a checkpoint."""
    return torch.load(checkpoint, map_location='cpu', weights_only=True)['state_dict']


def differing_tensors(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> List[str]:
    """Names of the tensors that are not bit-identical (or missing on one side)."""
    assert a.keys() == b.keys()
    return [name for name in a if not torch.equal(a[name], b[name])]


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint that ``<work_dir>/last_checkpoint`` points at."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def load_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def dump_json(data: dict, path: str) -> str:
    with open(path, 'w') as f:
        json.dump(data, f)
    return path
