"""Freezing a sub-module of a model by name: its weights, and its normalisation statistics.

A frozen module has ``requires_grad=False`` on every parameter and stays in eval mode through
every later ``model.train()`` call, so BatchNorm neither updates its running statistics nor
uses batch statistics. This works for any module (ResNet, ResNeXt, Res2Net, RegNet, Swin, ...),
unlike per-backbone options such as ResNet's ``frozen_stages``.
"""
import types
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

FROZEN_FLAG = '_mmfrozen_frozen'
#: Keys of a config's ``freeze`` dict.
FREEZE_CFG_KEYS = ('modules', 'check', 'allow_uninitialized')


def _frozen_train(self: nn.Module, mode: bool = True) -> nn.Module:
    """``nn.Module.train`` for a frozen module: whatever is asked, stay in eval mode."""
    return nn.Module.train(self, False)


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
        # Instance attribute: nn.Module.train of a parent calls child.train(mode) on each child.
        sub.train = types.MethodType(_frozen_train, sub)
        setattr(sub, FROZEN_FLAG, True)
    nn.Module.train(module, False)
    return module


def is_frozen(module: nn.Module) -> bool:
    """Whether ``module`` was frozen by :func:`freeze_module`."""
    return bool(getattr(module, FROZEN_FLAG, False))


def get_submodule_by_name(model: nn.Module, name: str) -> nn.Module:
    """``model.get_submodule(name)`` with an error that lists what exists.

    Args:
        model: the model (unwrapped, e.g. a detector).
        name: dotted name such as ``'backbone'`` or ``'backbone.layer4'``.

    Returns:
        nn.Module: the sub-module.
    """
    try:
        return model.get_submodule(name)
    except AttributeError as err:
        children = ', '.join(n for n, _ in model.named_children())
        raise KeyError(f'freeze.modules names {name!r}, but {type(model).__name__} has no such '
                       f'sub-module (its children: {children})') from err


def frozen_module_names(freeze_cfg: Optional[dict], source: str = 'the config') -> List[str]:
    """The module names a ``freeze`` dict names, after checking its keys.

    Args:
        freeze_cfg: the config's ``freeze`` dict, or None.
        source: where it comes from (a config file name), for error messages.

    Returns:
        list[str]: the names in ``freeze.modules`` (empty when nothing is frozen).

    Raises:
        KeyError: ``freeze`` has a key other than :data:`FREEZE_CFG_KEYS`.
        TypeError: ``freeze.modules`` is not a string or a list of strings.
    """
    if not freeze_cfg:
        return []
    unknown = sorted(set(freeze_cfg) - set(FREEZE_CFG_KEYS))
    if unknown:
        raise KeyError(f'{source}: freeze.{unknown[0]} is not a known field of `freeze` '
                       f'(known: {", ".join(FREEZE_CFG_KEYS)})')
    names = freeze_cfg.get('modules', ())
    if isinstance(names, str):
        names = [names]
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f'{source}: freeze.modules must be a list of module names such as '
                        f"['backbone'], got {names!r}")
    return list(names)


def state_snapshot(module: nn.Module) -> Dict[str, torch.Tensor]:
    """A CPU copy of every parameter and buffer of ``module`` (its ``state_dict``).

    Args:
        module: the module, e.g. a frozen backbone.

    Returns:
        dict[str, Tensor]: detached CPU clones keyed as in ``module.state_dict()``.
    """
    return {key: value.detach().to('cpu', copy=True)
            for key, value in module.state_dict(keep_vars=False).items()}


def apply_freeze(model: nn.Module, freeze_cfg: Optional[dict]) -> List[str]:
    """Freeze the sub-modules a config's ``freeze`` field names.

    Args:
        model: the built (unwrapped) model.
        freeze_cfg: the config's ``freeze`` dict, e.g. ``dict(modules=['backbone'])``; None or
            a dict without ``modules`` freezes nothing.

    Returns:
        list[str]: names of the modules frozen.
    """
    names: Sequence[str] = frozen_module_names(freeze_cfg)
    for name in names:
        freeze_module(get_submodule_by_name(model, name))
    return list(names)
