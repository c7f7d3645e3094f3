"""How an adapter joins the module it adapts (its host), and where it lives in the model.

An adapter runs beside its host: ``host(x) + adapter(x)`` (a LoRA beside a linear layer, a 1x1
convolution beside a 3x3 one). The adapters of a backbone live in one sub-tree of it,
``<backbone>.adapters``, that mirrors the hosts' names::

    backbone.vit.blocks.0.attn.qkv.weight               the host: frozen, as released
    backbone.adapters.vit.blocks.0.attn.qkv.up.weight   its adapter: trained

so that every original tensor keeps its name (a frozen or fine-tuned checkpoint loads as it
is; the classifier's file loads as for the frozen backbone), and the freeze of the original
parts is untouched by the adapters: mmdet's ResNet, which sets ``requires_grad=False`` on its
frozen stages at every ``train()``, never reaches them, and ``FrozenModule`` keeps them
training with ``trainable=['adapters']``. The config's ``frozen.modules`` names the original
parts (``backbone.vit``), which the runner and its hook verify bit for bit.

The host gets :class:`AdapterHostMixin` by class swap (:mod:`mmfrozen.models.class_swap`):
its forward adds the adapter's output; it refers to its adapter without registering it (the
adapter is registered once, under ``adapters``), and pickles, deep-copies (EMA) and goes
through ``torch.save`` with the same adapter object as the tree.
"""
from typing import Dict, Iterator, Tuple

from torch import nn

from ..class_swap import MIXIN_ATTR_PREFIX, ModuleMixin, add_mixin

#: The child of an adapted module that holds its adapters.
ADAPTERS_ATTR = 'adapters'
#: The instance attribute through which a host reaches its adapter (not a registered child).
_ADAPTER = f'{MIXIN_ATTR_PREFIX}adapter'


class AdapterHostMixin(ModuleMixin):
    """What an adapted module's class adds: its adapter's output added to its own."""

    def forward(self, x, *args, **kwargs):
        return super().forward(x, *args, **kwargs) + self.__dict__[_ADAPTER](x)


def attach_adapters(module: nn.Module, adapters: Dict[str, nn.Module],
                    source: str = 'the adapters') -> nn.Module:
    """Give each named sub-module of ``module`` its adapter, registered under ``adapters``.

    Args:
        module: the module to adapt (a backbone), in place.
        adapters: dotted name of a host sub-module -> its adapter.
        source: the config type that attaches them, for messages.

    Returns:
        nn.Module: the same module, with an ``adapters`` child.

    Raises:
        ValueError: no adapter given, or ``module`` already has adapters.
    """
    if not adapters:
        raise ValueError(f'{source}: no sub-module of {type(module).__name__} to adapt')
    if ADAPTERS_ATTR in module._modules or hasattr(module, ADAPTERS_ATTR):
        raise ValueError(f'{source}: {type(module).__name__} already has `{ADAPTERS_ATTR}`')
    tree = nn.ModuleDict()
    for name, adapter in adapters.items():
        host = module.get_submodule(name)
        *path, leaf = name.split('.')
        node = tree
        for part in path:
            if part not in node:
                node[part] = nn.ModuleDict()
            node = node[part]
        node[leaf] = adapter
        add_mixin(host, AdapterHostMixin)
        host.__dict__[_ADAPTER] = adapter  # a reference: the tree registers it
    module.add_module(ADAPTERS_ATTR, tree)
    return module


def adapted_modules(module: nn.Module) -> Iterator[Tuple[str, nn.Module, nn.Module]]:
    """``(name, host, adapter)`` for each adapted sub-module of ``module``."""
    for name, sub in module.named_modules():
        if isinstance(sub, AdapterHostMixin):
            yield name, sub, sub.__dict__[_ADAPTER]
