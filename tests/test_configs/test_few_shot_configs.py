"""configs/few_shot/: the few-shot protocol's configs are what their generator writes, resolve to
the protocol, score it, and each builds and trains one step on the CPU under every build path.

The build paths are test_config_builds.py's: ``MODELS.build(cfg.model)``, MMEngine's
``Runner.from_cfg`` and ``RUNNERS.build`` (MMDetection's tools/train.py and ours). What trains
after a real step, by arm: ``finetune`` exactly what MMDetection's own R101 config trains (the
backbone's layers 2-4, not its stem and first stage) and the rest; ``frozen`` everything but the
backbone, which stays bit-identical; ``lastlayers`` only the box classifier and regressor.

The 59 configs hold 10 distinct detectors: a K-shot config's model, optimizer and runner fields
do not depend on K or on the VOC split (only its data, schedule, scoring and starting point do),
nor a VOC base training's on the split. The full suite (``configs``) trains each of the 10 under
the three paths (30-45 s each on this 2-core machine), checks that every config's model,
optimizer and runner fields equal one of them and every config's data, classes, scoring,
schedule and starting point; ``runs`` takes the protocol through the tools themselves on a tiny
Pascal VOC (base training, surgery, K-shot fine-tuning, scores). The fast suite checks the files,
one K-shot and one base-training config, and the scores of one K-shot config's evaluator.
"""
import contextlib
import copy
import functools
import glob
import importlib.util
import io
import json
import os
import os.path as osp
import re
from typing import Any, Dict, List

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import mmdet
import mmfrozen  # noqa: F401
from mmdet.registry import DATASETS, METRICS, MODELS, RUNNERS
from mmdet.testing import demo_mm_inputs
from mmfrozen.datasets.few_shot_splits import COCO_CLASSES, FewShotSplit, few_shot_split
from mmfrozen.engine.runner import FrozenBackboneRunner
from mmfrozen.shipped_configs import config_path, configs_dir, list_configs
from mmfrozen.testing.few_shot import VOC_SIZE, convert_voc, voc_detections, write_voc_devkit
from mmfrozen.testing.runs import differing_tensors, run_python, state_dict, tool_env
from mmfrozen.testing.stratified import reference_json, write_renumbered
from mmfrozen.utils import FINETUNE, FROZEN, LAST_LAYERS, config_arm

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = list_configs('few_shot/')
NAME = re.compile(r'few_shot/faster-rcnn_r101-(?P<arm>\w+)_fpn_'
                  r'(?:(?P<shots>\d+)shot-fine-tuning|base-training)_'
                  r'(?:voc0712-split(?P<split>\d)|coco)\.py')
K_SHOT = [c for c in CONFIGS if 'shot-fine-tuning' in c]
BASE_TRAINING = [c for c in CONFIGS if 'base-training' in c]
LAST_LAYER_NAMES = ('fc_cls', 'fc_reg')
FAST = 'few_shot/faster-rcnn_r101-lastlayers_fpn_1shot-fine-tuning_voc0712-split1.py'
FAST_BASE = 'few_shot/faster-rcnn_r101-finetune_fpn_base-training_voc0712-split1.py'
#: TFA's K-shot fine-tuning (its published configs): iterations of 16 images, VOC 4,000 x K.
TFA_ITERATIONS = {('voc', 1): 4000, ('voc', 2): 8000, ('voc', 3): 12000, ('voc', 5): 20000,
                  ('voc', 10): 40000, ('coco', 10): 160000, ('coco', 30): 240000}
#: One config of each distinct detector: base training on VOC (any split) and COCO, K-shot
#: fine-tuning on VOC (any split and K) and COCO (any K), each arm.
TRAINED = [f'few_shot/faster-rcnn_r101-{arm}_fpn_{stage}.py' for arm, stage in (
    ('finetune', 'base-training_voc0712-split1'), ('frozen', 'base-training_voc0712-split1'),
    ('finetune', 'base-training_coco'), ('frozen', 'base-training_coco'),
    *((arm, f'{k}-fine-tuning_{data}') for arm in ('finetune', 'frozen', 'lastlayers')
      for k, data in (('1shot', 'voc0712-split1'), ('10shot', 'coco'))))]
#: The fields that make a config's detector and its training step.
DETECTOR_FIELDS = ('model', 'optim_wrapper', 'runner_type', 'frozen')
#: MMDetection's own Faster R-CNN R101-FPN recipe, what the finetune arm trains as.
MMDET_R101 = osp.join(osp.dirname(mmdet.__file__), '.mim', 'configs', 'faster_rcnn',
                      'faster-rcnn_r101_fpn_1x_coco.py')


def fast_first(names: List[str], fast: str) -> List:
    """``names`` as pytest parameters: ``fast`` in the fast suite, the others ``configs``."""
    assert fast in names, fast
    return [name if name == fast else pytest.param(name, marks=pytest.mark.configs)
            for name in names]


def split_of(name: str) -> FewShotSplit:
    """The protocol's split a config name says."""
    match = NAME.fullmatch(name)
    assert match, f'{name}: not a few-shot config name'
    return few_shot_split(f"voc-split{match['split']}" if match['split'] else 'coco')


@functools.lru_cache(maxsize=None)
def _resolved(name: str) -> Config:
    return Config.fromfile(config_path(name))


def _tool(repo_root: str, name: str):
    """A script of tools/misc as a module."""
    spec = importlib.util.spec_from_file_location(
        name, osp.join(repo_root, 'tools', 'misc', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _without_pretrained(cfg: Any) -> Any:
    """``cfg`` with every ``init_cfg`` of type Pretrained removed (no download here)."""
    if isinstance(cfg, dict):
        return type(cfg)({k: _without_pretrained(v) for k, v in cfg.items()
                          if not (k == 'init_cfg' and isinstance(v, dict)
                                  and v.get('type') == 'Pretrained')})
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(_without_pretrained(v) for v in cfg)
    return cfg


def test_the_shipped_configs_are_what_the_generator_writes(repo_root):
    written = _tool(repo_root, 'few_shot_configs').all_configs()
    assert sorted(f'few_shot/{name}' for name in written) == CONFIGS
    for name, text in written.items():
        with open(osp.join(configs_dir(), 'few_shot', name)) as f:
            assert f.read() == text, f'{name}: run tools/misc/few_shot_configs.py'
    # VOC splits 1-3 x (2 base-training arms + K in 1, 2, 3, 5, 10 x 3 arms), COCO 2 + 2 x 3
    assert len(CONFIGS) == 3 * (2 + 5 * 3) + 2 + 2 * 3
    assert all(NAME.fullmatch(name) for name in CONFIGS)
    arms = [config_arm(name) for name in CONFIGS]
    assert arms.count(FROZEN) == arms.count(FINETUNE) == 21 and arms.count(LAST_LAYERS) == 17


@pytest.mark.parametrize('name', fast_first(BASE_TRAINING, FAST_BASE))
def test_base_training_config_has_only_the_base_classes(name):
    cfg = _resolved(name)
    split = split_of(name)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert tuple(cfg[loader].dataset.metainfo.classes) == split.base, loader
        assert cfg[loader].dataset.type == 'CheckedCocoDataset', loader
    train = cfg.train_dataloader.dataset
    assert train.ann_file == ('annotations/voc0712_trainval.json' if split.name != 'coco' else
                              'annotations/instances_train2017.json')
    assert train.filter_cfg.filter_empty_gt  # images with only novel objects are left out
    assert cfg.model.roi_head.bbox_head.num_classes == len(split.base)
    assert cfg.model.backbone.depth == 101
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint='torchvision://resnet101')
    assert cfg.get('load_from') is None and 'class_groups' not in cfg.val_evaluator
    assert cfg.optim_wrapper.optimizer.lr == 0.02
    assert (config_arm(name) == FROZEN) == (cfg.get('runner_type') == 'FrozenBackboneRunner')


def test_base_training_set_holds_only_base_objects(tmp_path):
    """The base-training set, as its config builds it on a converted VOC devkit of base and novel
    objects: every instance of a base class, no image with only novel objects."""
    split = few_shot_split('voc-split1')
    files = convert_voc(write_voc_devkit(str(tmp_path / 'VOCdevkit'), split.classes,
                                         num_trainval=40, num_test=0), str(tmp_path / 'ann'),
                        splits=('trainval', ))
    dataset_cfg = copy.deepcopy(_resolved(FAST_BASE).train_dataloader.dataset)
    dataset_cfg.update(data_root=str(tmp_path / 'VOCdevkit'), ann_file=files['trainval'])
    init_default_scope('mmdet')
    dataset = DATASETS.build(dataset_cfg)
    with open(files['trainval']) as f:
        gt = json.load(f)
    name_of = {c['id']: c['name'] for c in gt['categories']}
    base_ids = {i: name for i, name in name_of.items() if name in split.base}
    expected = {}
    for ann in gt['annotations']:
        if ann['category_id'] in base_ids:
            expected.setdefault(ann['image_id'], []).append(base_ids[ann['category_id']])
    loaded = {}
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        loaded[info['img_id']] = [split.base[i['bbox_label']] for i in info['instances']]
    assert 0 < len(loaded) < len(gt['images'])  # some images hold only novel objects
    assert {k: sorted(v) for k, v in loaded.items()} == {
        k: sorted(v) for k, v in expected.items()}


@pytest.mark.parametrize('name', fast_first(K_SHOT, FAST))
def test_k_shot_config_resolves_to_the_protocol(name, repo_root):
    cfg = _resolved(name)
    split, arm = split_of(name), config_arm(name)
    shots = int(NAME.fullmatch(name)['shots'])
    data = 'coco' if split.name == 'coco' else 'voc'
    base_name = re.sub(r'-\w+_fpn_\d+shot-fine-tuning_',
                       f"-{FROZEN if arm == FROZEN else FINETUNE}_fpn_base-training_", name)
    base = _resolved(base_name)
    # data: the sampler's file of seed 0, next to the full training file the base trained on
    train = cfg.train_dataloader.dataset
    assert (train.type, train.times) == ('RepeatDataset', 100)
    assert train.dataset.type == 'CheckedCocoDataset'
    full = base.train_dataloader.dataset.ann_file
    sampler = _tool(repo_root, 'few_shot_sample')
    assert train.dataset.ann_file == sampler.out_path(osp.join(osp.dirname(full), 'few_shot'),
                                                      full, shots, 0)
    assert train.dataset.data_root == base.train_dataloader.dataset.data_root
    for dataset in (train.dataset, cfg.val_dataloader.dataset, cfg.test_dataloader.dataset):
        assert tuple(dataset.metainfo.classes) == split.classes
    head = cfg.model.roi_head.bbox_head
    assert head.get('module', head).num_classes == len(split.classes)
    # scoring: novel and base groups on the base training's test set
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.type == 'CocoStratifiedMetric'
        assert evaluator.ann_file == base.val_evaluator.ann_file
        groups = evaluator.class_groups
        assert (tuple(groups.novel), tuple(groups.base)) == (split.novel, split.base)
    # starting point: its arm's base training's last checkpoint after the surgery (docs)
    base_stem = osp.splitext(osp.basename(base_name))[0]
    assert cfg.load_from == (f'work_dirs/{base_stem}/epoch_{base.train_cfg.max_epochs}_surgery_'
                             f'{split.name}.pth')
    assert cfg.model.backbone.init_cfg is None
    # arm
    if arm == LAST_LAYERS:
        assert cfg.frozen == dict(modules=['backbone', 'neck', 'rpn_head',
                                           'roi_head.bbox_head.shared_fcs'],
                                  check=True, allow_uninitialized=False)
        assert cfg.model.roi_head.bbox_head.trainable == list(LAST_LAYER_NAMES)
    if arm == FINETUNE:
        assert 'runner_type' not in cfg and 'frozen' not in cfg
    else:
        assert cfg.runner_type == 'FrozenBackboneRunner'
    # TFA's schedule: its passes over K instances of each class, lr 0.001, one evaluation
    passes = TFA_ITERATIONS[data, shots] * 16 // (shots * len(split.classes))
    assert cfg.optim_wrapper.optimizer.lr == 0.001
    assert train.times * cfg.train_cfg.max_epochs == passes
    assert cfg.train_cfg.val_interval == cfg.train_cfg.max_epochs


def _samples(preds: Dict[int, Dict]) -> List[Dict]:
    """What a detector's test step hands a metric."""
    return [dict(img_id=img_id, ori_shape=(VOC_SIZE, VOC_SIZE),
                 pred_instances=dict(bboxes=torch.from_numpy(p['bboxes']),
                                     scores=torch.tensor(p['scores'], dtype=torch.float32),
                                     labels=torch.from_numpy(p['labels'])))
            for img_id, p in preds.items()]


def _pycocotools_restricted(gt_path: str, results: List[Dict], names) -> np.ndarray:
    """pycocotools' 12 statistics on the named categories only."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        coco_eval = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), 'bbox')
        coco_eval.params.catIds = gt.getCatIds(catNms=list(names))
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats


def _coco_val(path: str, drawn: List[str], num_images: int = 16, seed: int = 0) -> str:
    """A COCO-format val file of COCO's 80 categories, objects of the ``drawn`` classes."""
    rng = np.random.RandomState(seed)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        images.append(dict(id=image_id, file_name=f'{image_id:06d}.jpg', width=VOC_SIZE,
                           height=VOC_SIZE))
        for _ in range(rng.randint(1, 5)):
            w, h = (int(v) for v in rng.randint(12, 90, size=2))
            x, y = int(rng.randint(0, VOC_SIZE - w)), int(rng.randint(0, VOC_SIZE - h))
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id, iscrowd=0,
                                    category_id=COCO_CLASSES.index(drawn[rng.randint(
                                        len(drawn))]) + 1, bbox=[x, y, w, h], area=w * h))
    categories = [dict(id=k + 1, name=name) for k, name in enumerate(COCO_CLASSES)]
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return path


@pytest.mark.parametrize('name', [
    FAST, pytest.param('few_shot/faster-rcnn_r101-frozen_fpn_30shot-fine-tuning_coco.py',
                       marks=pytest.mark.configs)])
def test_k_shot_evaluator_gives_the_protocols_scores(name, tmp_path):
    """The config's own test evaluator, on a test set of novel and base objects: VOC's nAP50 and
    bAP50, COCO's nAP, nAP50, nAP75 and bAP under the documented keys (docs/few_shot.md), each
    pycocotools' value on the group's classes alone."""
    split = split_of(name)
    if split.name == 'coco':
        drawn = ['person', 'dog', 'bus', 'tv', 'zebra', 'pizza', 'laptop', 'clock']
        gt_path = _coco_val(str(tmp_path / 'val.json'), drawn)
        reference_gt = gt_path
        keys = dict(novel=('AP', 'AP50', 'AP75'), base=('AP', ))
    else:
        drawn = ['bird', 'bus', 'cow', 'sofa', 'person', 'car', 'dog', 'train']
        gt_path = convert_voc(write_voc_devkit(str(tmp_path / 'VOCdevkit'), drawn, num_trainval=0),
                              str(tmp_path / 'ann'), splits=('test', ))['test']
        # the converter numbers annotations from 0: pycocotools scores the renumbered copy, as
        # the metric does (docs/evaluation.md)
        reference_gt = write_renumbered(gt_path, str(tmp_path / 'renumbered.json'))
        keys = dict(novel=('AP50', ), base=('AP50', ))
    cfg = _resolved(name)
    metric = METRICS.build(dict(cfg.test_evaluator, ann_file=gt_path,
                                out_dir=str(tmp_path / 'report')))
    metric.dataset_meta = dict(classes=tuple(cfg.test_dataloader.dataset.metainfo.classes))
    with open(gt_path) as f:
        preds = voc_detections(json.load(f), list(split.classes))
    batch = _samples(preds)
    metric.process({}, batch)
    results = metric.evaluate(len(batch))
    with open(tmp_path / 'report' / 'summary.json') as f:
        summary = json.load(f)['bbox']['class_groups']
    detections = reference_json(preds, gt_path, 'bbox')
    for group, names in (('novel', split.novel), ('base', split.base)):
        stats = _pycocotools_restricted(reference_gt, detections, names)
        for key in keys[group]:
            value = results[f'coco/bbox_{key}_{group}']
            assert value == pytest.approx(stats[('AP', 'AP50', 'AP75').index(key)], abs=1e-12)
            assert summary[group][key] == pytest.approx(value, abs=1e-12)
            assert value > 0.2, f'{group} {key}: the detections find objects'


def _detector(name: str) -> Dict[str, Any]:
    cfg = _resolved(name).to_dict()
    return {key: cfg.get(key) for key in DETECTOR_FIELDS}


@pytest.mark.configs
def test_every_config_builds_one_of_the_trained_detectors():
    trained = {name: _detector(name) for name in TRAINED}
    assert len(set(map(repr, trained.values()))) == len(TRAINED)  # all distinct
    for name in CONFIGS:
        same = [t for t, fields in trained.items() if fields == _detector(name)]
        assert len(same) == 1 and config_arm(same[0]) == config_arm(name), name


def _trainable_and_in_train_mode(model: torch.nn.Module):
    model.train()
    return ({n for n, p in model.named_parameters() if p.requires_grad},
            {n for n, m in model.named_modules() if m.training})


@pytest.mark.configs
@pytest.mark.parametrize('name', [n for n in TRAINED if config_arm(n) == FINETUNE])
def test_finetune_arm_trains_what_mmdetections_r101_config_trains(name):
    """The same parameters train, and the same modules are in train mode after ``train()``, as
    in MMDetection's own Faster R-CNN R101-FPN (stem and first stage frozen, BN in eval)."""
    init_default_scope('mmdet')
    ours = _without_pretrained(copy.deepcopy(_resolved(name).model))
    reference = _without_pretrained(Config.fromfile(MMDET_R101).model)
    reference.roi_head.bbox_head.num_classes = ours.roi_head.bbox_head.num_classes
    assert _trainable_and_in_train_mode(MODELS.build(ours)) == _trainable_and_in_train_mode(
        MODELS.build(reference))


def _build_paths(cfg: Config, tmp_path) -> Dict[str, torch.nn.Module]:
    """The model as each build path makes it."""
    init_default_scope('mmdet')
    cfg = copy.deepcopy(cfg)
    cfg.model = _without_pretrained(cfg.model)
    # fewer proposals and sampled RoIs: the same layers train, in a fraction of the time
    cfg.model.train_cfg.rpn_proposal.max_per_img = 200
    cfg.model.train_cfg.rcnn.sampler.num = 64
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    out = {'MODELS.build': model}
    for path, build in (('Runner.from_cfg', Runner.from_cfg), ('RUNNERS.build', RUNNERS.build)):
        runner_cfg = copy.deepcopy(cfg)
        runner_cfg.work_dir = str(tmp_path / path)
        runner_cfg.launcher = 'none'
        runner = build(runner_cfg)
        if path == 'RUNNERS.build':
            assert isinstance(runner, FrozenBackboneRunner) == ('runner_type' in cfg)
        out[path] = runner.model
    return out


def _changed_by_one_step(model: torch.nn.Module, cfg: Config, num_classes: int) -> List[str]:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 128, 128)] * 2, num_items=[3, 2],
                          num_classes=num_classes)
    model.train()
    losses = model.train_step(data, build_optim_wrapper(model, cfg.optim_wrapper))
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
    return [k for k, v in model.state_dict().items() if not torch.equal(before[k], v)]


@pytest.mark.configs
@pytest.mark.parametrize('name', TRAINED)
def test_each_detector_trains_one_step_under_every_build_path(name, tmp_path):
    cfg = _resolved(name)
    head = cfg.model.roi_head.bbox_head
    num_classes = head.get('module', head).num_classes
    arm = config_arm(name)
    for path, model in _build_paths(cfg, tmp_path).items():
        changed = _changed_by_one_step(model, cfg, num_classes)
        backbone = {k.split('.')[1] for k in changed if k.startswith('backbone.')}
        others = [k for k in changed if not k.startswith('backbone.')]
        if arm == LAST_LAYERS:
            assert changed and {k.split('.')[-2] for k in changed} == set(LAST_LAYER_NAMES), path
        elif arm == FROZEN:
            assert backbone == set() and others, path
            assert any(k.startswith('neck.') for k in others), path
        else:
            assert backbone == {'layer2', 'layer3', 'layer4'} and others, path


# ------------------------------------------------------------------------------------------
# the protocol through the tools, on a tiny Pascal VOC: sample, base training, surgery, K-shot
# ------------------------------------------------------------------------------------------
#: Options that shrink a few-shot config to a ResNet-18 (the seeded stand-in for a classifier), a
#: narrower box head sampling fewer RoIs and 160x160 images, as ``--cfg-options``; the data, the
#: schedule's epochs, the evaluation, the checkpoints and the starting point (load_from) are the
#: config's own.
SHRINK = {'model.backbone.depth': 18, 'model.neck.in_channels': [64, 128, 256, 512],
          'model.roi_head.bbox_head.fc_out_channels': 128, 'model.train_cfg.rcnn.sampler.num': 64,
          'val_dataloader.dataset.pipeline.1.scale': (VOC_SIZE, VOC_SIZE),
          'test_dataloader.dataset.pipeline.1.scale': (VOC_SIZE, VOC_SIZE),
          'randomness.seed': 0, 'default_hooks.logger.interval': 1}


@pytest.fixture(scope='module')
def voc_world(tmp_path_factory) -> Dict[str, str]:
    """A working folder laid out as docs/few_shot.md says (``data/VOCdevkit/`` with images and
    the converter's files), the 1-shot groups of seed 0 drawn by the sampler tool, and a seeded
    ResNet-18 checkpoint."""
    import cv2
    root = tmp_path_factory.mktemp('few_shot_world')
    devkit = write_voc_devkit(str(root / 'data' / 'VOCdevkit'),
                              few_shot_split('voc-split1').classes, num_trainval=80, num_test=12)
    files = convert_voc(devkit, osp.join(devkit, 'annotations'))
    os.replace(files['trainval'], osp.join(devkit, 'annotations', 'voc0712_trainval.json'))
    rng = np.random.RandomState(0)
    with open(files['test']) as f:
        names = [image['file_name'] for image in json.load(f)['images']]
    with open(osp.join(devkit, 'annotations', 'voc0712_trainval.json')) as f:
        names += [image['file_name'] for image in json.load(f)['images']]
    for name in names:
        cv2.imwrite(osp.join(devkit, name),
                    rng.randint(0, 256, size=(VOC_SIZE, VOC_SIZE, 3), dtype=np.uint8))
    run_python([osp.join(REPO, 'tools', 'misc', 'few_shot_sample.py'),
                'data/VOCdevkit/annotations/voc0712_trainval.json', '--shots', '1'],
               cwd=str(root), env=tool_env(REPO))
    from mmdet.models.backbones import ResNet
    torch.manual_seed(1234)
    resnet = ResNet(depth=18)
    with torch.no_grad():  # a trained classifier's BN statistics and affine parameters
        for module in resnet.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    classifier = str(root / 'classifier_r18.pth')
    torch.save(dict(state_dict=resnet.state_dict()), classifier)
    return dict(root=str(root), classifier=classifier)


def _train(root: str, name: str, options: Dict[str, Any]) -> str:
    """``tools/train.py configs/<name>`` run in ``root`` with ``options``; its work dir
    (tools/train.py's default, ``work_dirs/<config name>``)."""
    run_python([osp.join(REPO, 'tools', 'train.py'), config_path(name), '--cfg-options',
                *[f'{key}={value}'.replace(' ', '') for key, value in options.items()]],
               cwd=root, env=tool_env(REPO))
    return osp.join(root, 'work_dirs', osp.splitext(osp.basename(name))[0])


def _logged(work_dir: str) -> Dict[str, Any]:
    """The last values the run logged of each key (``vis_data/scalars.json``)."""
    logged: Dict[str, Any] = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                logged.update(json.loads(line))
    return logged


@pytest.mark.runs
@pytest.mark.parametrize('arm', [FROZEN, LAST_LAYERS])
def test_the_protocol_runs_through_the_tools(arm, voc_world):
    """As docs/few_shot.md runs it, each config shrunk through --cfg-options only: the base
    training of the arm's base (``frozen``, or ``finetune`` for ``lastlayers``), the surgery
    tool on its last checkpoint, the K-shot config at its default ``load_from``, scored."""
    root, split = voc_world['root'], few_shot_split('voc-split1')
    base_arm = FROZEN if arm == FROZEN else FINETUNE
    base_name = f'few_shot/faster-rcnn_r101-{base_arm}_fpn_base-training_voc0712-split1.py'
    base_dir = _train(root, base_name, {
        **SHRINK, 'model.backbone.init_cfg.checkpoint': voc_world['classifier'],
        'train_dataloader.dataset.pipeline.2.scales': [(VOC_SIZE, VOC_SIZE)],
        'train_dataloader.dataset.indices': 2, 'val_dataloader.dataset.indices': 4,
        'train_cfg.val_interval': _resolved(base_name).train_cfg.max_epochs})
    base_checkpoint = osp.join(base_dir, f'epoch_{_resolved(base_name).train_cfg.max_epochs}.pth')
    run_python([osp.join(REPO, 'tools', 'misc', 'few_shot_surgery.py'),
                osp.relpath(base_checkpoint, root), '--split', split.name],
               cwd=root, env=tool_env(REPO))
    name = f'few_shot/faster-rcnn_r101-{arm}_fpn_1shot-fine-tuning_voc0712-split1.py'
    start = state_dict(osp.join(root, _resolved(name).load_from))
    work_dir = _train(root, name, {
        **SHRINK, 'train_dataloader.dataset.times': 1, 'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 1,
        'train_dataloader.dataset.dataset.pipeline.2.scales': [(VOC_SIZE, VOC_SIZE)]})
    trained = state_dict(osp.join(work_dir, 'epoch_1.pth'))
    changed = differing_tensors(start, trained)
    if arm == FROZEN:  # the classifier's backbone through both stages, bit for bit
        classifier = state_dict(voc_world['classifier'])
        assert all(torch.equal(trained[f'backbone.{k}'], v) for k, v in classifier.items())
        assert changed and not any(k.startswith('backbone.') for k in changed)
    else:
        assert {k.split('.')[-2] for k in changed} == set(LAST_LAYER_NAMES)
    with open(osp.join(work_dir, 'stratified_eval', 'summary.json')) as f:
        groups = json.load(f)['bbox']['class_groups']
    logged = _logged(work_dir)
    for group in ('novel', 'base'):
        assert groups[group]['num_classes'] == len(getattr(split, group))
        logged_ap50 = logged[f'coco/bbox_AP50_{group}']
        assert logged_ap50 == pytest.approx(groups[group]['AP50'], abs=5e-4)
