"""Adapters, the third arm: LoRA on a tiny ViT's linear layers and residual adapters on mmdet's
ResNet-18 train, and only they; the original tensors stay bit-identical through optimizer steps;
the adapted model starts as the frozen one, saves and loads its adapters, and keeps each host
calling the adapter registered in the tree through deepcopy and torch.save."""
import copy
import io
from typing import Dict

import pytest
import torch
from mmengine.registry import init_default_scope
from torch import nn

import mmfrozen  # noqa: F401  registers the builders
from mmdet.registry import MODELS
from mmfrozen.cost import count_parameters
from mmfrozen.models.adapters import adapted_modules
from mmfrozen.models.freeze import trainable_parameters, unfrozen_parts

VIT = dict(type='TimmViT', model_name='vit_base_patch16_224.mae', depth=2, embed_dim=64,
           num_heads=2)
RESNET = dict(type='ResNet', depth=18, base_channels=16, frozen_stages=4, norm_eval=True)


def _lora_vit(rank: int = 4) -> nn.Module:
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return MODELS.build(dict(type='FrozenModule', trainable=['adapters'], module=dict(
        type='LoRAAdapters', rank=rank, module=VIT)))


def _adapted_resnet() -> nn.Module:
    init_default_scope('mmdet')
    torch.manual_seed(0)
    return MODELS.build(dict(type='ResidualAdapters', module=RESNET))


def _steps(model: nn.Module, x: torch.Tensor, steps: int = 2) -> Dict[str, torch.Tensor]:
    """``steps`` AdamW steps on a made-up loss; the state dict before them."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        sum(out.square().mean() for out in model(x)).backward()
        optimizer.step()
    return before


@pytest.mark.parametrize('build, original, x', [
    (_lora_vit, 'vit.', torch.rand(2, 3, 32, 48)),
    (_adapted_resnet, 'layer', torch.rand(2, 3, 32, 32)),
], ids=['lora-vit', 'residual-resnet'])
def test_only_the_adapters_train_and_the_original_tensors_stay(build, original, x):
    model = build()
    assert trainable_parameters(model) and all(
        name.startswith('adapters.') for name in trainable_parameters(model))
    before = _steps(model, x)
    after = model.state_dict()
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    assert changed == {key for key in before if key.startswith('adapters.')}
    assert any(key.startswith(original) for key in before)
    # train() again, as every epoch: still only the adapters (mmdet's ResNet refreezes its
    # stages at every train(), the adapters are out of its reach)
    model.train()
    assert all(name.startswith('adapters.') for name in trainable_parameters(model))


def test_lora_starts_as_the_frozen_backbone_and_counts_its_rank():
    init_default_scope('mmdet')
    torch.manual_seed(0)
    frozen = MODELS.build(dict(type='FrozenModule', module=VIT))
    adapted = _lora_vit(rank=4)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(frozen(x)[0], adapted(x)[0])
    hosts = [name for name, _, _ in adapted_modules(adapted)]
    assert hosts == [f'vit.blocks.{b}.{layer}' for b in range(2)
                     for layer in ('attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.fc2')]
    # rank x (in + out) per layer: qkv 64->192, proj 64->64, fc1 64->256, fc2 256->64
    per_block = 4 * ((64 + 192) + (64 + 64) + (64 + 256) + (256 + 64))
    assert count_parameters(adapted)['trainable'] == 2 * per_block


def test_the_runner_verifies_the_original_parts_and_not_the_adapters():
    """frozen.modules names the ViT: verified frozen; the whole backbone is not frozen."""
    model = nn.Module()
    model.backbone = _lora_vit()
    assert unfrozen_parts(model, ['backbone.vit']) == ''
    assert unfrozen_parts(model, ['backbone']).startswith(
        'backbone.adapters.vit.blocks.0.attn.qkv.down.weight requires grad')
    assert model.backbone.adapters.training and not model.backbone.vit.training


def test_adapters_save_load_deepcopy_and_torch_save():
    model = _lora_vit()
    _steps(model, torch.rand(1, 3, 32, 32), steps=1)  # the up projections leave zero
    x = torch.rand(1, 3, 32, 32)
    model.eval()
    expected = model(x)[0]
    fresh = _lora_vit()
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    assert torch.equal(fresh(x)[0], expected)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    for copied in (copy.deepcopy(model), torch.load(buffer, weights_only=False)):
        copied.eval()
        assert torch.equal(copied(x)[0], expected)
        # each host calls the adapter of the copy's own tree
        with torch.no_grad():
            copied.adapters.vit.blocks['1'].mlp.fc2.up.weight.add_(1.0)
        assert not torch.equal(copied(x)[0], expected)
        assert torch.equal(model(x)[0], expected)


def test_targets_and_stages_that_match_nothing_are_named():
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match=r"targets=\['attn.qkvv'\] match no nn.Linear layer "
                       r'of TimmViT \(its linear layers end with: attn.proj, attn.qkv'):
        MODELS.build(dict(type='LoRAAdapters', targets=['attn.qkvv'], module=VIT))
    with pytest.raises(ValueError, match="stages names 'layer5', but ResNet has no such child"):
        MODELS.build(dict(type='ResidualAdapters', stages=['layer5'], module=RESNET))
