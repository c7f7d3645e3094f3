"""The paper's class-balanced stage-2 loss: the weights follow the effective-number formula, the
hook puts them into mmdet's CrossEntropyLoss when a real run starts, and the configs use it."""
import json
import os.path as osp

import pytest
import torch
from mmfrozen.testing import TINY_FASTER_RCNN
from mmfrozen.shipped_configs import config_path
import mmfrozen  # noqa: F401,I100  first: registers the hook, applies the stack fixes
from mmdet.models.losses import CrossEntropyLoss
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmfrozen.engine.hooks.class_balanced_loss_hook import _resolve
from mmfrozen.models.class_balanced_weights import class_balanced_weights

CB_CONFIGS = [
    'mask-rcnn_r50_fpn_stage2-cls-cbloss_6e_lvis-v1.py',
    'cascade-rcnn_r50_nasfpn_stage2-cls-cbloss_6e_lvis-v1.py'
]


def formula(counts, beta):
    """(1 - beta) / (1 - beta ** n), scaled to mean 1: written out, not taken from the code."""
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    return [w * len(raw) / sum(raw) for w in raw]


def write_train(path, with_counts: bool) -> str:
    """Three categories with 1, 10 and 1000 training instances (ids out of order)."""
    counts = {9: 1000, 5: 1, 2: 10}
    anns = []
    for cat_id, n in counts.items():
        anns += [
            dict(
                id=len(anns) + k + 1,
                image_id=1 + k % 7,
                category_id=cat_id,
                bbox=[0, 0, 4, 4],
                area=16) for k in range(n)
        ]
    cats = [
        dict(
            id=c,
            name=f'c{c}',
            **(dict(instance_count=n, image_count=min(n, 7)) if with_counts else {}))
        for c, n in counts.items()
    ]
    with open(path, 'w') as f:
        json.dump(
            dict(
                images=[dict(id=i, width=8, height=8) for i in range(1, 8)],
                annotations=anns,
                categories=cats), f)
    return str(path)


@pytest.mark.parametrize('with_counts', [True, False])
@pytest.mark.parametrize('beta', [0.999, 0.9])
def test_weights_follow_the_effective_number_formula(tmp_path, with_counts, beta):
    """From the categories' instance_count (LVIS), else counted from the annotations."""
    path = write_train(tmp_path / 'train.json', with_counts)
    weights = class_balanced_weights(path, [5, 2, 9], beta)
    assert weights == pytest.approx(formula([1, 10, 1000], beta), rel=1e-12)
    assert weights[0] > weights[1] > weights[2]  # the rarest class weighs most
    by_images = class_balanced_weights(path, [5, 2, 9], beta, count='image_count')
    assert by_images == pytest.approx(formula([1, 7, 7], beta), rel=1e-12)
    assert class_balanced_weights(path, [5, 2, 9], 0.0) == pytest.approx([1, 1, 1])


def test_hook_sets_class_weight_when_a_real_run_starts(tiny_coco, tiny_coco_cfg, tmp_path):
    cfg = Config.fromfile(TINY_FASTER_RCNN)
    cfg.merge_from_dict(tiny_coco_cfg)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=1, val_interval=10)
    cfg.train_dataloader.dataset.indices = 4  # one iteration: the hook acts before it
    cfg.custom_hooks = [
        dict(type='ClassBalancedLossHook', losses=['roi_head.bbox_head.loss_cls'], beta=0.99)
    ]
    runner = Runner.from_cfg(cfg)
    loss = runner.model.roi_head.bbox_head.loss_cls
    assert loss.class_weight is None  # built without reading the file
    runner.train()
    train_ann = osp.join(tiny_coco, 'annotations', 'instances_train2017.json')
    with open(train_ann) as f:
        data = json.load(f)
    cat_ids = runner.train_dataloader.dataset.cat_ids
    counts = [sum(a['category_id'] == c for a in data['annotations']) for c in cat_ids]
    assert len(cat_ids) == 3 and min(counts) > 0 and len(set(counts)) > 1
    assert loss.class_weight == pytest.approx(formula(counts, 0.99) + [1.0], rel=1e-12)


@pytest.mark.parametrize('name', CB_CONFIGS)
def test_class_balanced_configs(name):
    """Plain sampling, the hook with the config's beta on every stage's fc_cls loss, and the
    resampling variant otherwise."""
    cfg = Config.fromfile(config_path(f'lvis_stage2/{name}'))
    resampling = Config.fromfile(
        config_path(f'lvis_stage2/{name.replace("cbloss", "sample1e-2")}'))
    assert cfg.class_balanced_beta == 0.999
    [hook] = [h for h in cfg.custom_hooks if h.type == 'ClassBalancedLossHook']
    assert hook.type == 'ClassBalancedLossHook' and hook.beta == cfg.class_balanced_beta
    assert 'ClassBalancedDataset' not in json.dumps(cfg.train_dataloader.to_dict(), default=str)
    assert 'ClassBalancedDataset' in json.dumps(resampling.train_dataloader.to_dict(), default=str)
    assert cfg.model == resampling.model and cfg.frozen == resampling.frozen
    assert cfg.param_scheduler == resampling.param_scheduler
    init_default_scope('mmdet')
    with torch.no_grad():
        model = MODELS.build(cfg.model)
    assert len(hook.losses) == (3 if 'cascade' in name else 1)
    for path in hook.losses:
        loss = _resolve(model, path)
        assert isinstance(loss, CrossEntropyLoss) and not loss.use_sigmoid
        head = _resolve(model, path.rsplit('.', 1)[0])
        assert head.num_classes == 1203


def test_a_wrong_loss_path_names_the_field():
    init_default_scope('mmdet')
    model = MODELS.build(Config.fromfile(TINY_FASTER_RCNN).model)
    with pytest.raises(KeyError, match=r'"losses".*roi_head\.nope'):
        _resolve(model, 'roi_head.nope.loss_cls')
