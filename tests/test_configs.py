"""Every config under configs/ (except configs/mini/): loads, builds on the CPU, freezes what it
says.

Models are built from the configs (``MODELS.build``) without running ``init_weights``, so no
pretrained weights are downloaded. One real training step per family, through the config's own
optimizer (``build_optim_wrapper``) and the model's ``train_step``, on a tiny synthetic batch.
"""
import glob
import os.path as osp
from typing import Dict, List

import pytest
import torch
from conftest import REPO
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmfrozen  # noqa: F401
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmfrozen.models.freeze import apply_freeze

CONFIG_ROOT = osp.join(REPO, 'configs')
FRAGMENT_KEYS = ('runner_type', 'freeze')


def _configs() -> List[str]:
    paths = glob.glob(osp.join(CONFIG_ROOT, '**', '*.py'), recursive=True)
    return sorted(osp.relpath(p, CONFIG_ROOT) for p in paths
                  if not osp.relpath(p, CONFIG_ROOT).startswith(('_base_', 'mini')))


CONFIGS = _configs()
FROZEN = [c for c in CONFIGS if '-frozen_' in c]
FINETUNE = [c for c in CONFIGS if '-finetune_' in c]


def _load(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_ROOT, name))


def _build(cfg: Config) -> torch.nn.Module:
    init_default_scope('mmdet')
    return MODELS.build(cfg.model)


def _trainable(module: torch.nn.Module) -> List[str]:
    return [name for name, p in module.named_parameters() if p.requires_grad]


def test_configs_found():
    assert len(FROZEN) >= 38 and len(FROZEN) == len(FINETUNE)
    assert 'faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py' in FROZEN


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_and_freezes(name):
    cfg = _load(name)
    assert 'mmfrozen' in cfg.custom_imports['imports']
    model = _build(cfg)
    frozen = apply_freeze(model, cfg.get('freeze'))
    backbone_trainable = _trainable(model.backbone)
    if '-frozen_' in name or name.startswith('lvis_stage2'):
        assert cfg.runner_type == 'FrozenBackboneRunner'
        freeze = cfg['freeze']  # cfg.freeze is addict's Dict.freeze() method
        assert freeze['check'] is True and freeze['allow_uninitialized'] is False
        assert 'backbone' in frozen and backbone_trainable == []
        assert not any(m.training for m in model.backbone.modules())
    elif '-finetune_' in name:
        # MMDetection's recipe: stem and first stage frozen (frozen_stages=1), layers 2-4 train.
        assert 'runner_type' not in cfg and frozen == []
        assert {n.split('.')[0] for n in backbone_trainable} == {'layer2', 'layer3', 'layer4'}
        expected = sum(p.numel() for layer in ('layer2', 'layer3', 'layer4')
                       for p in getattr(model.backbone, layer).parameters())
        assert sum(p.numel() for n, p in model.backbone.named_parameters()
                   if p.requires_grad) == expected
    else:
        assert '-scratch_' in name
        assert backbone_trainable == [n for n, _ in model.backbone.named_parameters()]
        assert cfg.model.backbone.init_cfg is None
    if name.startswith('lvis_stage2'):
        trainable = _trainable(model)
        assert trainable and all('.fc_cls.' in n for n in trainable)
        assert cfg.model.backbone.init_cfg is None  # every weight from the stage-1 checkpoint


@pytest.mark.parametrize('name', FROZEN)
def test_frozen_twin_differs_only_by_fragment(name):
    twin = name.replace('-frozen_', '-finetune_')
    assert twin in FINETUNE, f'{name} has no fine-tuned twin {twin}'
    frozen_cfg = _load(name).to_dict()
    twin_cfg = _load(twin).to_dict()
    assert {k: v for k, v in frozen_cfg.items() if k not in FRAGMENT_KEYS} == twin_cfg
    fragment = Config.fromfile(osp.join(CONFIG_ROOT, '_base_', 'frozen-backbone.py')).to_dict()
    assert {k: frozen_cfg[k] for k in FRAGMENT_KEYS} == fragment


def test_scratch_twin_of_main_config():
    scratch = _load('faster_rcnn/faster-rcnn_r50-scratch_fpn_1x_coco.py').to_dict()
    finetune = _load('faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py').to_dict()
    scratch_backbone = scratch['model'].pop('backbone')
    finetune_backbone = finetune['model'].pop('backbone')
    assert scratch == finetune
    assert {k for k in finetune_backbone if finetune_backbone[k] != scratch_backbone.get(k)} == {
        'frozen_stages', 'norm_eval', 'init_cfg'}


# One config per family; the small-input override keeps the step fast on a CPU.
FAMILIES = {
    'faster_rcnn': 'faster_rcnn/faster-rcnn_r50-{arm}_fpn_1x_coco.py',
    'retinanet': 'retinanet/retinanet_r50-{arm}_fpn_1x_coco.py',
    'mask_rcnn': 'mask_rcnn/mask-rcnn_r50-{arm}_fpn_1x_coco.py',
    'nas_fpn': 'nas_fpn/faster-rcnn_r50-{arm}_nasfpn_lsj-100e_coco.py',
    'cascade_rcnn': 'cascade_rcnn/cascade-rcnn_r50-{arm}_nasfpn_lsj-100e_coco.py',
}


def _train_step(cfg: Config, with_mask: bool, num_classes: int) -> Dict[str, torch.Tensor]:
    """Build the model, freeze it as the runner would, run one ``train_step``; return the
    backbone's state before and after."""
    cfg.model.data_preprocessor.pop('batch_augments', None)  # LSJ pads to 1024: too slow here
    torch.manual_seed(0)
    model = _build(cfg)
    apply_freeze(model, cfg.get('freeze'))
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    others_before = {k: v.clone() for k, v in model.state_dict().items()
                     if not k.startswith('backbone.')}
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[3, 2],
                          num_classes=num_classes, with_mask=with_mask)
    model.train()
    losses = model.train_step(data, optim_wrapper)
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
    after = model.backbone.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    others_changed = [k for k, v in model.state_dict().items()
                      if k in others_before and not torch.equal(others_before[k], v)]
    return dict(changed=changed, others_changed=others_changed)


@pytest.mark.parametrize('arm', ['frozen', 'finetune'])
@pytest.mark.parametrize('family', list(FAMILIES))
def test_training_step_leaves_frozen_backbone_identical(family, arm):
    cfg = _load(FAMILIES[family].format(arm=arm))
    result = _train_step(cfg, with_mask=family == 'mask_rcnn', num_classes=80)
    assert result['others_changed'], 'the neck and heads must train'
    if arm == 'frozen':
        assert result['changed'] == []
    else:
        assert any(k.startswith(('layer2', 'layer3', 'layer4')) for k in result['changed'])
        assert not any(k.startswith(('conv1', 'bn1', 'layer1')) for k in result['changed'])


def test_lvis_stage2_step_trains_only_the_classifier():
    cfg = _load('lvis_stage2/mask-rcnn_r50_fpn_stage2-cls-sample1e-2_6e_lvis-v1.py')
    result = _train_step(cfg, with_mask=True, num_classes=1203)
    assert result['changed'] == []
    assert result['others_changed'] and all(
        k.startswith('roi_head.bbox_head.fc_cls.') for k in result['others_changed'])
