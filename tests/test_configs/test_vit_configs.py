"""The ViT configs (``configs/vitdet/``) and the adapter configs (``configs/adapters/``): each is
what it says, builds and freezes what it says under every build path (``MODELS.build``,
MMEngine's ``Runner.from_cfg``, ``RUNNERS.build`` as the tools build it) and trains on the CPU;
after training steps of an adapter config the original backbone tensors are bit-identical and
every adapter tensor changed; an adapter run saves its adapters and resumes them exactly.

A step here takes 64x64 images, and the RoI heads 32 sampled RoIs of 64 proposals (their
convolutions dominate a CPU step: 8.8 s for one ViT-S Mask R-CNN step with the configs' 512);
nothing that trains or freezes depends on either. ``Pretrained`` initialisers are dropped
(nothing is downloaded; tests/test_models/test_vit_weights.py loads each release format).
The fast suite checks the fields of two configs, that the LoRA config is its frozen base plus the
adapters, and trains the LoRA config shrunk to a 2-block ViT; the full suite (``configs``) every
config's fields and twin, every config at its size under every path, and (``runs``) a real
``tools/train.py`` run of the shrunk LoRA config, killed after an epoch and resumed.
"""
import copy
import functools
from typing import Dict, List

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmfrozen  # noqa: F401
from mmdet.registry import MODELS, RUNNERS
from mmdet.testing import demo_mm_inputs
from mmfrozen.engine.runner import FrozenBackboneRunner
from mmfrozen.models.freeze import mode_dependent_layers_in_train_mode, trainable_parameters
from mmfrozen.shipped_configs import config_path, list_configs
from mmfrozen.testing import differing_tensors, last_checkpoint, state_dict

VITDET = [c for c in list_configs() if c.startswith('vitdet/')]
ADAPTERS = [c for c in list_configs() if c.startswith('adapters/')]
BACKBONES = {  # token -> (timm model, width)
    'vit-s-dinov2': ('vit_small_patch14_dinov2.lvd142m', 384),
    'vit-b-dinov2': ('vit_base_patch14_dinov2.lvd142m', 768),
    'vit-b-clip': ('vit_base_patch16_clip_quickgelu_224.openai', 768),
    'vit-b-mae': ('vit_base_patch16_224.mae', 768),
    'vit-b-in21k': ('vit_base_patch16_224.augreg2_in21k_ft_in1k', 768),
}
LORA = 'adapters/mask-rcnn_vit-b-dinov2-lora-adapter_sfp_lsj-100e_coco.py'
RESNET_ADAPTERS = 'adapters/mask-rcnn_r50-residual-adapter_fpn_1x_coco.py'
TINY_VIT = dict(depth=2, embed_dim=64, num_heads=2)


@functools.lru_cache(maxsize=None)
def _resolved(name: str) -> Config:
    return Config.fromfile(config_path(name))


def _load(name: str) -> Config:
    return copy.deepcopy(_resolved(name))


def _trunk(backbone: dict) -> dict:
    """The innermost backbone config (inside FrozenModule, LoRAAdapters, ResidualAdapters)."""
    while 'module' in backbone:
        backbone = backbone['module']
    return backbone


def arm(name: str) -> str:
    return 'adapter' if name in ADAPTERS else 'frozen' if '-frozen_' in name else 'finetune'


def test_the_configs_are_found():
    """Five ViTs x Mask / Cascade Mask R-CNN x COCO / LVIS v1 x frozen / fine-tuned; adapters
    for one ViT and one ResNet detector."""
    assert len(VITDET) == 5 * 2 * 2 * 2 and len(ADAPTERS) == 2
    frozen = [c for c in VITDET if '-frozen_' in c]
    assert sorted(c.replace('-frozen_', '-finetune_') for c in frozen) == sorted(
        c for c in VITDET if '-finetune_' in c)
    assert {c.split('_')[1].rsplit('-', 1)[0] for c in VITDET} == set(BACKBONES)


@pytest.mark.parametrize('name', [
    c if c in (LORA, 'vitdet/cascade-mask-rcnn_vit-s-dinov2-finetune_sfp_sample1e-3_lsj-100e_'
               'lvis-v1.py') else pytest.param(c, marks=pytest.mark.configs)
    for c in VITDET + ADAPTERS
])
def test_config_fields(name):
    """The backbone, its input normalisation and width, the optimizer and what is verified."""
    from timm.models import get_pretrained_cfg
    cfg = _resolved(name)
    trunk = _trunk(cfg.model.backbone)
    if name == RESNET_ADAPTERS:
        assert cfg.model.backbone.type == 'ResidualAdapters'
        assert (trunk.type, trunk.frozen_stages, trunk.norm_eval) == ('ResNet', 4, True)
        assert cfg.frozen.modules == ['backbone.conv1', 'backbone.bn1'] + [
            f'backbone.layer{i}' for i in range(1, 5)]
        return
    token = name.split('_')[1].rsplit('-', 1)[0].replace('-lora', '')
    model_name, width = BACKBONES[token]
    assert (trunk.type, trunk.model_name, trunk.drop_path_rate) == ('TimmViT', model_name, 0.1)
    assert trunk.init_cfg == dict(type='Pretrained', checkpoint=f'timm://{model_name}')
    assert cfg.model.neck.type == 'SimpleFeaturePyramid' and cfg.model.neck.in_channels == width
    pretrained = get_pretrained_cfg(model_name)
    assert cfg.model.data_preprocessor.mean == [round(255 * m, 3) for m in pretrained.mean]
    assert cfg.model.data_preprocessor.std == [round(255 * s, 3) for s in pretrained.std]
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999),
                                               weight_decay=0.1)
    if arm(name) == 'adapter':
        assert cfg.model.backbone.trainable == ['adapters']
        assert cfg.model.backbone.module.type == 'LoRAAdapters'
        assert cfg.model.backbone.module.rank == 8
        assert cfg.frozen.modules == ['backbone.vit']
        assert cfg.optim_wrapper.constructor == 'DefaultOptimWrapperConstructor'
    else:
        assert cfg.optim_wrapper.constructor == 'ViTLayerDecayOptimizerConstructor'
        assert cfg.optim_wrapper.paramwise_cfg == dict(decay_rate=0.7)
        assert (cfg.model.backbone.type == 'FrozenModule') == (arm(name) == 'frozen')
    heads = cfg.model.roi_head.bbox_head
    heads = heads if isinstance(heads, list) else [heads]
    assert len(heads) == (3 if '/cascade-' in name else 1)
    classes = 1203 if name.endswith('lvis-v1.py') else 80
    assert [h.num_classes for h in heads] == [classes] * len(heads)
    assert {h.type for h in heads} == {'Shared4Conv1FCBBoxHead'}
    assert cfg.model.roi_head.mask_head.num_classes == classes


def _without_pretrained(cfg):
    """``cfg`` with every ``init_cfg`` of type Pretrained removed (no download here)."""
    if isinstance(cfg, dict):
        return type(cfg)({k: _without_pretrained(v) for k, v in cfg.items()
                          if not (k == 'init_cfg' and isinstance(v, dict)
                                  and v.get('type') == 'Pretrained')})
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_without_pretrained(v) for v in cfg)
    return cfg


def _for_a_cpu_step(cfg: Config, tmp_path) -> Config:
    """``cfg`` for a step on the CPU: no Pretrained, no 1024 padding, 64 proposals and 32
    sampled RoIs per image, a work dir."""
    cfg.model = _without_pretrained(cfg.model)
    cfg.model.data_preprocessor.pop('batch_augments', None)
    train_cfg = cfg.model.train_cfg
    train_cfg.rpn_proposal.max_per_img = 64
    for stage in train_cfg.rcnn if isinstance(train_cfg.rcnn, list) else [train_cfg.rcnn]:
        stage.sampler.num = 32
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    return cfg


def _build(cfg: Config, path: str, name: str):
    """The model of the config ``name`` and its optimizer wrapper, built by ``path``."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    if path == 'MODELS.build':
        model = MODELS.build(cfg.model)
        model.init_weights()
        return model, build_optim_wrapper(model, cfg.optim_wrapper)
    runner = Runner.from_cfg(cfg) if path == 'Runner.from_cfg' else RUNNERS.build(cfg)
    if path == 'RUNNERS.build':
        assert isinstance(runner, FrozenBackboneRunner) == (arm(name) != 'finetune')
        if isinstance(runner, FrozenBackboneRunner):
            assert runner.frozen_modules == cfg.frozen.modules  # verified at build
    else:
        assert type(runner) is Runner
    return runner.model, runner.build_optim_wrapper(runner.optim_wrapper)


def _assert_freeze(model: torch.nn.Module, cfg: Config, name: str) -> None:
    """What trains in the backbone: nothing (frozen), everything (fine-tuned), the adapters
    (adapters; every other tensor in a module that ``frozen.modules`` names)."""
    model.train()
    backbone = dict(model.backbone.named_parameters())
    trained = set(trainable_parameters(model.backbone))
    if arm(name) == 'frozen':
        assert trained == set() and cfg.frozen.modules == ['backbone']
    elif arm(name) == 'finetune':
        assert trained == set(backbone) and 'frozen' not in cfg
    else:
        assert trained == {k for k in backbone if k.startswith('adapters.')} != set()
        named = {f'{m[len("backbone."):]}.{k}' for m in cfg.frozen.modules
                 for k, _ in model.get_submodule(m).named_parameters()}
        assert named == set(backbone) - trained  # frozen.modules names every original part
    for module in cfg.get('frozen', {}).get('modules', []):
        assert mode_dependent_layers_in_train_mode(model.get_submodule(module)) == []


def _steps(model, optim_wrapper, name: str, steps: int) -> Dict[str, List[str]]:
    """``steps`` real training steps on 64x64 images; the backbone and other tensors changed."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = demo_mm_inputs(batch_size=1, image_shapes=[(3, 64, 64)], num_items=[2],
                          num_classes=1203 if 'lvis' in name else 80, with_mask=True)
    model.train()
    for _ in range(steps):
        losses = model.train_step(data, optim_wrapper)
        assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]
    return dict(backbone=[k for k in changed if k.startswith('backbone.')],
                others=[k for k in changed if not k.startswith('backbone.')],
                adapters=[k for k in before if k.startswith('backbone.adapters.')])


def _assert_trained(changed: Dict[str, List[str]], name: str) -> None:
    assert changed['others'], 'the neck and heads must train'
    if arm(name) == 'frozen':
        assert changed['backbone'] == []  # parameters and buffers
    elif arm(name) == 'finetune':
        assert {k.split('.')[2] for k in changed['backbone']} >= {'patch_embed', 'blocks'}
    else:  # the original tensors bit-identical, every adapter tensor changed
        assert sorted(changed['backbone']) == sorted(changed['adapters']) != []


@pytest.mark.configs
@pytest.mark.parametrize('path', ['MODELS.build', 'Runner.from_cfg'])
@pytest.mark.parametrize('name', VITDET + ADAPTERS)
def test_config_builds_and_freezes(name, path, tmp_path):
    """At its size, by the paths other than the tools' (whose model then trains, below)."""
    cfg = _for_a_cpu_step(_load(name), tmp_path)
    model, _ = _build(cfg, path, name)
    _assert_freeze(model, cfg, name)


@pytest.mark.configs
@pytest.mark.parametrize('name', VITDET + ADAPTERS)
def test_config_builds_freezes_and_trains_as_the_tools_build_it(name, tmp_path):
    """At its size, by ``RUNNERS.build``: one step (adapters: two, the LoRA's A moves from the
    second). A step is the same code whatever built the model, so only this path steps."""
    cfg = _for_a_cpu_step(_load(name), tmp_path)
    model, optim_wrapper = _build(cfg, 'RUNNERS.build', name)
    _assert_freeze(model, cfg, name)
    _assert_trained(_steps(model, optim_wrapper, name, 2 if name in ADAPTERS else 1), name)


def _tiny_lora(tmp_path) -> Config:
    """The LoRA config with its ViT shrunk to 2 blocks of width 64, 16 proposals and 8 sampled
    RoIs per image."""
    cfg = _for_a_cpu_step(_load(LORA), tmp_path)
    _trunk(cfg.model.backbone).update(TINY_VIT)
    cfg.model.neck.in_channels = TINY_VIT['embed_dim']
    cfg.model.train_cfg.rpn_proposal.max_per_img = 16
    cfg.model.train_cfg.rcnn.sampler.num = 8
    return cfg


def test_lora_config_trains_its_adapters_only(tmp_path):
    """The shrunk LoRA config (``MODELS.build``; the full suite builds it at its size by every
    path): after two steps the ViT's tensors are bit-identical, every adapter tensor changed."""
    cfg = _tiny_lora(tmp_path)
    model, optim_wrapper = _build(cfg, 'MODELS.build', LORA)
    _assert_freeze(model, cfg, LORA)
    _assert_trained(_steps(model, optim_wrapper, LORA, 2), LORA)


@pytest.mark.runs
def test_an_adapter_run_saves_and_resumes_its_adapters(tmp_path, tiny_coco, run_tool):
    """A real run of the shrunk LoRA config through tools/train.py on the tiny COCO set, its
    ViT loaded from a DINOv2 release file: the frozen-backbone check passes (loaded,
    unchanged), the checkpoints hold the adapters, and a run resumed (``--resume``) from epoch
    1 ends bit-identical to the uninterrupted one."""
    from mmfrozen.testing.vit_checkpoints import seeded_vit_state, write_dinov2
    weights = str(tmp_path / 'dinov2_vitb14_pretrain.pth')
    vit = write_dinov2(weights, seeded_vit_state('vit_base_patch14_dinov2', **TINY_VIT))
    cfg = _tiny_lora(tmp_path)
    _trunk(cfg.model.backbone).init_cfg = dict(type='Pretrained', checkpoint=weights)
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                dict(type='Resize', scale=(64, 64), keep_ratio=True),
                dict(type='PackDetInputs')]
    cfg.merge_from_dict({
        'train_dataloader.dataset.times': 1,
        'train_dataloader.dataset.dataset.data_root': tiny_coco + '/',
        'train_dataloader.dataset.dataset.pipeline': pipeline,
        'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
        'train_dataloader.batch_size': 4,
        'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 100,
        'param_scheduler': [], 'randomness': dict(seed=0),
    })
    # no validation (an epoch loop validates after its last epoch): what is compared is weights
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    config = str(tmp_path / 'lora_tiny.py')
    cfg.dump(config)

    def run(work_dir: str, *args: str) -> str:
        run_tool(['tools/train.py', config, '--work-dir', str(tmp_path / work_dir), *args])
        return last_checkpoint(str(tmp_path / work_dir))

    whole = state_dict(run('whole'))
    assert all(torch.equal(whole[f'backbone.vit.{k}'], v) for k, v in vit.items()
               if f'backbone.vit.{k}' in whole)
    run('killed', '--cfg-options', 'train_cfg.max_epochs=1')
    resumed = state_dict(run('killed', '--resume'))
    assert differing_tensors(resumed, whole) == []
    first = state_dict(str(tmp_path / 'killed' / 'epoch_1.pth'))
    adapters = [k for k in whole if k.startswith('backbone.adapters.')]
    assert adapters and all(not torch.equal(first[k], whole[k]) for k in adapters)


FROZEN_VITDET = [c for c in VITDET if '-frozen_' in c]


@pytest.mark.configs
@pytest.mark.parametrize('name', FROZEN_VITDET)
def test_frozen_config_is_its_finetuned_twin_with_the_vit_frozen(name):
    """A frozen ViT config is its fine-tuned twin with the backbone inside ``FrozenModule``,
    plus the runner's fields of ``_base_/frozen-backbone.py`` (verify all of the backbone)."""
    frozen = _resolved(name).to_dict()
    twin = _resolved(name.replace('-frozen_', '-finetune_')).to_dict()
    twin['model']['backbone'] = dict(type='FrozenModule', module=twin['model']['backbone'])
    fragment = Config.fromfile(config_path('_base_/frozen-backbone.py')).to_dict()
    assert {k: v for k, v in frozen.items() if k not in fragment} == twin
    assert {k: frozen[k] for k in fragment} == fragment


@pytest.mark.parametrize('name, base', [
    (LORA, 'vitdet/mask-rcnn_vit-b-dinov2-frozen_sfp_lsj-100e_coco.py'),
    pytest.param(RESNET_ADAPTERS, 'mask_rcnn/mask-rcnn_r50-frozen_fpn_1x_coco.py',
                 marks=pytest.mark.configs),
])
def test_adapter_config_is_its_frozen_base_plus_the_adapters(name, base):
    """An adapter config is the frozen config it names with the adapters around the same
    backbone, ``frozen.modules`` naming the original parts (LoRA: and one optimizer for the
    adapters, no layer-wise decay); nothing else differs."""
    adapted, frozen = _resolved(name).to_dict(), _resolved(base).to_dict()
    backbone = adapted['model'].pop('backbone')
    original = frozen['model'].pop('backbone')
    if name == LORA:
        assert backbone == dict(type='FrozenModule', trainable=['adapters'], module=dict(
            type='LoRAAdapters', rank=8, module=original['module']))
        assert adapted.pop('optim_wrapper') == dict(
            frozen.pop('optim_wrapper'), constructor='DefaultOptimWrapperConstructor',
            paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
    else:
        assert backbone == dict(type='ResidualAdapters', module=original)
    # frozen.modules names the original parts (test_config_fields), the rest as the base's
    modules, _ = adapted['frozen'].pop('modules'), frozen['frozen'].pop('modules')
    assert modules and all(m.startswith('backbone.') for m in modules)
    assert adapted == frozen
