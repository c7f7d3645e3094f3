"""ViT weights load offline, in each family's release layout, through the configs' own path.

Each test writes a checkpoint as its family publishes it (timm's ``state_dict`` as safetensors
or ``.pth``, DINOv2's original ``.pth``, MAE's ``{'model': ...}``, OpenAI CLIP's
``state_dict``) from a seeded tiny model of the family's architecture
(:mod:`mmfrozen.testing.vit_checkpoints`), points the frozen config's own
``init_cfg.checkpoint`` at it, as a user with the real file does (``--cfg-options
model.backbone.module.init_cfg.checkpoint=...``), shrinks the ViT to 2 blocks of width 64 and
builds the backbone: it holds the file's tensors. A file that lacks a tensor, or holds one of
another shape, is refused, naming the tensors and the file.
"""
import copy
import functools
from typing import Callable, Dict

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmfrozen  # noqa: F401  (first: its compat fix lets timm import on a CPU torch)
from mmdet.registry import MODELS
from mmfrozen.models.vit_weights import ViTCheckpointError
from mmfrozen.shipped_configs import config_path
from mmfrozen.testing.vit_checkpoints import (seeded_vit_state, write_dinov2, write_mae,
                                              write_openai_clip, write_timm)

TINY = dict(depth=2, embed_dim=64, num_heads=2)
# format -> (the family's frozen config, release file name, writer, init_cfg checkpoint string)
FORMATS: Dict[str, tuple] = {
    'dinov2-pth': ('vitdet/mask-rcnn_vit-b-dinov2-frozen_sfp_lsj-100e_coco.py',
                   'dinov2_vitb14_pretrain.pth', write_dinov2, '{}'),
    'openai-clip': ('vitdet/mask-rcnn_vit-b-clip-frozen_sfp_lsj-100e_coco.py',
                    'ViT-B-16.state_dict.pth', write_openai_clip, '{}'),
    'mae-pth': ('vitdet/mask-rcnn_vit-b-mae-frozen_sfp_lsj-100e_coco.py',
                'mae_pretrain_vit_base.pth', write_mae, '{}'),
    'timm-safetensors': ('vitdet/mask-rcnn_vit-b-in21k-frozen_sfp_lsj-100e_coco.py',
                         'model.safetensors', write_timm, 'timm://{}'),
    'timm-pth': ('vitdet/mask-rcnn_vit-s-dinov2-frozen_sfp_lsj-100e_coco.py',
                 'pytorch_model.pth', write_timm, '{}'),
}
#: the formats the fast suite loads (the two layouts mmfrozen converts); the others: runs
FAST = ('dinov2-pth', 'openai-clip')


@functools.lru_cache(maxsize=None)
def _resolved(name: str) -> Config:
    return Config.fromfile(config_path(name))


def _backbone_cfg(name: str, checkpoint: str) -> dict:
    """The frozen config's backbone, shrunk, its init_cfg pointed at ``checkpoint``."""
    backbone = copy.deepcopy(_resolved(name).model.backbone)
    assert backbone.type == 'FrozenModule' and backbone.module.type == 'TimmViT'
    backbone.module.update(TINY)
    backbone.module.init_cfg.checkpoint = checkpoint
    return backbone


def _write(fmt: str, tmp_path, edit: Callable = None) -> tuple:
    """The release file of ``fmt`` (its tensors edited by ``edit``) and the timm tensors."""
    name, file_name, write, scheme = FORMATS[fmt]
    model_name = _resolved(name).model.backbone.module.model_name
    state = seeded_vit_state(model_name, **TINY)
    path = str(tmp_path / file_name)
    write(path, edit(dict(state)) if edit else state)
    return name, scheme.format(path), state


def _build(backbone: dict) -> torch.nn.Module:
    init_default_scope('mmdet')
    model = MODELS.build(backbone)
    model.init_weights()
    return model


@pytest.mark.parametrize(
    'fmt', [f if f in FAST else pytest.param(f, marks=pytest.mark.runs) for f in FORMATS])
def test_release_file_loads_into_the_frozen_backbone(fmt, tmp_path):
    name, checkpoint, state = _write(fmt, tmp_path)
    backbone = _build(_backbone_cfg(name, checkpoint))
    loaded = backbone.vit.state_dict()
    assert loaded and all(torch.equal(value, state[key]) for key, value in loaded.items())
    # the parts the detection backbone does not use are the classifier's head and final norm
    assert set(state) - set(loaded) <= {'head.weight', 'head.bias', 'norm.weight', 'norm.bias'}
    assert not any(p.requires_grad for p in backbone.parameters())


@pytest.mark.parametrize(
    'fmt', [f if f in FAST else pytest.param(f, marks=pytest.mark.runs) for f in FORMATS])
def test_a_file_without_a_tensor_is_refused_naming_it(fmt, tmp_path):
    def drop(state):
        del state['blocks.1.attn.qkv.weight']
        return state

    name, checkpoint, _ = _write(fmt, tmp_path, drop)
    with pytest.raises(ViTCheckpointError, match=(
            rf'init_cfg.checkpoint={checkpoint}: the checkpoint does not fit VisionTransformer '
            r'vit_\w+: lacks 1 tensor\(s\) of the backbone: blocks.1.attn.qkv.weight')):
        _build(_backbone_cfg(name, checkpoint))


def test_a_file_of_another_width_is_refused_naming_shapes(tmp_path):
    name, file_name, write, _ = FORMATS['dinov2-pth']
    path = str(tmp_path / file_name)
    write(path, seeded_vit_state('vit_base_patch14_dinov2', depth=2, embed_dim=96, num_heads=2))
    with pytest.raises(ViTCheckpointError, match=r'has \d+ tensor\(s\) of another shape: '
                       r'blocks.0.attn.proj.bias \(96,\) \(the backbone: \(64,\)\)'):
        _build(_backbone_cfg(name, path))
