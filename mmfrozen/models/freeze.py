"""Freezing a sub-module of a model: its weights, and its normalisation statistics.

The freeze lives in the model, so that it holds whatever builds the model (``MODELS.build``,
MMEngine's ``Runner``, MMDetection's tools, ours). Two mechanisms, MMDetection's first:

* mmdet's ResNet family (ResNet, ResNeXt, Res2Net, RegNet) freezes itself with
  ``frozen_stages=4, norm_eval=True`` in its config;
* any other module is wrapped in its config by the registered builder ``FrozenModule``::

      backbone=dict(type='FrozenModule', module=dict(type='mmpretrain.TIMMBackbone', ...))

  which builds ``module`` as before and freezes it with :func:`freeze_module`. The wrapper
  returns the module itself, so state-dict keys and checkpoints are unchanged.

A frozen module has ``requires_grad=False`` on every parameter and stays in eval mode through
every later ``model.train()`` call, so BatchNorm neither updates its running statistics nor
uses batch statistics. ``print(model)`` says ``frozen`` on the root of each frozen sub-tree.

How: each frozen sub-module gets :class:`FrozenMixin` by class swap
(:mod:`mmfrozen.models.class_swap`): ``isinstance`` holds, state-dict keys and checkpoints are
unchanged, and a frozen model pickles, deep-copies (MMEngine's EMA copies the model) and goes
through ``torch.save``/``torch.load`` whole, frozen still. Nothing global changes.

The config's top-level ``frozen`` field (:data:`FROZEN_CFG_KEYS`) names the modules that the
runner and :class:`~mmfrozen.engine.hooks.FrozenBackboneCheckHook` *verify*; it freezes nothing
by itself.
"""
from typing import Dict, List, Optional, Sequence

import torch
from mmdet.registry import MODELS
from mmengine.utils.dl_utils.parrots_wrapper import _BatchNorm, _InstanceNorm
from torch import nn

from .class_swap import MIXIN_ATTR_PREFIX, ModuleMixin, add_mixin

#: Instance attribute that marks the root of a frozen sub-tree (for ``print(model)``).
FROZEN_ROOT = f'{MIXIN_ATTR_PREFIX}frozen_root'
#: Keys of a config's ``frozen`` dict.
FROZEN_CFG_KEYS = ('modules', 'check', 'allow_uninitialized')
#: The config field's former name, refused with an error that names the new one.
OLD_FROZEN_FIELD = 'freeze'
#: Layers whose output depends on train/eval mode (statistics, or randomness).
MODE_DEPENDENT_TYPES = (_BatchNorm, _InstanceNorm, nn.GroupNorm, nn.LayerNorm,
                        nn.LocalResponseNorm, nn.modules.dropout._DropoutNd)


class FrozenMixin(ModuleMixin):
    """What a frozen module's class adds: eval mode for good, and ``frozen`` in its repr."""

    def train(self, mode: bool = True) -> nn.Module:
        """``nn.Module.train`` for a frozen module: whatever is asked, stay in eval mode.

        ``nn.Module.train`` of a parent calls ``child.train(mode)`` on each child, so a child
        that replaces a frozen one later (``SyncBatchNorm`` conversion) goes to eval mode too.
        """
        return nn.Module.train(self, False)

    def extra_repr(self) -> str:
        own = super().extra_repr()
        if not self.__dict__.get(FROZEN_ROOT, False):
            return own
        return f'frozen, {own}' if own else 'frozen'


def freeze_module(module: nn.Module) -> nn.Module:
    """Freeze ``module`` in place: no gradients, eval mode for good.

    Args:
        module: the module to freeze, e.g. a detector's backbone.

    Returns:
        nn.Module: the same module.
    """
    for param in module.parameters():
        param.requires_grad_(False)
    for sub in module.modules():
        # every sub-module, so that train() on any of them keeps eval mode
        add_mixin(sub, FrozenMixin)
        sub.__dict__.pop(FROZEN_ROOT, None)
    setattr(module, FROZEN_ROOT, True)
    nn.Module.train(module, False)
    return module


def freeze_module_except(module: nn.Module, trainable: Sequence[str] = ()) -> nn.Module:
    """Freeze ``module`` in place but for the sub-modules named in ``trainable``.

    Sub-modules on the path to a trainable one keep their mode and only lose the gradients of
    their own parameters; every other sub-module is frozen with :func:`freeze_module`.

    Args:
        module: the module, e.g. a box head.
        trainable: dotted names of sub-modules that keep training, e.g. ``['fc_cls']``.

    Returns:
        nn.Module: the same module.
    """
    for name in trainable:
        get_submodule_by_name(module, name, field='trainable')
    if not trainable:
        return freeze_module(module)
    trainable = tuple(trainable)
    for name, sub in module.named_modules():
        if any(name == t or name.startswith(f'{t}.') for t in trainable):
            continue
        if any(t.startswith(f'{name}.') for t in trainable) or not name:
            for param in sub.parameters(recurse=False):
                param.requires_grad_(False)
            continue
        parent = name.rsplit('.', 1)[0] if '.' in name else ''
        if parent and is_frozen(module.get_submodule(parent)):
            continue  # frozen with its parent
        freeze_module(sub)
    return module


@MODELS.register_module(name='FrozenModule')
def build_frozen_module(module: dict, trainable: Sequence[str] = (),
                        fast: 'bool | dict | None' = None,
                        **overrides) -> nn.Module:
    """Build ``module`` from its config and freeze it: the ``FrozenModule`` config type.

    Args:
        module: the config of the module to build, e.g. a backbone's.
        trainable: dotted names of its sub-modules that keep training (LVIS stage 2 keeps a box
            head's ``fc_cls``); everything else is frozen.
        fast: run the frozen module's forward as inference (no autograd, BatchNorm folded,
            channels-last; ``True`` or a dict of options, see
            :mod:`mmfrozen.models.fast_frozen_trunk`). Parameters and state dict unchanged.
        **overrides: fields a parent adds when it builds its child (a two-stage detector adds
            ``train_cfg`` and ``test_cfg`` to its RPN head's config): merged into ``module``.

    Returns:
        nn.Module: the module built by ``MODELS.build``, frozen. Not a wrapper: its state-dict
        keys are those of the module.
    """
    cfg = dict(module)
    cfg.update(overrides)
    built = freeze_module_except(MODELS.build(cfg), trainable)
    if fast is not None:
        from .fast_frozen_trunk import make_fast
        make_fast(built, fast, source=f'FrozenModule({cfg.get("type")})')
    return built


def is_frozen(module: nn.Module) -> bool:
    """Whether ``module`` was frozen by :func:`freeze_module`."""
    return isinstance(module, FrozenMixin)


def get_submodule_by_name(model: nn.Module, name: str, field: str = 'frozen.modules') -> nn.Module:
    """``model.get_submodule(name)`` with an error that lists what exists.

    Args:
        model: the model (unwrapped, e.g. a detector).
        name: dotted name such as ``'backbone'`` or ``'backbone.layer4'``.
        field: the config field that names it, for the error message.

    Returns:
        nn.Module: the sub-module.
    """
    try:
        return model.get_submodule(name)
    except AttributeError as err:
        children = ', '.join(n for n, _ in model.named_children())
        raise KeyError(f'{field} names {name!r}, but {type(model).__name__} has no such '
                       f'sub-module (its children: {children})') from err


def frozen_module_names(frozen_cfg: Optional[dict], source: str = 'the config') -> List[str]:
    """The module names a ``frozen`` dict names, after checking its keys.

    Args:
        frozen_cfg: the config's ``frozen`` dict, or None.
        source: where it comes from (a config file name), for error messages.

    Returns:
        list[str]: the names in ``frozen.modules`` (empty when nothing is frozen).

    Raises:
        KeyError: ``frozen`` has a key other than :data:`FROZEN_CFG_KEYS`.
        TypeError: ``frozen.modules`` is not a string or a list of strings.
    """
    if not frozen_cfg:
        return []
    unknown = sorted(set(frozen_cfg) - set(FROZEN_CFG_KEYS))
    if unknown:
        raise KeyError(f'{source}: frozen.{unknown[0]} is not a known field of `frozen` '
                       f'(known: {", ".join(FROZEN_CFG_KEYS)})')
    names = frozen_cfg.get('modules', ())
    if isinstance(names, str):
        names = [names]
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f'{source}: frozen.modules must be a list of module names such as '
                        f"['backbone'], got {names!r}")
    return list(names)


def frozen_cfg_of(cfg, source: Optional[str] = None) -> dict:
    """A config's ``frozen`` dict (empty when absent), refusing the former field ``freeze``.

    Args:
        cfg: an MMEngine ``Config`` (or dict).
        source: the config's file name for messages; defaults to ``cfg.filename``.

    Returns:
        dict: ``cfg['frozen']`` as a plain dict.

    Raises:
        KeyError: the config still has a ``freeze`` field.
    """
    source = source or getattr(cfg, 'filename', None) or 'the config'
    if OLD_FROZEN_FIELD in cfg:
        raise KeyError(f'{source}: the field `{OLD_FROZEN_FIELD}` is now called `frozen` '
                       f"(frozen = dict(modules=['backbone'], check=True, "
                       f'allow_uninitialized=False)); rename it')
    return dict(cfg.get('frozen') or {})


def trainable_parameters(module: nn.Module) -> List[str]:
    """Names of the parameters of ``module`` that require gradients."""
    return [name for name, param in module.named_parameters() if param.requires_grad]


def mode_dependent_layers_in_train_mode(module: nn.Module) -> List[str]:
    """Names of normalisation and dropout layers of ``module`` that are in train mode.

    Other layers (convolutions, activations, containers) compute the same in both modes:
    mmdet's ResNet with ``frozen_stages=4`` leaves itself and its ReLU in train mode, rightly.
    """
    return [name for name, sub in module.named_modules()
            if sub.training and isinstance(sub, MODE_DEPENDENT_TYPES)]


def unfrozen_parts(model: nn.Module, names: Sequence[str], field: str = 'frozen.modules') -> str:
    """What of the sub-modules ``names`` of ``model`` is not frozen, after ``model.train()``.

    Puts ``model`` in train mode (as a training loop does) to see whether the frozen modules
    stay in eval mode.

    Args:
        model: the built, unwrapped model.
        names: dotted names of modules that must be frozen.
        field: the config field that names them, for the message.

    Returns:
        str: empty when every named module is frozen; otherwise a description naming the first
        trainable parameter or train-mode layer of each module that is not.
    """
    model.train()
    problems = []
    for name in names:
        module = get_submodule_by_name(model, name, field)
        trainable = trainable_parameters(module)
        training = mode_dependent_layers_in_train_mode(module)
        if trainable:
            problems.append(f'{name}.{trainable[0]} requires grad ({len(trainable)} '
                            f'parameter(s) of {name} do)')
        if training:
            layer = training[0]
            problems.append(f'{name}{"." + layer if layer else ""} '
                            f'({type(module.get_submodule(layer)).__name__}) is in train mode '
                            f'after model.train() ({len(training)} layer(s) of {name} are)')
    return '; '.join(problems)


def state_snapshot(module: nn.Module) -> Dict[str, torch.Tensor]:
    """A CPU copy of every parameter and buffer of ``module`` (its ``state_dict``).

    Args:
        module: the module, e.g. a frozen backbone.

    Returns:
        dict[str, Tensor]: detached CPU clones keyed as in ``module.state_dict()``.
    """
    return {key: value.detach().to('cpu', copy=True)
            for key, value in module.state_dict(keep_vars=False).items()}
