"""Layer-wise learning-rate decay for a plain ViT backbone, as ViTDet fine-tunes it.

Block ``i`` of an ``L``-block ViT learns at ``lr * decay_rate ** (L - i)``, the patch and
position embeddings at ``lr * decay_rate ** (L + 1)``, everything else (neck, heads) at ``lr``
(BEiT's and ViTDet's rule); biases, norms, tokens and the position embedding take no weight
decay. MMDetection's wheel has no such constructor for a ViT (its
``LearningRateDecayOptimizerConstructor`` reads ConvNeXt's names; ViTDet's lives in its
``projects/``), so mmfrozen registers one::

    optim_wrapper = dict(
        constructor='ViTLayerDecayOptimizerConstructor',
        optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
        paramwise_cfg=dict(decay_rate=0.7))

Parameters are found by name: ``<...>vit.blocks.<i>.`` (:class:`~mmfrozen.models.TimmViT`),
its adapters' mirror names (``adapters.vit.blocks.<i>.``) alike. ``num_layers`` defaults to the
number of blocks of the model. Parameters that do not train are passed to the optimizer as
MMEngine's default constructor passes them, one group each, untouched.
"""
import re
from typing import Dict, List, Optional, Tuple

from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

_BLOCK = re.compile(r'(?:^|\.)vit\.blocks\.(\d+)\.')
#: The ViT's parts before its first block (layer 0).
_EMBEDDING = re.compile(r'(?:^|\.)vit\.(?:cls_token|reg_token|pos_embed|patch_embed|norm_pre)\b')
#: Parameter names (last component) without weight decay, besides biases and 1-d tensors.
NO_DECAY_NAMES = ('cls_token', 'reg_token', 'pos_embed')


def vit_layer_id(name: str, num_layers: int) -> int:
    """The layer of a parameter: 0 for the embeddings, ``i + 1`` for block ``i``, and
    ``num_layers + 1`` for anything else (neck, heads, the final norm).

    Args:
        name: the parameter's name in the model, e.g. ``'backbone.vit.blocks.3.attn.qkv.weight'``.
        num_layers: the number of blocks.

    Returns:
        int: its layer.
    """
    block = _BLOCK.search(name)
    if block:
        return int(block.group(1)) + 1
    if _EMBEDDING.search(name):
        return 0
    return num_layers + 1


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ViTLayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """MMEngine's default constructor with ViTDet's layer-wise learning-rate decay.

    ``paramwise_cfg`` keys: ``decay_rate`` (default 1.0: no decay) and ``num_layers`` (default:
    the number of ViT blocks in the model). MMEngine's other ``paramwise_cfg`` options are not
    read: name them and the constructor refuses.
    """

    OWN_KEYS = ('decay_rate', 'num_layers')

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   is_dcn_module: Optional[int] = None) -> None:
        """Fill ``params`` with one group per (layer, decayed or not) of ``module``'s
        trainable parameters, and one group per frozen parameter."""
        unknown = sorted(set(self.paramwise_cfg) - set(self.OWN_KEYS))
        if unknown:
            raise KeyError(f'ViTLayerDecayOptimizerConstructor: paramwise_cfg.{unknown[0]} is '
                           f'not read by it (it reads {", ".join(self.OWN_KEYS)})')
        named = list(module.named_parameters(prefix=prefix.rstrip('.')))
        num_layers = self.paramwise_cfg.get('num_layers') or 1 + max(
            (int(m.group(1)) for name, _ in named for m in [_BLOCK.search(name)] if m),
            default=-1)
        decay_rate = float(self.paramwise_cfg.get('decay_rate', 1.0))
        groups: Dict[Tuple[int, bool], dict] = {}
        for name, param in named:
            if not param.requires_grad:
                # as MMEngine's default constructor; named, as torch wants all groups or none
                params.append({'params': [param], 'param_names': [name]})
                continue
            layer_id = vit_layer_id(name, num_layers)
            no_decay = (param.ndim <= 1 or name.endswith('.bias')
                        or name.rsplit('.', 1)[-1] in NO_DECAY_NAMES)
            scale = decay_rate**(num_layers + 1 - layer_id)
            group = groups.get((layer_id, no_decay))
            if group is None:
                group = groups[(layer_id, no_decay)] = dict(
                    params=[], param_names=[], lr_scale=scale, layer_id=layer_id)
                if self.base_lr is not None:
                    group['lr'] = self.base_lr * scale
                if self.base_wd is not None:
                    group['weight_decay'] = 0.0 if no_decay else self.base_wd
            group['params'].append(param)
            group['param_names'].append(name)
        params.extend(groups[key] for key in sorted(groups))
        print_log(f'ViTLayerDecayOptimizerConstructor: {num_layers} layers, decay rate '
                  f'{decay_rate}, {len(groups)} parameter groups', logger='current')
