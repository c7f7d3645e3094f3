"""DetectorGroup: one frozen trunk, K detectors built from their own configs, each trained with
its own optimizer and random stream, equal bit for bit to the same detector alone."""
import copy
import random

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from mmengine.registry import init_default_scope

import mmfrozen  # noqa: F401  registers DetectorGroup
from mmfrozen.engine.optimizers.detector_group_constructor import \
    DetectorGroupOptimWrapperConstructor
from mmfrozen.evaluation.detector_group_evaluator import DetectorGroupEvaluator
from mmfrozen.models.detector_group import (DetectorGroup, DetectorGroupError,
                                            SharedTrunkView, split_state_dict)
from mmfrozen.testing.detector_group import (GROUP_TINY, GROUP_TINY_FASTER, GROUP_TINY_RETINA,
                                             write_tiny_backbone)


@pytest.fixture(scope='module')
def backbone_ckpt(tmp_path_factory) -> str:
    return write_tiny_backbone(str(tmp_path_factory.mktemp('group') / 'backbone.pth'))


#: Each config read once (reading resolves MMDetection's bases: the slow part); the group
#: builds its detectors from copies of them (``config`` may be a loaded Config). The files
#: themselves: test_group_checkpoint_hook.py's runs.
LOADED = {}


def _loaded(path: str) -> Config:
    if path not in LOADED:
        LOADED[path] = Config.fromfile(path)
    return copy.deepcopy(LOADED[path])


def _seed(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _group_cfg(backbone_ckpt: str, **detector_options) -> dict:
    """The tiny group's model config; ``detector_options``: name -> that detector's options."""
    model = _loaded(GROUP_TINY).model.to_dict()
    model['cfg_options'] = {'model.backbone.init_cfg.checkpoint': backbone_ckpt}
    for entry in model['detectors']:
        entry['config'] = _loaded(entry['config'])
        if entry['name'] in detector_options:
            entry['cfg_options'] = detector_options[entry['name']]
    return model


def _group(backbone_ckpt: str, **detector_options) -> DetectorGroup:
    init_default_scope('mmdet')
    return MODELS.build(_group_cfg(backbone_ckpt, **detector_options))


def _alone(config: str, backbone_ckpt: str):
    """The detector built and initialised as its own run does, and its config."""
    init_default_scope('mmdet')
    cfg = _loaded(config)
    cfg.model.backbone.init_cfg.checkpoint = backbone_ckpt
    _seed()
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model, cfg


def _batch(seed: int = 1) -> dict:
    _seed(seed)
    batch = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128), (3, 96, 128)],
                           num_items=[3, 2], num_classes=3)
    state = torch.get_rng_state()
    return batch, state


def test_state_dict_holds_the_trunk_once(backbone_ckpt):
    group = _group(backbone_ckpt)
    keys = list(group.state_dict())
    assert any(k.startswith('backbone.') for k in keys)
    assert not any('.backbone.' in k for k in keys if k.startswith('detectors.'))
    for name, config in (('faster', GROUP_TINY_FASTER), ('retina', GROUP_TINY_RETINA)):
        assert isinstance(group.detectors[name].backbone, SharedTrunkView)
        alone, _ = _alone(config, backbone_ckpt)
        assert list(group.detector_state_dict(name)) == list(alone.state_dict())
    with pytest.raises(KeyError, match='no detector'):
        split_state_dict(group.state_dict(), 'cascade')


@pytest.mark.parametrize('name,options,field', [
    ('retina', {'model.backbone.depth': 34}, 'model.backbone'),
    ('retina', {'model.backbone.init_cfg.checkpoint': 'other.pth'}, 'model.backbone'),
    ('faster', {'model.data_preprocessor.pad_size_divisor': 64}, 'model.data_preprocessor'),
    ('retina', {'train_dataloader.dataset.pipeline.2.scale': (96, 96)},
     'train_dataloader.dataset.pipeline'),
    ('retina', {'train_dataloader.batch_size': 2}, 'train_dataloader.batch_size'),
    ('retina', {'load_from': 'other.pth'}, 'load_from'),
])
def test_refuses_what_cannot_be_shared(backbone_ckpt, name, options, field):
    with pytest.raises(DetectorGroupError, match=rf"detector '(faster|retina)'.*{field}"):
        _group(backbone_ckpt, **{name: options})


def test_refuses_a_backbone_that_trains(backbone_ckpt):
    options = {'model.backbone.frozen_stages': -1, 'model.backbone.norm_eval': False}
    with pytest.raises(DetectorGroupError, match="detector 'faster'.*model.backbone trains"):
        _group(backbone_ckpt, faster=options, retina=options)


@pytest.mark.parametrize('entry,message', [
    (dict(name='a.b', config=GROUP_TINY_FASTER), 'identifier'),
    (dict(name='x', config='missing.py'), r"detectors\[name='x'\].config: no file"),
    (dict(name='x', config=GROUP_TINY_FASTER, opts=1), r'detectors\[0\] must be'),
])
def test_refuses_bad_entries(entry, message):
    with pytest.raises(DetectorGroupError, match=message):
        MODELS.build(dict(type='DetectorGroup', detectors=[entry]))


def _train(model, wrapper, batch, steps: int = 2):
    for _ in range(steps):
        out = model.train_step(copy.deepcopy(batch), wrapper)
    return out


def test_training_equals_each_detector_alone(backbone_ckpt):
    """Two steps of the group leave each detector bit-identical to its run alone."""
    batch, _ = _batch()
    _seed()
    group = _group(backbone_ckpt)
    group.init_weights()
    wrappers = DetectorGroupOptimWrapperConstructor({})(group)
    assert isinstance(wrappers, OptimWrapperDict) and list(wrappers.keys()) == ['faster', 'retina']
    assert wrappers['retina'].clip_grad_kwargs == dict(max_norm=35, norm_type=2)
    calls = []
    group.backbone.register_forward_hook(lambda *args: calls.append(1))
    group.train()
    log_vars = _train(group, wrappers, batch)
    assert len(calls) == 2  # the trunk once per batch
    assert 'faster/loss_cls' in log_vars and 'retina/loss_bbox' in log_vars
    assert group.outside_draws == 0
    for name, config in (('faster', GROUP_TINY_FASTER), ('retina', GROUP_TINY_RETINA)):
        alone, cfg = _alone(config, backbone_ckpt)
        alone.train()
        _train(alone, build_optim_wrapper(alone, cfg.optim_wrapper), batch)
        ours = group.detector_state_dict(name)
        theirs = alone.state_dict()
        differing = [k for k in theirs if not torch.equal(theirs[k], ours[k])]
        assert not differing, f'{name}: {differing[:5]}'


def test_validation_and_outside_draws(backbone_ckpt):
    batch, _ = _batch()
    alone, _ = _alone(GROUP_TINY_RETINA, backbone_ckpt)
    alone.eval()
    theirs = alone.val_step(copy.deepcopy(batch))
    _seed()
    group = _group(backbone_ckpt)
    group.init_weights()
    group.eval()
    before = torch.get_rng_state()
    outputs = group.val_step(copy.deepcopy(batch))
    assert torch.equal(torch.get_rng_state(), before)  # leaves the process's stream alone
    assert len(outputs) == 2 and all(set(o) == {'faster', 'retina'} for o in outputs)
    for ours, their in zip(outputs, theirs):
        assert torch.equal(ours['retina'].pred_instances.bboxes, their.pred_instances.bboxes)
    group.train()
    wrappers = DetectorGroupOptimWrapperConstructor({})(group)
    _train(group, wrappers, batch, steps=1)
    assert group.outside_draws == 0
    torch.rand(1)  # as a random augmentation with num_workers=0 would
    _train(group, wrappers, batch, steps=1)
    assert group.outside_draws == 1


def test_init_refuses_backbones_that_differ(backbone_ckpt, tmp_path):
    other = write_tiny_backbone(str(tmp_path / 'other.pth'), seed=7)
    group = _group(backbone_ckpt)
    # same config fields, other weights: as a checkpoint file replaced between two reads
    group.__dict__['_own_backbones']['retina'].init_cfg['checkpoint'] = other
    with pytest.raises(DetectorGroupError, match="detector 'retina'.*differs"):
        group.init_weights()


def test_evaluator_prefixes_each_detector(backbone_ckpt):
    init_default_scope('mmdet')
    evaluator = DetectorGroupEvaluator(metrics=dict(type='VOCMetric'), per_detector=dict(
        retina=[dict(type='VOCMetric', iou_thrs=[0.75])]))
    evaluator.dataset_meta = dict(classes=('a', 'b', 'c'))
    batch, _ = _batch()
    group = _group(backbone_ckpt)
    group.init_weights()
    group.eval()
    with torch.no_grad():  # as MMEngine's ValLoop
        samples = group.val_step(copy.deepcopy(batch))
    for sample, gt in zip(samples, batch['data_samples']):
        for pred in sample.values():
            pred.gt_instances = gt.gt_instances
            pred.ignored_instances = gt.gt_instances[:0]
    evaluator.process(samples, batch)
    metrics = evaluator.evaluate(2)
    assert set(metrics) == {'faster/pascal_voc/mAP', 'faster/pascal_voc/AP50',
                            'retina/pascal_voc/mAP', 'retina/pascal_voc/AP75'}
    with pytest.raises(TypeError, match='per image'):
        evaluator.process(list(batch['data_samples']), batch)


def test_a_dropped_detector_trains_no_more(backbone_ckpt):
    batch, _ = _batch()
    _seed()
    group = _group(backbone_ckpt)
    group.init_weights()
    wrappers = DetectorGroupOptimWrapperConstructor({})(group)
    before = {k: v.clone() for k, v in group.state_dict().items()}
    group.drop('retina')
    group.train()
    log_vars = _train(group, wrappers, batch, steps=1)
    after = group.state_dict()
    assert not any(k.startswith('retina/') for k in log_vars)
    assert all(torch.equal(before[k], after[k]) for k in after if k.startswith('detectors.retina'))
    assert not torch.equal(before['detectors.faster.roi_head.bbox_head.fc_cls.weight'],
                           after['detectors.faster.roi_head.bbox_head.fc_cls.weight'])
    group.eval()
    with torch.no_grad():
        assert set(group.val_step(copy.deepcopy(batch))[0]) == {'faster', 'retina'}
    assert group.rng_streams()['dropped'] == ['retina']
    with pytest.raises(DetectorGroupError, match='every detector'):
        group.drop('faster')
