"""Training cost of a ViT backbone frozen, fine-tuned and with LoRA adapters: the adapters'
parameters are counted (their own entry and as trainable), their forward FLOPs are exactly
their matrix products, and the backward pass and the activations it keeps lie between the
frozen backbone's (none) and the fine-tuned one's.

On a tiny timm ViT (2 blocks of width 64, patch 16: a 64x64 image is 16 tokens and the class
token); tools/cost.py measures the shipped configs (benchmarks/RESULTS.md).
"""
import pytest
import torch
from mmengine.registry import init_default_scope

import mmfrozen  # noqa: F401
from mmdet.registry import MODELS
from mmfrozen.cost import (SavedActivationTracker, TrainingFlopCounter, count_parameters,
                           format_cost_table, measure_training_cost)
from mmfrozen.models.adapters import adapted_modules
from mmfrozen.shipped_configs import config_path

TINY = dict(depth=2, embed_dim=64, num_heads=2)
VIT = dict(type='TimmViT', model_name='vit_base_patch16_224.mae', **TINY)
RANK = 4
BATCH, SIDE = 2, 64
TOKENS = BATCH * ((SIDE // 16)**2 + 1)  # rows every linear layer of the ViT multiplies
ARMS = {
    'finetune': VIT,
    'frozen': dict(type='FrozenModule', module=VIT),
    'lora': dict(type='FrozenModule', trainable=['adapters'],
                 module=dict(type='LoRAAdapters', rank=RANK, module=VIT)),
}
LORA_CONFIG = 'adapters/mask-rcnn_vit-b-dinov2-lora-adapter_sfp_lsj-100e_coco.py'


def _build(arm: str) -> torch.nn.Module:
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(ARMS[arm])
    model.train()
    return model


def _step(model: torch.nn.Module):
    """Forward and (where anything trains) backward FLOPs, and the bytes saved for backward."""
    image = torch.rand(BATCH, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(0))
    with TrainingFlopCounter() as counter, SavedActivationTracker(
            [*model.parameters(), *model.buffers()]) as saved:
        out = model(image)[-1]
        counter.mark_backward_start()
        saved_bytes = saved.live_bytes()
        if out.requires_grad:
            out.sum().backward()
        counter.mark_backward_end()
    return counter, saved_bytes


def _lora_params(model: torch.nn.Module) -> int:
    """rank x (in + out) for each adapted linear layer."""
    return sum(RANK * (host.in_features + host.out_features)
               for _, host, _ in adapted_modules(model))


def test_adapter_parameters_are_counted_as_trained():
    lora = _build('lora')
    counts = count_parameters(lora)  # a backbone alone: all of it under 'heads'
    expected = _lora_params(lora)
    # every block: qkv, proj, fc1 and fc2 of width d: rank x 16 d
    assert expected == TINY['depth'] * RANK * 16 * TINY['embed_dim']
    assert counts['adapters'] == dict(total=expected, trainable=expected)
    assert counts['trainable'] == expected
    assert count_parameters(_build('finetune'))['adapters'] == dict(total=0, trainable=0)


def test_lora_flops_and_activations_lie_between_frozen_and_finetuned():
    (finetune, finetune_saved), (frozen, frozen_saved), (lora, lora_saved) = (
        _step(_build(arm)) for arm in ('finetune', 'frozen', 'lora'))
    assert frozen.forward == finetune.forward > 0
    # each adapted layer adds its two products, 2 FLOPs per multiply-accumulate of each row
    assert lora.forward - frozen.forward == 2 * TOKENS * _lora_params(_build('lora'))
    assert (frozen.backward, frozen_saved) == (0, 0)
    # the gradient goes back through every frozen block to the first adapters, but no frozen
    # weight gets a gradient
    assert 0 < lora.backward < finetune.backward
    assert lora_saved > 0 and finetune_saved > 0


@pytest.mark.configs
def test_cost_tool_reports_the_adapters_of_a_shipped_config():
    """The LoRA config measured as tools/cost.py measures it (its ViT shrunk): the adapters are
    the backbone's only trained parameters, in their own column of the table."""
    options = {f'model.backbone.module.module.{k}': v for k, v in TINY.items()}
    options.update({'model.neck.in_channels': TINY['embed_dim'],
                    'model.data_preprocessor.batch_augments': None})
    result = measure_training_cost(config_path(LORA_CONFIG), device='cpu', batch_size=1,
                                   shape=(64, 64), steps=1, warmup=0, cfg_options=options)
    params = result['params']
    assert params['adapters']['total'] == params['backbone']['trainable'] > 0
    # DINOv2's patch 14 at width 64: rank 8 x 16 x 64 per block
    assert params['adapters']['total'] == TINY['depth'] * 8 * 16 * TINY['embed_dim']
    header = format_cost_table([result]).splitlines()[0]
    assert '| adapter params (M) |' in header
