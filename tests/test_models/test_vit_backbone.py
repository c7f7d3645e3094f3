"""TimmViT, the simple feature pyramid, LN2d and the layer-wise learning-rate decay, on tiny ViTs
(2 blocks, width 64) of the families the configs use: the maps are timm's own block outputs,
at stride 16 whatever the patch size, for any input size; the pyramid makes strides 4 to 64."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

import mmfrozen  # noqa: F401  registers TimmViT, SimpleFeaturePyramid, LN2d, the constructor
from mmdet.registry import MODELS
from mmfrozen.engine.optimizers import vit_layer_id
from mmfrozen.models.layer_norm_2d import LayerNorm2d

TINY = dict(depth=2, embed_dim=64, num_heads=2)


def _vit(model_name: str = 'vit_base_patch16_224.mae', **kwargs) -> nn.Module:
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return MODELS.build(dict(type='TimmViT', model_name=model_name, **{**TINY, **kwargs}))


def test_maps_are_the_last_blocks_output_at_stride_16():
    backbone = _vit().eval()
    x = torch.rand(2, 3, 64, 96)
    (out, ) = backbone(x)
    assert out.shape == (2, 64, 4, 6)
    with torch.no_grad():  # timm's own path: tokens of the last block, class token dropped
        tokens = backbone.vit.forward_features(x)[:, backbone.vit.num_prefix_tokens:]
    assert torch.allclose(out, tokens.transpose(1, 2).reshape(2, 64, 4, 6), atol=1e-6)


def test_unused_parts_are_pruned_and_every_parameter_gets_a_gradient():
    backbone = _vit('vit_base_patch16_clip_224.openai', out_indices=(0, ))
    assert len(backbone.vit.blocks) == 1
    assert not any(k.startswith(('vit.head', 'vit.norm.', 'vit.fc_norm')) for k in
                   backbone.state_dict())
    backbone(torch.rand(1, 3, 32, 32))[0].sum().backward()
    assert [n for n, p in backbone.named_parameters() if p.grad is None] == []


def test_position_embedding_follows_the_input_size():
    """dynamic_img_size: inputs of any size, the stored grid (the classifier's) unchanged."""
    backbone = _vit('vit_small_patch14_dinov2.lvd142m')
    grid = backbone.vit.pos_embed.shape
    shapes = [backbone(torch.rand(1, 3, h, w))[0].shape[-2:] for h, w in ((64, 64), (96, 160))]
    assert shapes == [(4, 4), (6, 10)]
    assert backbone.vit.pos_embed.shape == grid == (1, 1 + 37 * 37, 64)


def test_patch_14_maps_are_resampled_at_image_aligned_positions():
    """A map whose value is a token's centre (14 i + 7) gives each stride-16 cell its own
    centre (16 j + 8), wherever the interpolation is not clamped at the border."""
    backbone = _vit('vit_small_patch14_dinov2.lvd142m')
    tokens = 10  # a 140-pixel wide input, padded to 10 tokens: 9 cells of 16 pixels
    centres = (14 * torch.arange(tokens) + 7).float()
    feature = centres.view(1, 1, 1, tokens).expand(1, 1, 2, tokens)
    out = backbone._at_out_stride(feature, (2, 9))
    inside = slice(1, 8)
    assert out.shape[-1] == 9
    assert torch.allclose(out[0, 0, 0, inside], (16 * torch.arange(9) + 8).float()[inside])


def test_a_model_that_is_not_a_plain_vit_is_refused():
    init_default_scope('mmdet')
    with pytest.raises(TypeError, match="model_name='resnet18' is not one of timm's plain vision"):
        MODELS.build(dict(type='TimmViT', model_name='resnet18'))


def test_simple_feature_pyramid_strides_4_to_64():
    init_default_scope('mmdet')
    neck = MODELS.build(dict(type='SimpleFeaturePyramid', in_channels=64, out_channels=32,
                             num_outs=5))
    outs = neck((torch.rand(2, 64, 8, 12), ))
    assert [o.shape for o in outs] == [(2, 32, 32 // s, 48 // s) for s in (1, 2, 4, 8, 16)]
    assert isinstance(neck.stages[0][1], LayerNorm2d)
    with pytest.raises(ValueError, match='in_channels=64, but the backbone map has 48'):
        neck((torch.rand(1, 48, 8, 8), ))


def test_ln2d_is_layer_norm_over_channels():
    init_default_scope('mmdet')
    norm = MODELS.build(dict(type='LN2d', num_channels=8))
    with torch.no_grad():
        norm.weight.uniform_()
        norm.bias.uniform_()
    x = torch.rand(2, 8, 3, 5)
    expected = F.layer_norm(x.permute(0, 2, 3, 1), (8, ), norm.weight, norm.bias, 1e-6)
    assert torch.allclose(norm(x), expected.permute(0, 3, 1, 2), atol=1e-6)


def test_layer_decay_groups_follow_vitdets_rule():
    """lr * 0.7 ** (L + 1 - layer): embeddings layer 0, block i layer i + 1, the rest L + 1;
    no weight decay on biases, norms, tokens and position embedding; frozen tensors apart."""
    model = nn.Module()
    model.backbone = _vit(depth=3)
    model.neck = nn.Linear(4, 4)
    model.frozen = nn.Linear(4, 4).requires_grad_(False)
    optimizer = build_optim_wrapper(model, dict(
        constructor='ViTLayerDecayOptimizerConstructor',
        optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.1),
        paramwise_cfg=dict(decay_rate=0.5))).optimizer
    lr = {name: (group['lr'], group['weight_decay']) for group in optimizer.param_groups
          for name in group['param_names']}
    assert lr['backbone.vit.patch_embed.proj.weight'] == (0.5**4, 0.1)
    assert lr['backbone.vit.pos_embed'] == (0.5**4, 0.0)
    assert lr['backbone.vit.blocks.0.attn.qkv.weight'] == (0.5**3, 0.1)
    assert lr['backbone.vit.blocks.2.mlp.fc2.weight'] == (0.5, 0.1)
    assert lr['backbone.vit.blocks.2.norm1.weight'] == (0.5, 0.0)
    assert lr['neck.weight'] == (1.0, 0.1) and lr['neck.bias'] == (1.0, 0.0)
    frozen = [g for g in optimizer.param_groups if g['param_names'][0].startswith('frozen.')]
    assert [len(g['params']) for g in frozen] == [1, 1] and 'layer_id' not in frozen[0]
    assert vit_layer_id('backbone.adapters.vit.blocks.1.attn.qkv.up.weight', 12) == 2
    with pytest.raises(KeyError, match='paramwise_cfg.norm_decay_mult is not read'):
        build_optim_wrapper(model, dict(
            constructor='ViTLayerDecayOptimizerConstructor',
            optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.1),
            paramwise_cfg=dict(norm_decay_mult=0.0)))
