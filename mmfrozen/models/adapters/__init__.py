"""Adapters: small trained modules added to a frozen backbone, the original weights unchanged.

* :mod:`~.lora`: ``LoRAAdapters``, low-rank updates of a ViT's attention and MLP linear layers;
* :mod:`~.residual`: ``ResidualAdapters``, parallel 1x1 convolutions beside the 3x3
  convolutions of a ResNet's blocks;
* :mod:`~.host`: how an adapter joins the module it adapts, and where it lives in the model.
"""
from .host import ADAPTERS_ATTR, AdapterHostMixin, adapted_modules, attach_adapters
from .lora import LoRA, build_lora_adapters
from .residual import ResidualAdapter, build_residual_adapters

__all__ = [
    'ADAPTERS_ATTR', 'AdapterHostMixin', 'LoRA', 'ResidualAdapter', 'adapted_modules',
    'attach_adapters', 'build_lora_adapters', 'build_residual_adapters'
]
