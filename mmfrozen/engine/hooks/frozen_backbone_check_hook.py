"""A hook that verifies a frozen backbone stays exactly as loaded, and was loaded at all.

:class:`~mmfrozen.engine.runner.FrozenBackboneRunner` registers it when ``frozen.check`` is
true (the default). Before training, after the weights are loaded, it checks that each frozen
module has no trainable parameter, refuses a frozen module that no checkpoint filled, and
snapshots its parameters and buffers; at the first training iteration, after the loop's
``model.train()``, it checks that every normalisation (and dropout) layer of it is in eval
mode. Before every checkpoint is written and at the end of training it compares the module with
that snapshot. Any violation stops the run with :class:`FrozenBackboneError` naming the tensor.
"""
import logging
import re
from typing import Dict, List, Optional, Sequence, Set, Union

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit
from torch import nn

from mmfrozen.models.freeze import (get_submodule_by_name, mode_dependent_layers_in_train_mode,
                                    state_snapshot, trainable_parameters)
from mmfrozen.utils import unwrap_model


class FrozenBackboneError(RuntimeError):
    """A frozen module changed, trains, or was never loaded from a checkpoint."""


def _is_pretrained_init_cfg(init_cfg) -> bool:
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(isinstance(cfg, dict) and cfg.get('type') in ('Pretrained', PretrainedInit)
               for cfg in cfgs)


def has_pretrained_init(model: nn.Module, name: str) -> bool:
    """Whether an ``init_cfg`` of type ``Pretrained`` may fill the sub-module ``name``.

    Args:
        model: the (unwrapped) model.
        name: dotted name of the sub-module.

    Returns:
        bool: True when the module, one of its parents or one of its children has a
        ``Pretrained`` ``init_cfg``.
    """
    parts = name.split('.')
    chain = [model] + [model.get_submodule('.'.join(parts[:i + 1])) for i in range(len(parts))]
    candidates = chain + list(chain[-1].modules())
    return any(_is_pretrained_init_cfg(getattr(m, 'init_cfg', None)) for m in candidates)


def _describe_change(before: torch.Tensor, after: torch.Tensor) -> str:
    if before.shape != after.shape:
        return f'shape {tuple(before.shape)} -> {tuple(after.shape)}'
    changed = int((before != after).sum())
    text = f'{changed} of {before.numel()} elements changed'
    if before.is_floating_point():
        text += f', max abs difference {float((before - after).abs().max()):.3g}'
    return text


@HOOKS.register_module()
class FrozenBackboneCheckHook(Hook):
    """Stop a run whose frozen modules are trainable, in train mode, unloaded, or changed.

    Args:
        modules: names of the frozen sub-modules of the model, e.g. ``['backbone']``.
        allow_uninitialized: train even when no checkpoint filled a frozen module (random frozen
            weights are worthless for detection: only tests should set this).
    """

    priority = 'VERY_HIGH'

    def __init__(self, modules: Union[str, Sequence[str]] = ('backbone', ),
                 allow_uninitialized: bool = False) -> None:
        self.modules: List[str] = [modules] if isinstance(modules, str) else list(modules)
        self.allow_uninitialized = allow_uninitialized
        self._loaded_keys: Optional[Set[str]] = None
        self._snapshots: Dict[str, Dict[str, torch.Tensor]] = {}
        self._mode_checked = False

    @staticmethod
    def _source(runner) -> str:
        filename = getattr(getattr(runner, 'cfg', None), 'filename', None)
        return filename or 'the config'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Remember which tensors ``load_from`` / resume supplied."""
        state = checkpoint.get('state_dict', checkpoint)
        keys = {re.sub(r'^module\.', '', key) for key in state}
        self._loaded_keys = (self._loaded_keys or set()) | keys

    def before_train(self, runner) -> None:
        """Check mode and initialisation of the frozen modules, and snapshot them."""
        model = unwrap_model(runner.model)
        for name in self.modules:
            self._check_no_gradients(name, get_submodule_by_name(model, name), runner,
                                     'before training')
        self._mode_checked = False
        if self.allow_uninitialized:
            print_log(f'frozen.allow_uninitialized is set ({self._source(runner)}): the frozen '
                      f'modules {self.modules} are not checked for loaded weights.',
                      logger='current', level=logging.WARNING)
        else:
            self._check_initialised(runner, model)
        self._snapshots = {name: state_snapshot(model.get_submodule(name))
                           for name in self.modules}
        # The construction-time copies served the check above; free their memory.
        if getattr(runner, 'frozen_initial_states', None) is not None:
            runner.frozen_initial_states = None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        """At the first iteration, after the loop's ``model.train()``: frozen layers in eval."""
        if self._mode_checked:
            return
        model = unwrap_model(runner.model)
        for name in self.modules:
            self._check_eval_mode(name, model.get_submodule(name), runner,
                                  'in the first training iteration')
        self._mode_checked = True

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Verify the frozen modules before a checkpoint is written."""
        self._verify(runner, f'before saving the checkpoint at iteration {runner.iter}')

    def after_train(self, runner) -> None:
        """Verify the frozen modules at the end of training."""
        self._verify(runner, f'at the end of training (iteration {runner.iter})')

    def _check_no_gradients(self, name: str, module: nn.Module, runner, when: str) -> None:
        trainable = trainable_parameters(module)
        if trainable:
            raise FrozenBackboneError(
                f'{name}.{trainable[0]} is trainable (requires_grad=True) {when}, but '
                f'frozen.modules freezes {name!r} ({self._source(runner)})')

    def _check_eval_mode(self, name: str, module: nn.Module, runner, when: str) -> None:
        training = mode_dependent_layers_in_train_mode(module)
        if training:
            key = training[0]
            full = f'{name}.{key}' if key else name
            raise FrozenBackboneError(
                f'layer {full} ({type(module.get_submodule(key)).__name__}) is in train mode '
                f'{when}, but frozen.modules freezes {name!r} ({self._source(runner)}); its '
                'statistics would change')

    def _check_initialised(self, runner, model: nn.Module) -> None:
        initial_states = getattr(runner, 'frozen_initial_states', None) or {}
        from_checkpoint = self._loaded_keys is not None
        for name in self.modules:
            module = model.get_submodule(name)
            pretrained = has_pretrained_init(model, name)
            if not pretrained and not from_checkpoint:
                raise FrozenBackboneError(
                    f'frozen module {name!r} was not loaded from a checkpoint: no init_cfg of '
                    f"type='Pretrained' on model.{name} (or its parents) and no load_from or "
                    f'resume ({self._source(runner)}). A frozen random {name} is worthless; set '
                    f"model.{name}.init_cfg=dict(type='Pretrained', checkpoint=...) or load_from,"
                    ' or frozen.allow_uninitialized=True to train it anyway.')
            initial = initial_states.get(name)
            missing = []
            for key, value in module.state_dict().items():
                # Index tables and num_batches_tracked are not learnt; the checkpoint may lack them.
                if not value.is_floating_point():
                    continue
                full = f'{name}.{key}'
                if from_checkpoint and full in self._loaded_keys:
                    continue
                if pretrained and (initial is None
                                   or not torch.equal(initial[key], value.detach().cpu())):
                    continue
                missing.append(full)
            if missing:
                shown = ', '.join(missing[:5]) + (', ...' if len(missing) > 5 else '')
                raise FrozenBackboneError(
                    f'{len(missing)} tensor(s) of frozen module {name!r} were not loaded from any '
                    f'checkpoint (init_cfg Pretrained or load_from) and keep their random '
                    f'initial values: {shown} ({self._source(runner)}). Check the checkpoint '
                    f'and its key prefix, or set frozen.allow_uninitialized=True.')

    def _verify(self, runner, when: str) -> None:
        if not self._snapshots:
            return
        model = unwrap_model(runner.model)
        for name, snapshot in self._snapshots.items():
            module = model.get_submodule(name)
            self._check_no_gradients(name, module, runner, when)
            self._check_eval_mode(name, module, runner, when)
            current = module.state_dict()
            for key in sorted(set(snapshot) | set(current)):
                if key not in current or key not in snapshot:
                    raise FrozenBackboneError(
                        f'{name}.{key} {"disappeared" if key in snapshot else "appeared"} in '
                        f'frozen module {name!r} {when} ({self._source(runner)})')
                after = current[key].detach().cpu()
                if not torch.equal(snapshot[key], after):
                    raise FrozenBackboneError(
                        f'{name}.{key} of frozen module {name!r} changed {when}: '
                        f'{_describe_change(snapshot[key], after)} ({self._source(runner)})')
        print_log(f'Frozen modules {", ".join(self._snapshots)} unchanged {when}.',
                  logger='current')
