"""The mini world's NAS-FPN and Cascade + NAS-FPN detectors: each frozen config is its fine-tuned
twin plus the freeze (identical neck and heads: equal capacity), and each trains under the three
build paths, from the mini world's exported classifier backbone.

The build paths: ``MODELS.build(cfg.model)``, MMEngine's ``Runner.from_cfg`` (a plain runner)
and ``RUNNERS.build`` (how MMDetection's ``tools/train.py`` and ours build a config's runner),
each followed by one real ``train_step`` through the config's own optimizer; and
``tools/train.py`` itself on a tiny mini-LVIS set (``mini_world``). What trains after a step:
frozen, everything but the backbone, which stays bit-identical (weights and BN statistics);
fine-tuned, every backbone stage too. The fast suite checks the Cascade + NAS-FPN pair (the
paper's remedy) and steps its frozen arm through ``MODELS.build``; the rest is marked
``configs`` (in-process) or ``mini_world`` (``tools/train.py``).
"""
import copy
import functools
import os.path as osp
from typing import List

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, save_checkpoint

import projects.mini_world.mini_world  # noqa: F401  (registers the mini modules)
from mmdet.registry import MODELS, RUNNERS
from mmdet.testing import demo_mm_inputs
from mmfrozen.engine.runner import FrozenBackboneRunner
from mmfrozen.models.freeze import mode_dependent_layers_in_train_mode, trainable_parameters
from mmfrozen.testing import differing_tensors, last_checkpoint, state_dict
from projects.mini_world.mini_world.backbone_export import export_backbone
from projects.mini_world.mini_world.pipeline import CLASSIFIER_CONFIG, CONFIG_DIR

#: (fine-tuned, frozen) pairs, by file name.
PAIRS = {
    'nasfpn': ('faster-rcnn_r18-finetune_nasfpn_mini-lvis.py',
               'faster-rcnn_r18-frozen_nasfpn_mini-lvis.py'),
    'cascade-nasfpn': ('cascade-rcnn_r18-finetune_nasfpn_mini-lvis.py',
                       'cascade-rcnn_r18-frozen_nasfpn_mini-lvis.py'),
}
CONFIGS = [name for pair in PAIRS.values() for name in pair]
#: The pair the fast suite checks; the other is marked ``configs``.
FAST_PAIR = 'cascade-nasfpn'
PAIR_PARAMS = [pair if pair == FAST_PAIR else pytest.param(pair, marks=pytest.mark.configs)
               for pair in PAIRS]
#: The paper's remedy, stepped in the fast suite.
FAST = 'cascade-rcnn_r18-frozen_nasfpn_mini-lvis.py'
FRAGMENT_KEYS = ('runner_type', 'frozen')
BACKBONE_STAGES = {'conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4'}
BUILD_PATHS = ('MODELS.build', 'Runner.from_cfg', 'RUNNERS.build')


@functools.lru_cache(maxsize=None)
def _resolved(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def _load(name: str, backbone_file: str) -> Config:
    """A config (resolved once per session), copied, its backbone loaded from ``backbone_file``."""
    cfg = copy.deepcopy(_resolved(name))
    cfg.model.backbone.init_cfg.checkpoint = backbone_file
    return cfg


@pytest.fixture(scope='module')
def backbone_file(tmp_path_factory) -> str:
    """The mini world's classifier, its BN statistics drawn as a trained one's are, saved as
    the classifier's run saves it and exported as the detectors' backbone."""
    folder = tmp_path_factory.mktemp('classifier')
    cfg = Config.fromfile(CLASSIFIER_CONFIG)
    init_default_scope('mmdet')
    torch.manual_seed(7)
    classifier = MODELS.build(cfg.model)
    with torch.no_grad():
        for module in classifier.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    classifier_file = str(folder / 'epoch_8.pth')
    save_checkpoint(dict(state_dict=classifier.state_dict(), meta=dict(epoch=8)),
                    classifier_file)
    return export_backbone(classifier_file, str(folder / 'backbone_r18-w16.pth'))


def _drop_keys(cfg: dict, keys) -> dict:
    return {k: v for k, v in cfg.items() if k not in keys}


@pytest.mark.parametrize('pair', PAIR_PARAMS)
def test_frozen_twin_is_the_finetuned_one_plus_the_freeze(pair):
    finetune_name, frozen_name = PAIRS[pair]
    finetune = _resolved(finetune_name).to_dict()
    frozen = _resolved(frozen_name).to_dict()
    finetune['model']['backbone'].update(frozen_stages=4, norm_eval=True)
    assert _drop_keys(frozen, FRAGMENT_KEYS) == finetune
    assert frozen['runner_type'] == 'FrozenBackboneRunner'
    assert frozen['frozen'] == dict(modules=['backbone'], check=True, allow_uninitialized=False)
    assert 'runner_type' not in finetune and 'frozen' not in finetune


@pytest.mark.parametrize('pair', PAIR_PARAMS)
def test_built_like_the_mini_fpn_detectors(pair):
    """Same classifier export, data, schedule, evaluation and hooks as the FPN pair; only the
    model differs."""
    fpn = _resolved('faster-rcnn_r18-finetune_fpn_mini-lvis.py').to_dict()
    cfg = _resolved(PAIRS[pair][0]).to_dict()
    assert _drop_keys(cfg, {'model'}) == _drop_keys(fpn, {'model'})
    assert cfg['model']['backbone'] == fpn['model']['backbone']
    neck = cfg['model']['neck']
    assert (neck['type'], neck['in_channels'], neck['start_level'], neck['num_outs']) == (
        'NASFPN', [16, 32, 64, 128], 0, 5)
    heads = cfg['model']['roi_head']['bbox_head']
    heads = heads if isinstance(heads, list) else [heads]
    assert len(heads) == (3 if pair.startswith('cascade') else 1)
    assert all(head['num_classes'] == len(cfg['classes']) for head in heads)


@pytest.mark.parametrize('pair', PAIR_PARAMS)
def test_twins_build_equal_necks_and_heads(pair, backbone_file):
    """Outside the backbone the two models have the same tensors; the frozen one trains all of
    them and nothing of its backbone, the fine-tuned one its backbone too."""
    init_default_scope('mmdet')
    models = {}
    for name in PAIRS[pair]:
        models[name] = MODELS.build(_load(name, backbone_file).model)
        models[name].init_weights()
    finetune, frozen = (models[name] for name in PAIRS[pair])
    shapes = [{k: v.shape for k, v in m.state_dict().items()} for m in (finetune, frozen)]
    assert shapes[0] == shapes[1]
    non_backbone = [n for n, _ in frozen.named_parameters() if not n.startswith('backbone.')]
    assert trainable_parameters(frozen) == non_backbone
    assert {n.split('.')[1] for n in trainable_parameters(finetune)
            if n.startswith('backbone.')} == BACKBONE_STAGES
    frozen.train()
    assert mode_dependent_layers_in_train_mode(frozen.backbone) == []
    # both start from the exported classifier
    exported = state_dict(backbone_file)
    for model in (finetune, frozen):
        assert differing_tensors(exported, {k[len('backbone.'):]: v for k, v in
                                            model.state_dict().items()
                                            if k.startswith('backbone.')}) == []


def _model(cfg: Config, path: str, tmp_path) -> torch.nn.Module:
    """The model as the build path ``path`` makes it, weights initialised."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    if path == 'MODELS.build':
        model = MODELS.build(copy.deepcopy(cfg.model))
    else:
        runner_cfg = copy.deepcopy(cfg)
        runner_cfg.work_dir = str(tmp_path / path)
        runner_cfg.launcher = 'none'
        runner = (Runner.from_cfg if path == 'Runner.from_cfg' else RUNNERS.build)(runner_cfg)
        if path == 'RUNNERS.build':
            assert isinstance(runner, FrozenBackboneRunner) == ('runner_type' in cfg)
        else:
            assert type(runner) is Runner
        model = runner.model
    model.init_weights()
    return model


def _changed_by_one_step(model: torch.nn.Module, cfg: Config) -> List[str]:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[3, 2],
                          num_classes=len(cfg.classes))
    model.train()
    losses = model.train_step(data, build_optim_wrapper(model, cfg.optim_wrapper))
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
    return [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]


@pytest.mark.parametrize('name, path', [
    (name, path) if (name, path) == (FAST, 'MODELS.build') else
    pytest.param(name, path, marks=pytest.mark.configs)
    for name in CONFIGS for path in BUILD_PATHS
])
def test_one_step_under_every_build_path(name, path, backbone_file, tmp_path):
    cfg = _load(name, backbone_file)
    changed = _changed_by_one_step(_model(cfg, path, tmp_path), cfg)
    backbone = {k.split('.')[1] for k in changed if k.startswith('backbone.')}
    others = {'.'.join(k.split('.')[:3 if k.startswith('roi_head.bbox_head') else 2])
              for k in changed if not k.startswith('backbone.')}
    if '-frozen_' in name:
        assert backbone == set()  # parameters and buffers (BN statistics)
    else:
        assert backbone == BACKBONE_STAGES
    assert {'neck.lateral_convs', 'neck.fpn_stages', 'rpn_head.rpn_conv'} <= others
    heads = ({f'roi_head.bbox_head.{i}' for i in range(3)} if cfg.model.type == 'CascadeRCNN'
             else {'roi_head.bbox_head.shared_fcs', 'roi_head.bbox_head.fc_cls'})
    assert heads <= others, others


@pytest.mark.mini_world
@pytest.mark.parametrize('name', CONFIGS)
def test_one_step_with_tools_train(name, backbone_file, tmp_path, run_tool):
    """tools/train.py on a tiny mini-LVIS set (one batch of 8 images: one iteration), options
    as the mini world's tools pass them; validation through LVISStratifiedMetric."""
    from projects.mini_world.mini_world.lvis_data import choose_vocabulary, write_mini_lvis
    from projects.mini_world.mini_world.pipeline import (SCALES, box_head_stages,
                                                         detector_options, per_stage_options)
    from projects.mini_world.mini_world.world import world_classes

    scale = SCALES['tiny']
    classes = world_classes(**scale.world)
    data_root = str(tmp_path / 'mini_lvis') + '/'
    write_mini_lvis(data_root, classes, scale.detection, scale.seed)
    vocabulary, _ = choose_vocabulary(classes, scale.detection, scale.seed)
    options = detector_options(data_root, backbone_file, [classes[i].name for i in vocabulary],
                               epochs=1, seed=0)
    options['train_dataloader.dataset.dataset.indices'] = 8
    work_dir = tmp_path / 'work'
    config = osp.join(CONFIG_DIR, name)
    args = ['tools/train.py', config, '--work-dir', str(work_dir), '--cfg-options']
    for key, value in options.items():
        if isinstance(value, (list, tuple)):
            value = '[' + ','.join(str(v) for v in value) + ']'
        args.append(f'{key}={value}')
    # the cascade's three box heads each get the vocabulary, as the pipeline gives it
    args = per_stage_options(args, box_head_stages(config))
    proc = run_tool(args, timeout=600)
    log = proc.stdout + proc.stderr
    assert 'Epoch(train) [1][1/1]' in log, log[-3000:]
    trained = state_dict(last_checkpoint(str(work_dir)))
    backbone = {k[len('backbone.'):]: v for k, v in trained.items() if k.startswith('backbone.')}
    differing = differing_tensors(state_dict(backbone_file), backbone)
    if '-frozen_' in name:
        assert differing == []
        assert 'Frozen by the model' in log
    else:
        assert {k.split('.')[0] for k in differing} >= {'conv1', 'layer4'}
    assert osp.isfile(work_dir / 'stratified_eval' / 'summary.json')
