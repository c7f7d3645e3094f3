"""Freezing a sub-module of a model by name: its weights, and its normalisation statistics.

A frozen module has ``requires_grad=False`` on every parameter and stays in eval mode through
every later ``model.train()`` call, so BatchNorm neither updates its running statistics nor
uses batch statistics. This works for any module (ResNet, ResNeXt, Res2Net, RegNet, Swin, ...),
unlike per-backbone options such as ResNet's ``frozen_stages``.
"""
import types
from typing import List, Optional, Sequence

from torch import nn

FROZEN_FLAG = '_mmfrozen_frozen'


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


def apply_freeze(model: nn.Module, freeze_cfg: Optional[dict]) -> List[str]:
    """Freeze the sub-modules a config's ``freeze`` field names.

    Args:
        model: the built (unwrapped) model.
        freeze_cfg: the config's ``freeze`` dict, e.g. ``dict(modules=['backbone'])``; None or
            a dict without ``modules`` freezes nothing.

    Returns:
        list[str]: names of the modules frozen.
    """
    if not freeze_cfg:
        return []
    names: Sequence[str] = freeze_cfg.get('modules', ())
    if isinstance(names, str):
        names = [names]
    for name in names:
        freeze_module(get_submodule_by_name(model, name))
    return list(names)
