"""LayerNorm over the channels of a ``(N, C, H, W)`` map, registered as ``LN2d``.

ViTDet's simple feature pyramid and its heads normalise with LayerNorm per position over the
channels (detectron2's ``LayerNorm`` for conv features); MMDetection's wheel has no such layer
(its ViTDet project does), so mmfrozen registers one in MMDetection's ``MODELS``, for
``norm_cfg=dict(type='LN2d')`` in mmcv's ``ConvModule`` and MMDetection's heads.
"""
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import nn

NAME = 'LN2d'


class LayerNorm2d(nn.LayerNorm):
    """``nn.LayerNorm`` over dimension 1 of a ``(N, C, H, W)`` tensor.

    Args:
        num_channels: C.
        eps: added to the variance.
        **kwargs: more arguments of ``nn.LayerNorm`` (``elementwise_affine``, ...).
    """

    def __init__(self, num_channels: int, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(num_channels, eps=eps, **kwargs)
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f'{NAME} takes (N, C, H, W) maps, got a tensor of shape '
                             f'{tuple(x.shape)}')
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2).contiguous()


# mmpretrain registers its own LN2d in its own scope; a future MMDetection that registers one
# keeps its own (mmdet's own registry, not its parents, is asked)
if NAME not in MODELS.module_dict:
    MODELS.register_module(name=NAME, module=LayerNorm2d)
