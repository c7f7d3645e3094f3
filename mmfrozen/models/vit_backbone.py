"""Plain vision transformers from timm as detection backbones (ViTDet's backbone, global attention).

:class:`TimmViT` builds any of timm's ``VisionTransformer`` models (DINOv2, CLIP, MAE,
supervised ImageNet, ...) and returns the feature maps of the blocks it is asked for through
timm's own ``forward_intermediates``, at stride 16 for a simple feature pyramid
(:class:`~mmfrozen.models.simple_feature_pyramid.SimpleFeaturePyramid`)::

    backbone=dict(type='TimmViT', model_name='vit_base_patch14_dinov2.lvd142m',
                  init_cfg=dict(type='Pretrained', checkpoint='dinov2_vitb14_pretrain.pth'))

* **Input size**: the position embedding is resampled to each input's token grid as it runs
  (timm's ``dynamic_img_size``), and the input is padded to a multiple of the patch size
  (``dynamic_img_pad``), so any detection input works with the weights of a 224 or 518
  classifier.
* **Stride**: a model whose patch is not ``out_stride`` pixels (DINOv2's 14) gives its maps
  resampled to the ``out_stride`` grid, sample positions aligned with the image (a token at
  stride 14 covers ``[14 i, 14 i + 14)``); the weights stay as released.
* **Weights**: loaded by ``init_cfg`` (MMEngine's ``Pretrained``) from a file in its family's
  release layout, converted while it loads (:mod:`mmfrozen.models.vit_weights`): a file that
  does not fit is refused, naming the tensors. timm's ``pretrained=True`` is not used: timm
  loads while it builds the model, where no check can see a missing tensor.
* **Unused parts** are pruned (timm's ``prune_intermediate_layers``): the classifier head, the
  blocks after the last one taken, and the final norm unless ``final_norm=True``; so a
  fine-tuned backbone has no parameter without a gradient (DDP needs none).

Frozen, it is wrapped as any other backbone (``dict(type='FrozenModule', module=...)``); with
LoRA adapters, see :mod:`mmfrozen.models.adapters`.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModule

from .vit_weights import convert_release_state

#: The attribute that holds timm's model (state-dict keys ``vit.blocks.0...``).
VIT_ATTR = 'vit'


@MODELS.register_module()
class TimmViT(BaseModule):
    """A timm vision transformer that returns block outputs as stride-``out_stride`` maps.

    Args:
        model_name: timm model name, a pretrained tag after ``.`` allowed (it selects nothing
            here: the weights come from ``init_cfg``), e.g. ``'vit_base_patch16_224.mae'``.
        out_indices: blocks whose outputs are returned, negative from the end (``-1``: the
            last block, ViTDet's input to the simple feature pyramid).
        out_stride: stride of the returned maps; a model with another patch size is
            resampled to it (None: the patch size).
        final_norm: apply the model's final norm to the returned maps (ViTDet does not).
        drop_path_rate: stochastic depth of the blocks (ViTDet fine-tunes ViT-B with 0.1); off
            in eval mode, so in a frozen backbone.
        init_cfg: MMEngine's initialisation, e.g. ``dict(type='Pretrained', checkpoint=...)``.
        **timm_kwargs: more arguments of ``timm.create_model`` (``img_size``, ``depth``, ...).
    """

    def __init__(self,
                 model_name: str,
                 out_indices: Union[int, Sequence[int]] = (-1, ),
                 out_stride: Optional[int] = 16,
                 final_norm: bool = False,
                 drop_path_rate: float = 0.0,
                 init_cfg: Optional[dict] = None,
                 **timm_kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        import timm
        kwargs = dict(dynamic_img_size=True, dynamic_img_pad=True, drop_path_rate=drop_path_rate)
        kwargs.update(timm_kwargs)
        try:
            vit = timm.create_model(model_name, pretrained=False, **kwargs)
        except TypeError as err:  # a model without a dynamic input size is no plain ViT
            raise TypeError(f'TimmViT: model_name={model_name!r} is not one of timm\'s plain '
                            f'vision transformers ({err})') from err
        if not hasattr(vit, 'forward_intermediates') or not hasattr(vit, 'blocks'):
            raise TypeError(f'TimmViT: model_name={model_name!r} is not one of timm\'s plain '
                            f'vision transformers (a {type(vit).__name__})')
        self.model_name = model_name
        # the classifier's own keys, before pruning: a released file's head and final norm
        # are expected there, unused, not errors (vit_weights.convert_release_state)
        self._unpruned_keys = frozenset(vit.state_dict())
        indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        self.out_indices = vit.prune_intermediate_layers(
            indices, prune_norm=not final_norm, prune_head=True)
        self.final_norm = final_norm
        self.patch_size = tuple(vit.patch_embed.patch_size)
        self.out_stride = out_stride or self.patch_size[0]
        self.embed_dim = vit.embed_dim
        # timm initialised the model as it built it; MMEngine's init_weights would call timm's
        # init_weights again: new random values (twice the time), and tensors that change
        # between construction and loading, which the freeze check reads as loaded
        vit.is_init = True
        setattr(self, VIT_ATTR, vit)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Feature maps of the blocks in ``out_indices``, ``(N, C, ceil(H/s), ceil(W/s))``."""
        maps = self.vit.forward_intermediates(
            x, indices=self.out_indices, norm=self.final_norm, output_fmt='NCHW',
            intermediates_only=True)
        size = (math.ceil(x.shape[-2] / self.out_stride), math.ceil(x.shape[-1] / self.out_stride))
        return tuple(self._at_out_stride(m, size) for m in maps)

    def _at_out_stride(self, feature: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        if self.patch_size == (self.out_stride, self.out_stride):
            return feature
        # scale_factor (not size) keeps the sample positions of the patch grid: output cell j
        # samples the token grid at (s*j + s/2)/p - 1/2, the image position s*j + s/2. The
        # padded token grid covers at least the image, so only a last row may be short.
        scale = self.patch_size[0] / self.out_stride, self.patch_size[1] / self.out_stride
        resampled = F.interpolate(feature, scale_factor=scale, mode='bilinear',
                                  align_corners=False, recompute_scale_factor=False)
        short_h, short_w = size[0] - resampled.shape[-2], size[1] - resampled.shape[-1]
        if short_h > 0 or short_w > 0:
            resampled = F.pad(resampled, (0, max(short_w, 0), 0, max(short_h, 0)),
                              mode='replicate')
        return resampled[..., :size[0], :size[1]]

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Convert a released classifier checkpoint to this backbone's keys, then load.

        ``init_cfg`` loads a file into the backbone itself, so its keys arrive without this
        module's ``vit.``: those are a released classifier's tensors, converted in place
        (MMEngine and torch hand the same dict on to the children). A detector checkpoint
        (``load_from``, resume) already has the ``vit.`` keys and loads as it is.
        """
        own = [key for key in state_dict if key.startswith(prefix)]
        # a released file's keys name no child of this module (vit, adapters)
        foreign = [key for key in own if key[len(prefix):].split('.')[0] not in self._modules]
        if foreign and not any(key.startswith(f'{prefix}{VIT_ATTR}.') for key in own):
            release = {key[len(prefix):]: state_dict.pop(key) for key in foreign}
            converted, unused = convert_release_state(
                release, self.vit, self._unpruned_keys, self._checkpoint_source())
            state_dict.update({f'{prefix}{VIT_ATTR}.{key}': value
                               for key, value in converted.items()})
            if unused:
                from mmengine.logging import print_log
                print_log(f'TimmViT({self.model_name}): {len(unused)} tensor(s) of the '
                          f'checkpoint are not used by the backbone (pruned: head, final norm, '
                          f'later blocks): {", ".join(unused)}', logger='current')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _checkpoint_source(self) -> str:
        init_cfg = self.init_cfg if isinstance(self.init_cfg, dict) else {}
        checkpoint = init_cfg.get('checkpoint')
        return (f'init_cfg.checkpoint={checkpoint}' if checkpoint else
                f'a checkpoint loaded into TimmViT({self.model_name})')
