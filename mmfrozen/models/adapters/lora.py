"""LoRA on a vision transformer's linear layers (Hu et al., "LoRA: Low-Rank Adaptation of Large
Language Models", ICLR 2022), the third arm beside frozen and fine-tuned backbones.

Each adapted ``nn.Linear`` computes ``W x + b + (alpha / rank) * B A x``, with ``W`` and ``b``
as released (frozen) and ``A`` (``rank`` x in) and ``B`` (out x ``rank``) trained; ``B`` starts
at zero, so the adapted backbone starts as the frozen one. The config::

    backbone=dict(
        type='FrozenModule', trainable=['adapters'],
        module=dict(type='LoRAAdapters', rank=8,
                    module=dict(type='TimmViT', model_name=..., init_cfg=...)))
    frozen = dict(modules=['backbone.vit'], check=True, allow_uninitialized=False)

``targets`` names the layers by the end of their names: by default every block's attention
(``attn.qkv``, ``attn.proj``) and MLP (``mlp.fc1``, ``mlp.fc2``) linear layers.
"""
import math
from typing import Sequence

import torch
from mmdet.registry import MODELS
from torch import nn

from .host import attach_adapters

#: timm's names of a ViT block's attention and MLP linear layers.
VIT_LINEAR_LAYERS = ('attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.fc2')


class LoRA(nn.Module):
    """The low-rank update of one linear layer: ``x -> scale * up(down(x))``.

    Args:
        in_features: the host layer's input features.
        out_features: its output features.
        rank: the rank of the update.
        alpha: the update is scaled by ``alpha / rank`` (default: ``rank``, scale 1).
    """

    def __init__(self, in_features: int, out_features: int, rank: int,
                 alpha: float = None) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f'LoRA: rank must be at least 1, got {rank}')
        self.rank = rank
        self.scale = (alpha if alpha is not None else rank) / rank
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=False)
        # as the LoRA paper and peft: A as nn.Linear's own init, B zero (the update starts at 0)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x)) * self.scale

    def extra_repr(self) -> str:
        return f'rank={self.rank}, scale={self.scale:g}'


@MODELS.register_module(name='LoRAAdapters')
def build_lora_adapters(module: dict, rank: int = 8, alpha: float = None,
                        targets: Sequence[str] = VIT_LINEAR_LAYERS, **overrides) -> nn.Module:
    """Build ``module`` and add a LoRA to each of its linear layers named by ``targets``.

    Args:
        module: the config of the module to adapt, e.g. a ``TimmViT`` backbone.
        rank: the rank of every update.
        alpha: the updates are scaled by ``alpha / rank`` (default ``rank``: scale 1).
        targets: ends of the names of the ``nn.Linear`` layers to adapt.
        **overrides: fields a parent adds when it builds its child, merged into ``module``.

    Returns:
        nn.Module: the module built by ``MODELS.build`` with an ``adapters`` child; its own
        keys unchanged.

    Raises:
        ValueError: no linear layer matches ``targets``.
    """
    cfg = dict(module)
    cfg.update(overrides)
    built = MODELS.build(cfg)
    targets = tuple(targets)
    hosts = {name: LoRA(sub.in_features, sub.out_features, rank, alpha)
             for name, sub in built.named_modules()
             if isinstance(sub, nn.Linear) and name.endswith(tuple(f'.{t}' for t in targets))}
    if not hosts:
        raise ValueError(f'LoRAAdapters: targets={list(targets)} match no nn.Linear layer of '
                         f'{cfg.get("type")} (its linear layers end with: '
                         f'{_linear_endings(built)})')
    return attach_adapters(built, hosts, source='LoRAAdapters')


def _linear_endings(module: nn.Module) -> str:
    endings = sorted({'.'.join(name.split('.')[-2:]) for name, sub in module.named_modules()
                      if isinstance(sub, nn.Linear)})
    return ', '.join(endings[:10]) or 'none'
