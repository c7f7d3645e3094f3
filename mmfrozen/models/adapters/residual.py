"""Residual adapters for the ResNet family: a trained 1x1 convolution beside each frozen 3x3
convolution of the residual blocks (the parallel adapters of Rebuffi, Bilen and Vedaldi,
"Efficient parametrization of multi-domain deep neural networks", CVPR 2018).

Each adapted convolution computes ``conv3x3(x) + conv1x1(x)``, the 1x1 with the 3x3's stride
and zero at the start, so the adapted backbone starts as the frozen one. mmdet's ResNet keeps
its own freeze; the config::

    backbone=dict(type='ResidualAdapters',
                  module=dict(type='ResNet', depth=50, frozen_stages=4, norm_eval=True, ...))
    frozen = dict(modules=['backbone.conv1', 'backbone.bn1', 'backbone.layer1',
                           'backbone.layer2', 'backbone.layer3', 'backbone.layer4'], ...)

The adapters hold no normalisation (nothing mode-dependent, no statistics): BatchNorm after a
frozen block's sum stays as the classifier trained it.
"""
from typing import Sequence

import torch
from mmdet.registry import MODELS
from torch import nn

from .host import attach_adapters

#: The residual stages of mmdet's ResNet family (ResNet, ResNeXt, Res2Net, RegNet).
RESNET_STAGES = ('layer1', 'layer2', 'layer3', 'layer4')


class ResidualAdapter(nn.Module):
    """A 1x1 convolution beside a convolution: same input, same output shape; zero at start.

    Args:
        in_channels: the host's input channels.
        out_channels: its output channels.
        stride: its stride.
    """

    def __init__(self, in_channels: int, out_channels: int, stride=1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        nn.init.zeros_(self.conv.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _is_host(conv: nn.Module) -> bool:
    """A plain 3x3 convolution (not grouped: ResNeXt's grouped ones stay without)."""
    return (isinstance(conv, nn.Conv2d) and tuple(conv.kernel_size) == (3, 3)
            and conv.groups == 1)


@MODELS.register_module(name='ResidualAdapters')
def build_residual_adapters(module: dict, stages: Sequence[str] = RESNET_STAGES,
                            **overrides) -> nn.Module:
    """Build ``module`` and add a parallel residual adapter to each 3x3 convolution of the
    residual stages ``stages``.

    Args:
        module: the config of the backbone, e.g. mmdet's ``ResNet`` with its own freeze.
        stages: names of its residual stages whose blocks get adapters (not the stem).
        **overrides: fields a parent adds when it builds its child, merged into ``module``.

    Returns:
        nn.Module: the backbone built by ``MODELS.build`` with an ``adapters`` child; its own
        keys unchanged.

    Raises:
        ValueError: a stage is missing, or the stages hold no plain 3x3 convolution.
    """
    cfg = dict(module)
    cfg.update(overrides)
    built = MODELS.build(cfg)
    hosts = {}
    for stage in stages:
        if not isinstance(getattr(built, stage, None), nn.Module):
            children = ', '.join(name for name, _ in built.named_children())
            raise ValueError(f'ResidualAdapters: stages names {stage!r}, but '
                             f'{cfg.get("type")} has no such child (its children: {children})')
        for name, conv in getattr(built, stage).named_modules():
            if _is_host(conv):
                hosts[f'{stage}.{name}'] = ResidualAdapter(conv.in_channels, conv.out_channels,
                                                           conv.stride)
    if not hosts:
        raise ValueError(f'ResidualAdapters: the stages {list(stages)} of {cfg.get("type")} '
                         'hold no plain 3x3 convolution to adapt')
    return attach_adapters(built, hosts, source='ResidualAdapters')
