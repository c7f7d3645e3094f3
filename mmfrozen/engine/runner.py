"""A runner that verifies, when the model is built, that the modules a config calls frozen are.

The freeze itself lives in the model (see :mod:`mmfrozen.models.freeze`), so it holds whatever
runs the config. This runner checks it before MMEngine wraps the model in
DistributedDataParallel, and keeps the check running through training. A config opts in with::

    runner_type = 'FrozenBackboneRunner'
    frozen = dict(modules=['backbone'], check=True, allow_uninitialized=False)

(``configs/_base_/frozen-backbone.py`` says exactly this). With ``frozen.check`` true (the
default) the runner registers :class:`~mmfrozen.engine.hooks.FrozenBackboneCheckHook`, which
verifies the freeze during training; the runner adds it rather than the config, so a config's
own ``custom_hooks`` never clash with it.
"""
from typing import Dict, List, Optional, Union

import torch
from mmdet.registry import RUNNERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.runner import Runner
from torch import nn

from mmfrozen.engine.hooks.frozen_backbone_check_hook import (FrozenBackboneCheckHook,
                                                              FrozenBackboneError)
from mmfrozen.models.freeze import (frozen_cfg_of, frozen_module_names, state_snapshot,
                                    unfrozen_parts)

HOW_TO_FREEZE = ("freeze it in the model: for mmdet's ResNet family set "
                 'model.backbone.frozen_stages=4 and model.backbone.norm_eval=True; wrap any '
                 "other module as dict(type='FrozenModule', module=<its config>)")


# mmdet's tools/train.py calls ``mmengine.registry.RUNNERS.build(cfg)`` before any default scope
# exists, and a registry looks names up in itself and its parents, never in its children (mmdet's):
# register in both so that ``runner_type = 'FrozenBackboneRunner'`` works there and in scope mmdet.
@MMENGINE_RUNNERS.register_module()
@RUNNERS.register_module()
class FrozenBackboneRunner(Runner):
    """MMEngine's :class:`~mmengine.runner.Runner`, verifying ``cfg.frozen.modules`` at build.

    Attributes:
        frozen_modules (list[str]): names of the frozen sub-modules of the model.
        frozen_initial_states (dict[str, dict[str, Tensor]]): for each frozen module, a CPU copy
            of its tensors as constructed, before any weight initialisation or loading; the
            check hook compares against it to find tensors that no checkpoint filled.
    """

    frozen_modules: List[str]
    frozen_initial_states: Optional[Dict[str, Dict[str, torch.Tensor]]]

    def _frozen_cfg(self) -> dict:
        return frozen_cfg_of(self.cfg, self._cfg_source())

    def _cfg_source(self) -> str:
        return self.cfg.filename or 'the config'

    def build_model(self, model: Union[nn.Module, Dict]) -> nn.Module:
        """Build the model as :class:`Runner` does, then verify ``cfg.frozen.modules``.

        Args:
            model: the model, or its config.

        Returns:
            nn.Module: the built model.

        Raises:
            FrozenBackboneError: a module named in ``frozen.modules`` has a trainable parameter
                or a normalisation layer that ``model.train()`` puts in train mode.
        """
        model = super().build_model(model)
        self.frozen_modules = frozen_module_names(self._frozen_cfg(), self._cfg_source())
        problems = unfrozen_parts(model, self.frozen_modules)
        if problems:
            raise FrozenBackboneError(
                f'{self._cfg_source()}: frozen.modules names {self.frozen_modules}, but the '
                f'model built from model=... does not freeze them: {problems}. The runner only '
                f'verifies the freeze; {HOW_TO_FREEZE}.')
        self.frozen_initial_states = {
            name: state_snapshot(model.get_submodule(name)) for name in self.frozen_modules}
        if self.frozen_modules:
            self.logger.info(f'Frozen by the model (weights and normalisation statistics), '
                             f'verified: {", ".join(self.frozen_modules)}')
        return model

    def register_hooks(self, default_hooks=None, custom_hooks=None) -> None:
        """Register the config's hooks, then the freeze check when ``frozen.check`` is true."""
        super().register_hooks(default_hooks, custom_hooks)
        frozen_cfg = self._frozen_cfg()
        if self.frozen_modules and frozen_cfg.get('check', True):
            self.register_hook(
                FrozenBackboneCheckHook(
                    modules=list(self.frozen_modules),
                    allow_uninitialized=bool(frozen_cfg.get('allow_uninitialized', False))),
                priority='VERY_HIGH')
