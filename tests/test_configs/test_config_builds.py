"""Every shipped config (``mmfrozen-config list``): loads, builds on the CPU, freezes what it says,
whatever builds it. The fast suite takes one config per folder and arm (:func:`representatives`),
the full suite (``configs`` marker) every one.

A frozen config's freeze lives in the model, so each of the paths that build one is tested on
every frozen config: ``MODELS.build(cfg.model)`` + ``init_weights()`` (in the full suite, by the
two-step test that follows), MMEngine's
``Runner.from_cfg(cfg)`` (a plain runner, which ignores ``runner_type``), and
``RUNNERS.build(cfg)``, which is how MMDetection's ``tools/train.py`` (and ours, which runs it)
build the runner of a config with ``runner_type``; test_frozen_runs.py runs both tools for
real on a frozen R50 config. ``Pretrained`` initialisers are dropped (nothing is downloaded here).
Two real optimizer steps of every frozen config leave every backbone tensor bit-identical.
"""
import copy
import functools
from typing import Any, Dict, List, Sequence

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
from mmfrozen.models.freeze import (frozen_cfg_of, mode_dependent_layers_in_train_mode,
                                    trainable_parameters)
from mmfrozen.shipped_configs import config_path, list_configs
from mmfrozen.utils import config_arm

FRAGMENT_KEYS = ('runner_type', 'frozen')
RESNET_FREEZE = dict(frozen_stages=4, norm_eval=True)
# What a fine-tuned config trains of its backbone, by backbone type: MMDetection's ResNet recipe
# freezes the stem and first stage (frozen_stages=1); the classifiers of configs/classifiers/
# (ConvNeXt, Swin, timm's, EfficientNet) train every part that has parameters.
FINETUNED_TRAINABLE = {'ResNet': {'layer2', 'layer3', 'layer4'}}
# What a frozen config's runner verifies frozen and loaded from the checkpoint (frozen.modules),
# by backbone type: the whole backbone, but for mmpretrain's ConvNeXt and Swin the classifier's
# parts (their output norms norm0-norm2 for the FPN are in no classifier checkpoint).
CHECKED_MODULES = {
    'mmpretrain.ConvNeXt': ['backbone.downsample_layers', 'backbone.stages', 'backbone.norm3'],
    'mmpretrain.SwinTransformer': ['backbone.patch_embed', 'backbone.stages', 'backbone.norm3'],
}


#: few_shot/'s 59 configs build 10 distinct detectors, one per arm and stage of the protocol
#: (test_few_shot_configs.py::test_every_config_builds_one_of_the_trained_detectors: every
#: config's model, optimizer, runner and frozen fields are those of one of these); the other
#: configs differ from them only in data and schedule, which nothing here reads.
FEW_SHOT_STAGES = ('base-training_voc0712-split1', 'base-training_coco',
                   '1shot-fine-tuning_voc0712-split1', '10shot-fine-tuning_coco')


def _checked_here(name: str) -> bool:
    """configs/vitdet/ and configs/adapters/ are checked by test_vit_configs.py, under every
    build path and for their own arms (ViTs, adapters); of few_shot/, one config per detector."""
    folder = name.split('/', 1)[0]
    if folder == 'few_shot':
        return name.endswith(tuple(f'_fpn_{stage}.py' for stage in FEW_SHOT_STAGES))
    return folder not in ('vitdet', 'adapters')


CONFIGS = [c for c in list_configs() if _checked_here(c)]
FROZEN = [c for c in CONFIGS if '-frozen_' in c]
FINETUNE = [c for c in CONFIGS if '-finetune_' in c]
STAGE2 = [c for c in CONFIGS if c.startswith('lvis_stage2/')]
#: few-shot fine-tuning of the last box layers only: everything else built frozen
LAST_LAYERS = [c for c in CONFIGS if '-lastlayers_' in c]
#: configs that train only their last layers (LVIS stage 2: fc_cls; few-shot: fc_cls, fc_reg)
HEAD_ONLY = STAGE2 + LAST_LAYERS
ALL_FROZEN = FROZEN + HEAD_ONLY


#: Folders whose configs only the full suite builds: few_shot/'s are Faster R-CNN R101 arms
#: whose freezes the fast suite builds through faster_rcnn/ (the backbone) and lvis_stage2/
#: (FrozenModule parts); test_few_shot_configs.py checks their fields fast and trains each
#: detector one step under every build path in the full suite.
FULL_SUITE_FOLDERS = ('few_shot', )


def representatives(names: Sequence[str]) -> List:
    """``names`` as pytest parameters: one of each folder and arm in the fast suite (a
    ResNet-50 one where there is one, the cheapest to build; in ``classifiers/`` the timm one;
    none of :data:`FULL_SUITE_FOLDERS`), the others marked ``configs``."""
    fast = {}
    for name in sorted(names, key=lambda n: ('_r50' not in n and '-timm-' not in n, n)):
        if name.split('/', 1)[0] not in FULL_SUITE_FOLDERS:
            fast.setdefault((name.split('/', 1)[0], config_arm(name)), name)
    return [name if name in fast.values() else pytest.param(name, marks=pytest.mark.configs)
            for name in names]


def one_fast(names: Sequence[str], fast: str) -> List:
    """``names`` as pytest parameters: ``fast`` in the fast suite, the others marked
    ``configs`` (for the tests that train, where one config stands for all)."""
    assert fast in names, fast
    return [name if name == fast else pytest.param(name, marks=pytest.mark.configs)
            for name in names]


@functools.lru_cache(maxsize=None)
def _resolved(name: str) -> Config:
    return Config.fromfile(config_path(name))


def _load(name: str) -> Config:
    """A config, resolved once per session (resolving ``mmdet::`` bases is slow), copied."""
    return copy.deepcopy(_resolved(name))


def _without_pretrained(cfg: Any) -> Any:
    """``cfg`` with every ``init_cfg`` of type Pretrained removed (no download here)."""
    if isinstance(cfg, dict):
        out = {}
        for key, value in cfg.items():
            if key == 'init_cfg' and isinstance(value, dict) and value.get('type') == 'Pretrained':
                continue
            out[key] = _without_pretrained(value)
        return type(cfg)(out)
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_without_pretrained(v) for v in cfg)
    return cfg


def _build(cfg: Config) -> torch.nn.Module:
    init_default_scope('mmdet')
    return MODELS.build(_without_pretrained(copy.deepcopy(cfg.model)))


def _assert_frozen(model: torch.nn.Module, cfg: Config, name: str) -> None:
    """Every module ``frozen.modules`` names: no trainable parameter, and after
    ``model.train()`` no normalisation or dropout layer in train mode."""
    names = frozen_cfg_of(cfg)['modules']
    assert names and (name in HEAD_ONLY or all(n == 'backbone' or n.startswith('backbone.')
                                               for n in names))
    model.train()
    for module_name in ['backbone'] + names:  # the whole trunk, whatever the check names
        module = model.get_submodule(module_name)
        assert trainable_parameters(module) == [], f'{name}: {module_name} trains'
        assert mode_dependent_layers_in_train_mode(module) == [], f'{name}: {module_name}'


def test_configs_found():
    assert len(FROZEN) >= 38 and len(FROZEN) == len(FINETUNE)
    assert 'faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py' in FROZEN
    assert len(STAGE2) == 8  # resampling and class-balanced loss, R50/R101, Mask/Cascade


@pytest.mark.parametrize('name', representatives(FROZEN))
def test_frozen_config_says_it(name):
    """The resolved config carries mmdet's own freezing options (ResNet) or the FrozenModule
    builder (any other backbone), and the runner's fields."""
    cfg = _load(name)
    backbone = cfg.model.backbone
    if backbone.type == 'FrozenModule':
        assert name.startswith('classifiers/') and set(backbone) == {'type', 'module'}
        assert backbone.module.type != 'ResNet'
    else:
        assert backbone.type == 'ResNet'
        assert (backbone.frozen_stages, backbone.norm_eval) == (4, True)
    assert cfg.runner_type == 'FrozenBackboneRunner'
    checked = CHECKED_MODULES.get(backbone.get('module', backbone).type, ['backbone'])
    assert cfg.frozen == dict(modules=checked, check=True, allow_uninitialized=False)


def _path_one_here(names: Sequence[str]) -> List:
    """:func:`representatives` of ``names`` but the frozen configs only the full suite takes:
    the full suite builds those by path 1 in
    :func:`test_two_steps_leave_every_frozen_backbone_tensor_identical`."""
    return [param for param in representatives(names)
            if isinstance(param, str) or param.values[0] not in FROZEN]


@pytest.mark.parametrize('name', _path_one_here(CONFIGS))
def test_models_build_freezes_what_the_config_says(name):
    """Path 1: ``MODELS.build(cfg.model)`` and ``init_weights()``, nothing else."""
    cfg = _load(name)
    assert 'mmfrozen' in cfg.custom_imports['imports']
    model = _build(cfg)
    model.init_weights()
    backbone_trainable = trainable_parameters(model.backbone)
    if name in ALL_FROZEN:
        _assert_frozen(model, cfg, name)
    elif '-finetune_' in name:
        assert 'runner_type' not in cfg and 'frozen' not in cfg
        trained = FINETUNED_TRAINABLE.get(cfg.model.backbone.type, {
            child for child, module in model.backbone.named_children()
            if any(True for _ in module.parameters())})
        assert {n.split('.')[0] for n in backbone_trainable} == trained
        expected = sum(p.numel() for layer in trained
                       for p in getattr(model.backbone, layer).parameters())
        assert sum(p.numel() for n, p in model.backbone.named_parameters()
                   if p.requires_grad) == expected
    else:
        assert '-scratch_' in name
        assert backbone_trainable == [n for n, _ in model.backbone.named_parameters()]
        assert cfg.model.backbone.init_cfg is None
    if name in STAGE2:
        trainable = trainable_parameters(model)
        assert trainable and all('.fc_cls.' in n for n in trainable)
        assert cfg.model.backbone.init_cfg is None  # every weight from the stage-1 checkpoint
    if name in LAST_LAYERS:
        assert {n.rsplit('.', 2)[-2] for n in trainable_parameters(model)} == {
            'fc_cls', 'fc_reg'}
        assert cfg.model.backbone.init_cfg is None  # every weight from the base checkpoint


def _runner_cfg(name: str, tmp_path) -> Config:
    cfg = _load(name)
    cfg.model = _without_pretrained(cfg.model)
    cfg.work_dir = str(tmp_path)
    cfg.launcher = 'none'
    return cfg


@pytest.mark.parametrize('name', representatives(ALL_FROZEN))
def test_runner_from_cfg_freezes(name, tmp_path):
    """Path 2: MMEngine's own ``Runner.from_cfg`` (a plain Runner: no check hook)."""
    cfg = _runner_cfg(name, tmp_path)
    runner = Runner.from_cfg(cfg)
    assert type(runner) is Runner
    _assert_frozen(runner.model, cfg, name)


@pytest.mark.parametrize('name', representatives(ALL_FROZEN))
def test_registry_built_runner_freezes_and_verifies(name, tmp_path):
    """Path 3: ``RUNNERS.build(cfg)``, as MMDetection's tools/train.py and ours build it."""
    cfg = _runner_cfg(name, tmp_path)
    runner = RUNNERS.build(cfg)
    assert isinstance(runner, FrozenBackboneRunner)
    assert runner.frozen_modules == cfg.frozen['modules']
    _assert_frozen(runner.model, cfg, name)


@pytest.mark.parametrize('name', representatives(FROZEN))
def test_frozen_twin_differs_only_by_fragment_and_backbone_freeze(name):
    twin = name.replace('-frozen_', '-finetune_')
    assert twin in FINETUNE, f'{name} has no fine-tuned twin {twin}'
    frozen_cfg = _load(name).to_dict()
    twin_cfg = _load(twin).to_dict()
    if twin_cfg['model']['backbone']['type'] == 'ResNet':
        twin_cfg['model']['backbone'].update(RESNET_FREEZE)
    else:
        twin_cfg['model']['backbone'] = dict(type='FrozenModule',
                                             module=twin_cfg['model']['backbone'])
    if twin_cfg.get('load_from'):  # a second stage starts from its own arm's first stage
        twin_cfg['load_from'] = twin_cfg['load_from'].replace('-finetune_', '-frozen_')
    assert {k: v for k, v in frozen_cfg.items() if k not in FRAGMENT_KEYS} == twin_cfg
    fragment = Config.fromfile(config_path('_base_/frozen-backbone.py')).to_dict()
    fragment['frozen']['modules'] = CHECKED_MODULES.get(twin_cfg['model']['backbone'].get(
        'module', twin_cfg['model']['backbone'])['type'], fragment['frozen']['modules'])
    assert {k: frozen_cfg[k] for k in FRAGMENT_KEYS} == fragment


def test_scratch_twin_of_main_config():
    scratch = _load('faster_rcnn/faster-rcnn_r50-scratch_fpn_1x_coco.py').to_dict()
    finetune = _load('faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py').to_dict()
    scratch_backbone = scratch['model'].pop('backbone')
    finetune_backbone = finetune['model'].pop('backbone')
    assert scratch == finetune
    assert {k for k in finetune_backbone if finetune_backbone[k] != scratch_backbone.get(k)} == {
        'frozen_stages', 'norm_eval', 'init_cfg'}


# One fine-tuned config per family; the small-input override keeps the steps fast on a CPU.
FAMILIES = {
    'faster_rcnn': 'faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py',
    'retinanet': 'retinanet/retinanet_r50-finetune_fpn_1x_coco.py',
    'mask_rcnn': 'mask_rcnn/mask-rcnn_r50-finetune_fpn_1x_coco.py',
    'nas_fpn': 'nas_fpn/faster-rcnn_r50-finetune_nasfpn_lsj-100e_coco.py',
    'cascade_rcnn': 'cascade_rcnn/cascade-rcnn_r50-finetune_nasfpn_lsj-100e_coco.py',
}


def _num_classes(name: str, cfg: Config) -> int:
    """The classes the model predicts (few-shot base training: the base classes only)."""
    head = cfg.model.get('roi_head', {}).get('bbox_head', cfg.model.get('bbox_head', {}))
    head = head[-1] if isinstance(head, list) else head
    head = head.get('module', head)  # FrozenModule
    return head.get('num_classes') or (1203 if 'lvis' in name else 20 if 'voc' in name else 80)


def _train_steps(name: str, steps: int = 2) -> Dict[str, List[str]]:
    """Build the model from the config alone (path 1; a frozen config's freeze checked), run
    ``steps`` real ``train_step`` calls through the config's own optimizer; return which
    backbone and other tensors changed."""
    cfg = _load(name)
    cfg.model.data_preprocessor.pop('batch_augments', None)  # LSJ pads to 1024: too slow here
    torch.manual_seed(0)
    model = _build(cfg)
    model.init_weights()
    if name in ALL_FROZEN:
        assert 'mmfrozen' in cfg.custom_imports['imports']
        _assert_frozen(model, cfg, name)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[3, 2],
                          num_classes=_num_classes(name, cfg), with_mask='mask' in name)
    model.train()
    for _ in range(steps):
        losses = model.train_step(data, optim_wrapper)
        assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
    after = model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    return dict(backbone=[k for k in changed if k.startswith('backbone.')],
                others=[k for k in changed if not k.startswith('backbone.')])


@pytest.mark.parametrize('name', one_fast(FROZEN,
                                          'faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py'))
def test_two_steps_leave_every_frozen_backbone_tensor_identical(name):
    """Built by path 1 and frozen as the config says, then two steps."""
    changed = _train_steps(name)
    assert changed['backbone'] == []  # parameters and buffers (BN statistics, counters)
    assert changed['others'], 'the neck and heads must train'


@pytest.mark.configs
@pytest.mark.parametrize('family', list(FAMILIES))
def test_training_steps_change_a_finetuned_backbone(family):
    changed = _train_steps(FAMILIES[family])
    assert any(k.startswith('backbone.layer') and k.split('.')[1] in ('layer2', 'layer3', 'layer4')
               for k in changed['backbone'])
    assert not any(k.split('.')[1] in ('conv1', 'bn1', 'layer1') for k in changed['backbone'])


CLASSIFIERS_FINETUNED = sorted(c for c in FINETUNE if c.startswith('classifiers/faster-rcnn_')
                               and c.endswith('_coco.py') and '_r50-' not in c)


@pytest.mark.configs
@pytest.mark.parametrize('name', CLASSIFIERS_FINETUNED)
def test_training_steps_change_every_part_of_a_finetuned_classifier(name):
    """A fine-tuned ConvNeXt, Swin, timm or EfficientNet trunk trains in every part."""
    changed = _train_steps(name)
    model = _build(_load(name))
    parts = {child for child, module in model.backbone.named_children()
             if any(True for _ in module.parameters())}
    assert parts and {k.split('.')[1] for k in changed['backbone']} == parts


@pytest.mark.configs
@pytest.mark.parametrize('name', STAGE2)
def test_lvis_stage2_steps_train_only_the_classifier(name):
    changed = _train_steps(name)
    assert changed['backbone'] == []
    assert changed['others'] and all('.fc_cls.' in k for k in changed['others'])
