"""ViTDet's simple feature pyramid: a plain ViT's single stride-16 map to strides 4 to 32 (64).

Li et al., "Exploring Plain Vision Transformer Backbones for Object Detection" (ECCV 2022):
from the last block's map alone, deconvolutions make strides 8 and 4, a max pooling stride 32,
and each level gets a 1x1 and a 3x3 convolution, both normalised (LayerNorm over channels);
a stride-2 sub-sampling of the last level adds stride 64 for heads that want five levels (the
RPN of Mask R-CNN). MMDetection keeps its version in ``projects/ViTDet`` (not in its wheel);
this one is registered in MMDetection's ``MODELS``::

    neck=dict(type='SimpleFeaturePyramid', in_channels=768, out_channels=256, num_outs=5)
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import nn

from . import layer_norm_2d  # noqa: F401  registers LN2d, the default norm

#: The levels ViTDet builds, as factors of the input map's resolution.
SCALE_FACTORS = (4.0, 2.0, 1.0, 0.5)


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """Feature maps at several strides from one backbone map (ViTDet's simple pyramid).

    Args:
        in_channels: channels of the backbone's map (the ViT's width).
        out_channels: channels of every output level.
        scale_factors: resolution of each built level relative to the input map, each of
            4, 2, 1 and 0.5 (from a stride-16 map: strides 4, 8, 16, 32).
        num_outs: levels returned; those beyond ``scale_factors`` sub-sample the last level
            by 2 (max pooling, kernel 1), as detectron2's ``LastLevelMaxPool``.
        in_index: which of the backbone's outputs to take.
        norm_cfg: the norm after each deconvolution and output convolution.
        act_cfg: the activation between the two deconvolutions of the x4 level.
        init_cfg: MMEngine's initialisation (default: PyTorch's for the deconvolutions,
            mmcv's ``ConvModule`` its own for the convolutions).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 scale_factors: Sequence[float] = SCALE_FACTORS,
                 num_outs: int = 5,
                 in_index: int = -1,
                 norm_cfg: dict = dict(type='LN2d'),
                 act_cfg: dict = dict(type='GELU'),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        unknown = [s for s in scale_factors if s not in SCALE_FACTORS]
        if unknown:
            raise ValueError(f'SimpleFeaturePyramid: scale_factors {list(scale_factors)}: '
                             f'{unknown} not among {list(SCALE_FACTORS)}')
        if num_outs < len(scale_factors):
            raise ValueError(f'SimpleFeaturePyramid: num_outs={num_outs} is less than the '
                             f'{len(scale_factors)} levels of scale_factors')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.scale_factors = tuple(scale_factors)
        self.num_outs = num_outs
        self.in_index = in_index
        self.stages = nn.ModuleList(
            self._level(in_channels, out_channels, scale, norm_cfg, act_cfg)
            for scale in self.scale_factors)

    @staticmethod
    def _level(channels: int, out_channels: int, scale: float, norm_cfg: dict,
               act_cfg: dict) -> nn.Sequential:
        layers: List[nn.Module] = []
        if scale == 4.0:
            layers += [nn.ConvTranspose2d(channels, channels // 2, 2, stride=2),
                       build_norm_layer(norm_cfg, channels // 2)[1],
                       MODELS.build(act_cfg),
                       nn.ConvTranspose2d(channels // 2, channels // 4, 2, stride=2)]
            channels //= 4
        elif scale == 2.0:
            layers.append(nn.ConvTranspose2d(channels, channels // 2, 2, stride=2))
            channels //= 2
        elif scale == 0.5:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        # biases are redundant before a norm (detectron2: bias only without norm)
        layers += [ConvModule(channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None),
                   ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg,
                              act_cfg=None)]
        return nn.Sequential(*layers)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """The pyramid, finest level first, from ``inputs[in_index]``."""
        x = inputs[self.in_index]
        if x.shape[1] != self.in_channels:
            raise ValueError(f'SimpleFeaturePyramid: in_channels={self.in_channels}, but the '
                             f'backbone map has {x.shape[1]} channels')
        outs = [stage(x) for stage in self.stages]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
