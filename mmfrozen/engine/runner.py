"""A runner that freezes the modules a config's ``freeze`` field names, when the model is built.

The freeze must happen before MMEngine wraps the model in DistributedDataParallel (inside
``Runner.__init__``, before any hook runs): DDP's reducer records which parameters need
gradients when it is built, so freezing later breaks it. A config opts in with::

    runner_type = 'FrozenBackboneRunner'
    freeze = dict(modules=['backbone'], check=True, allow_uninitialized=False)

(``configs/_base_/frozen-backbone.py`` says exactly this). With ``freeze.check`` true (the
default) the runner registers :class:`~mmfrozen.engine.hooks.FrozenBackboneCheckHook`, which
verifies the freeze during training; the runner adds it rather than the config, so a config's
own ``custom_hooks`` never clash with it.
"""
from typing import Dict, List, Optional, Union

import torch
from mmdet.registry import RUNNERS
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.runner import Runner
from torch import nn

from mmfrozen.engine.hooks.frozen_backbone_check_hook import FrozenBackboneCheckHook
from mmfrozen.models.freeze import (apply_freeze, freeze_module, frozen_module_names,
                                    state_snapshot)


# mmdet's tools/train.py calls ``mmengine.registry.RUNNERS.build(cfg)`` before any default scope
# exists, and a registry looks names up in itself and its parents, never in its children (mmdet's):
# register in both so that ``runner_type = 'FrozenBackboneRunner'`` works there and in scope mmdet.
@MMENGINE_RUNNERS.register_module()
@RUNNERS.register_module()
class FrozenBackboneRunner(Runner):
    """MMEngine's :class:`~mmengine.runner.Runner`, freezing ``cfg.freeze.modules`` at build.

    Attributes:
        frozen_modules (list[str]): names of the frozen sub-modules of the model.
        frozen_initial_states (dict[str, dict[str, Tensor]]): for each frozen module, a CPU copy
            of its tensors as constructed, before any weight initialisation or loading; the
            check hook compares against it to find tensors that no checkpoint filled.
    """

    frozen_modules: List[str]
    frozen_initial_states: Optional[Dict[str, Dict[str, torch.Tensor]]]

    def _freeze_cfg(self) -> dict:
        return dict(self.cfg.get('freeze') or {})

    def _cfg_source(self) -> str:
        return self.cfg.filename or 'the config'

    def build_model(self, model: Union[nn.Module, Dict]) -> nn.Module:
        """Build the model as :class:`Runner` does, then freeze ``cfg.freeze.modules``.

        Args:
            model: the model, or its config.

        Returns:
            nn.Module: the built model with its frozen modules frozen.
        """
        model = super().build_model(model)
        # Checks the freeze dict's keys, naming the config file in the error.
        frozen_module_names(self._freeze_cfg(), self._cfg_source())
        self.frozen_modules = apply_freeze(model, self._freeze_cfg())
        self.frozen_initial_states = {
            name: state_snapshot(model.get_submodule(name)) for name in self.frozen_modules}
        if self.frozen_modules:
            self.logger.info(f'Frozen (weights and normalisation statistics): '
                             f'{", ".join(self.frozen_modules)}')
        return model

    def wrap_model(self, model_wrapper_cfg: Optional[Dict], model: nn.Module) -> nn.Module:
        """Wrap the model as :class:`Runner` does, and keep its frozen modules frozen.

        Converting to or from SyncBatchNorm (in :meth:`Runner.wrap_model`) replaces norm layers
        by new modules, which would drop their frozen eval mode: freeze the modules again.

        Args:
            model_wrapper_cfg: the config's ``model_wrapper_cfg``.
            model: the built model.

        Returns:
            nn.Module: the wrapped model.
        """
        wrapped = super().wrap_model(model_wrapper_cfg, model)
        inner = wrapped.module if is_model_wrapper(wrapped) else wrapped
        for name in self.frozen_modules:
            freeze_module(inner.get_submodule(name))
        return wrapped

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        """Register the config's hooks, then the freeze check when ``freeze.check`` is true."""
        super().register_hooks(default_hooks, custom_hooks)
        freeze_cfg = self._freeze_cfg()
        if self.frozen_modules and freeze_cfg.get('check', True):
            self.register_hook(
                FrozenBackboneCheckHook(
                    modules=list(self.frozen_modules),
                    allow_uninitialized=bool(freeze_cfg.get('allow_uninitialized', False))),
                priority='VERY_HIGH')
