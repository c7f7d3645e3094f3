"""A ViT classifier's released checkpoint, in the key layout of :class:`~.vit_backbone.TimmViT`.

The families publish their weights in their own layouts; a config points ``init_cfg`` at the
file as it is published, and the backbone converts it while MMEngine loads it
(``TimmViT._load_from_state_dict`` calls :func:`convert_release_state`):

* timm's ``state_dict`` (the Hugging Face hub's ``model.safetensors``, through mmfrozen's
  ``timm://`` scheme, or a ``.pth``): timm's own keys;
* DINOv2's original ``dinov2_vit*14_pretrain.pth``: timm's keys plus ``mask_token``;
* MAE's ``mae_pretrain_vit_*.pth``: ``{'model': <timm's keys, no head>}``;
* OpenAI CLIP's ``state_dict``: the image tower under ``visual.`` (``conv1``,
  ``transformer.resblocks.N.attn.in_proj_weight``, ``ln_pre``, ...) beside the text tower.

timm's own ``checkpoint_filter_fn`` for its ``VisionTransformer`` renames the DINOv2 and CLIP
layouts and resamples the position embedding (and a patch-embedding kernel) to the model's grid;
this module adds what a detection backbone needs around it: the file's tensors that the pruned
backbone does not use (classifier head, final norm, blocks after the last one taken) are left
out and listed, and a file that lacks a tensor of the backbone, or holds one of another shape,
is refused with :class:`ViTCheckpointError`, naming them.
"""
import re
from typing import Any, Collection, Dict, List, Mapping, Tuple

import torch
from torch import nn

from .timm_weights import TIMM_BACKBONE_PREFIX

#: Wrappers of a state dict in released files (MAE's ``model``, MMEngine's ``state_dict``).
WRAPPER_KEYS = ('model', 'state_dict')
#: How many key names an error message shows.
SHOWN = 8


class ViTCheckpointError(KeyError):
    """A ViT checkpoint that does not fit the backbone: tensors missing or of another shape."""

    def __str__(self) -> str:  # KeyError quotes its message; show it as written
        return str(self.args[0]) if self.args else ''


def _show(keys: Collection[str]) -> str:
    keys = sorted(keys)
    return ', '.join(keys[:SHOWN]) + (f', ... ({len(keys)} in all)' if len(keys) > SHOWN else '')


def _unwrap(state: Mapping[str, Any]) -> Dict[str, Any]:
    """The tensors of a released file, out of a ``{'model': ...}`` or ``{'state_dict': ...}``."""
    for key in WRAPPER_KEYS:
        inner = state.get(key)
        if isinstance(inner, Mapping):
            return dict(inner)
    return dict(state)


def _from_feature_names(state: Dict[str, Any], vit: nn.Module) -> Dict[str, Any]:
    """Keys of mmfrozen's ``timm://`` loader (``timm_model.`` + timm's feature-extractor names,
    made for mmpretrain's ``TIMMBackbone``) back to the classifier's own: ``blocks_0.x`` is
    ``blocks.0.x`` where ``blocks`` is a sequence of the model."""
    if not any(key.startswith(TIMM_BACKBONE_PREFIX) for key in state):
        return state
    sequences = [name for name, child in vit.named_children()
                 if isinstance(child, (nn.Sequential, nn.ModuleList))]
    pattern = re.compile(rf'^({"|".join(map(re.escape, sequences))})_(\d+)\.') if sequences \
        else None
    out = {}
    for key, value in state.items():
        key = key[len(TIMM_BACKBONE_PREFIX):] if key.startswith(TIMM_BACKBONE_PREFIX) else key
        out[pattern.sub(r'\1.\2.', key, count=1) if pattern else key] = value
    return out


def convert_release_state(state: Mapping[str, Any], vit: nn.Module,
                          unpruned_keys: Collection[str],
                          source: str) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """A released ViT checkpoint's tensors, named and shaped as ``vit`` takes them.

    Args:
        state: the file's content as MMEngine read it (any of the layouts above).
        vit: timm's ``VisionTransformer`` that will receive the tensors (pruned for detection).
        unpruned_keys: the state-dict keys the model had before pruning: tensors of the file
            under those names are the classifier's own, unused by the backbone, not errors.
        source: what the file is, for messages (the config field and path).

    Returns:
        tuple: the converted tensors keyed as in ``vit.state_dict()``, and the names of the
        file's tensors that the backbone leaves unused (classifier head, final norm, ...).

    Raises:
        ViTCheckpointError: the file lacks tensors of ``vit``, holds tensors of another shape,
            or tensors that no such ViT has; the message names them and ``source``.
    """
    from timm.models.vision_transformer import checkpoint_filter_fn
    tensors = _from_feature_names(_unwrap(state), vit)
    converted = checkpoint_filter_fn(dict(tensors), vit)
    expected = vit.state_dict()
    missing = [key for key in expected if key not in converted]
    unused = [key for key in converted if key not in expected and key in unpruned_keys]
    foreign = [key for key in converted if key not in expected and key not in unpruned_keys]
    mismatched = [f'{key} {tuple(converted[key].shape)} (the backbone: {tuple(value.shape)})'
                  for key, value in expected.items()
                  if key in converted and converted[key].shape != value.shape]
    problems = []
    if missing:
        problems.append(f'lacks {len(missing)} tensor(s) of the backbone: {_show(missing)}')
    if mismatched:
        problems.append(f'has {len(mismatched)} tensor(s) of another shape: {_show(mismatched)}')
    if foreign:
        problems.append(f'has {len(foreign)} tensor(s) that this ViT does not have: '
                        f'{_show(foreign)}')
    if problems:
        raise ViTCheckpointError(
            f'{source}: the checkpoint does not fit {type(vit).__name__} '
            f'{getattr(vit, "default_cfg", {}).get("architecture", "")}: ' + '; '.join(problems)
            + ' (is it the checkpoint of this model, in one of the layouts of '
            'mmfrozen.models.vit_weights?)')
    return {key: converted[key] for key in expected}, sorted(unused)
