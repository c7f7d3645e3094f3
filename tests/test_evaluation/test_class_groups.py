"""Novel / base AP (``class_groups``) of the stratified metrics equals MMDetection's evaluation
restricted to those classes.

Restricted means what a user of MMDetection alone would run: ``CocoMetric`` on a data set whose
classes are the group's (so ``params.catIds`` is theirs), fed the detections of those classes;
and the references themselves, pycocotools / lvis-api with ``catIds`` / ``cat_ids`` the group's.
On COCO-format files (the hand-made ones of the other metric tests), on LVIS, and on Pascal VOC
through MMDetection's own converter with VOC split 1's names, whose annotation ids start at 0:
there the parent is run on the renumbered copy, as ours evaluates it (docs/evaluation.md).
"""
import contextlib
import copy
import io
import json
import os.path as osp

import numpy as np
import pytest
import torch
from lvis import LVISEval
from mmdet.registry import METRICS
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import mmfrozen  # noqa: F401  registers the metrics
from mmfrozen.datasets.few_shot_splits import few_shot_split
from mmfrozen.testing.few_shot import VOC_SIZE, convert_voc, voc_detections, write_voc_devkit
from mmfrozen.testing.stratified import (make_categories, make_predictions, make_train,
                                         make_val, reference_json, run_metric, to_coco,
                                         write_renumbered)

NOVEL = ['class_11', 'class_25', 'class_31']  # rare, common and no training data
BASE = ['class_3', 'class_20', 'class_7']
GROUPS = dict(novel=NOVEL, base=BASE)


@pytest.fixture(scope='module')
def coco_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('groups')
    val = to_coco(make_val(str(root / 'val_lvis.json')), str(root / 'val.json'))
    train = to_coco(make_train(str(root / 'train_lvis.json')), str(root / 'train.json'))
    return val, train, str(root / 'val_lvis.json'), str(root / 'train_lvis.json')


def samples(preds: dict, shape=(128, 128)) -> list:
    """What a detector's test step hands a metric (boxes, scores, labels; no masks)."""
    return [dict(img_id=img_id, ori_shape=shape,
                 pred_instances=dict(bboxes=torch.from_numpy(p['bboxes']),
                                     scores=torch.tensor(p['scores'], dtype=torch.float32),
                                     labels=torch.from_numpy(p['labels'])))
            for img_id, p in preds.items()]


def coco_restricted(gt_path: str, preds_list: list, names: list) -> COCOeval:
    """pycocotools on the group's categories only (all images, default parameters)."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        coco_eval = COCOeval(gt, gt.loadRes(copy.deepcopy(preds_list)), 'bbox')
        coco_eval.params.catIds = gt.getCatIds(catNms=names)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def mmdet_restricted(gt_path: str, preds: dict, classes: list, names: list, shape) -> dict:
    """MMDetection's CocoMetric on a data set of the group's classes: its class list (in the
    file's category order, as CocoDataset numbers them) and its detections only."""
    with open(gt_path) as f:
        in_file_order = [c['name'] for c in json.load(f)['categories'] if c['name'] in names]
    kept = {}
    for img_id, p in preds.items():
        keep = np.array([classes[label] in names for label in p['labels']], dtype=bool)
        kept[img_id] = dict(bboxes=p['bboxes'][keep], scores=np.asarray(p['scores'])[keep],
                            labels=np.array([in_file_order.index(classes[label])
                                             for label in p['labels'][keep]], dtype=np.int64))
    metric = METRICS.build(dict(type='CocoMetric', ann_file=gt_path, metric='bbox'))
    metric.dataset_meta = dict(classes=in_file_order)
    batch = samples(kept, shape)
    metric.process({}, batch)
    return metric.evaluate(len(batch))


def test_coco_novel_and_base_ap_equal_mmdetection_restricted_to_them(coco_files, tmp_path):
    val, train = coco_files[:2]
    preds = make_predictions(val)
    results, summary = run_metric(val, train, preds, str(tmp_path / 'ours'), metric=['bbox'],
                                  metric_type='CocoStratifiedMetric', class_groups=GROUPS)
    plain, _ = run_metric(val, train, preds, str(tmp_path / 'plain'), metric=['bbox'],
                          metric_type='CocoStratifiedMetric')
    assert {k: results[k] for k in plain} == plain  # every other key as without groups
    classes = [c['name'] for c in make_categories()]
    preds_list = reference_json(preds, val, 'bbox')
    for group, names in GROUPS.items():
        ref = coco_restricted(val, preds_list, names)
        for k, key in enumerate(('AP', 'AP50', 'AP75')):
            assert results[f'coco/bbox_{key}_{group}'] == pytest.approx(ref.stats[k], abs=1e-12)
            assert summary['bbox']['class_groups'][group][key] == pytest.approx(ref.stats[k],
                                                                                abs=1e-12)
        parent = mmdet_restricted(val, preds, classes, names, (128, 128))
        assert parent['coco/bbox_mAP'] == round(results[f'coco/bbox_AP_{group}'], 3)
        assert parent['coco/bbox_mAP_50'] == round(results[f'coco/bbox_AP50_{group}'], 3)
        assert parent['coco/bbox_mAP_75'] == round(results[f'coco/bbox_AP75_{group}'], 3)
        assert summary['bbox']['class_groups'][group]['num_classes'] == 3
    with open(tmp_path / 'ours' / 'bbox_per_class.json') as f:
        rows = {row['name']: row['class_groups'] for row in json.load(f)}
    assert rows == {**{n: 'novel' for n in NOVEL}, **{n: 'base' for n in BASE}}
    with open(tmp_path / 'ours' / 'bbox_per_class.csv') as f:
        assert f.readline().strip().endswith(',AP,AP50,class_groups')


def test_lvis_group_ap_equals_lvis_api_on_those_categories(coco_files, tmp_path):
    val, train = coco_files[2:]
    preds = make_predictions(val)
    results, _ = run_metric(val, train, preds, str(tmp_path), metric=['bbox'],
                            class_groups=dict(novel=NOVEL))
    lvis_eval = LVISEval(val, reference_json(preds, val, 'bbox'), 'bbox')
    name_to_id = {c['name']: c['id'] for c in make_categories()}
    lvis_eval.params.cat_ids = sorted(name_to_id[n] for n in NOVEL)
    with contextlib.redirect_stdout(io.StringIO()):
        lvis_eval.run()
    for key in ('AP', 'AP50', 'AP75'):
        assert results[f'lvis/bbox_{key}_novel'] == pytest.approx(lvis_eval.results[key],
                                                                  abs=1e-12)


def test_voc_split1_through_mmdetections_converter(tmp_path):
    split = few_shot_split('voc-split1')
    drawn = ['bird', 'bus', 'cow', 'person', 'car', 'dog', 'sofa']  # novel and base classes
    files = convert_voc(write_voc_devkit(str(tmp_path / 'VOCdevkit'), drawn),
                        str(tmp_path / 'annotations'))
    with open(files['test']) as f:
        gt = json.load(f)
    assert min(a['id'] for a in gt['annotations']) == 0  # the converter's ids
    assert any(a['iscrowd'] for a in gt['annotations'])  # difficult boxes
    preds = voc_detections(gt, list(split.classes))
    metric = METRICS.build(dict(type='CocoStratifiedMetric', ann_file=files['test'],
                                train_ann_file=files['trainval'], metric='bbox',
                                class_groups=split.groups(), out_dir=str(tmp_path / 'ours')))
    metric.dataset_meta = dict(classes=split.classes)
    batch = samples(preds, (VOC_SIZE, VOC_SIZE))
    metric.process({}, batch)
    results = metric.evaluate(len(batch))
    renumbered = write_renumbered(files['test'], str(tmp_path / 'renumbered.json'))
    for group, names in split.groups().items():
        assert results[f'coco/bbox_AP50_{group}'] > 0.3  # the detections find things
        ref = coco_restricted(renumbered, reference_json(preds, files['test'], 'bbox'),
                              list(names))
        assert results[f'coco/bbox_AP50_{group}'] == pytest.approx(ref.stats[1], abs=1e-12)
        assert results[f'coco/bbox_AP_{group}'] == pytest.approx(ref.stats[0], abs=1e-12)
        parent = mmdet_restricted(renumbered, preds, list(split.classes), list(names),
                                  (VOC_SIZE, VOC_SIZE))
        assert parent['coco/bbox_mAP_50'] == round(results[f'coco/bbox_AP50_{group}'], 3)
    summary = json.load(open(osp.join(tmp_path, 'ours', 'summary.json')))
    novel = summary['bbox']['class_groups']['novel']
    assert (novel['num_classes'], novel['num_classes_evaluated']) == (5, 4)  # no motorbike


@pytest.mark.parametrize('groups, message', [
    (dict(novel=['class_11', 'nope']), r"group 'novel' names \['nope'\], which are not among"),
    (dict(novel='class_11'), r"group 'novel' must list class names"),
    (dict(bin_x=['class_11']), r"group name 'bin_x' must be"),
    ([], r'must map group names'),
])
def test_bad_class_groups_name_the_field(coco_files, tmp_path, groups, message):
    val, train = coco_files[:2]
    with pytest.raises(ValueError, match=r'CocoStratifiedMetric: field "class_groups"[: ].*'
                       + message):
        run_metric(val, train, make_predictions(val), str(tmp_path), metric=['bbox'],
                   metric_type='CocoStratifiedMetric', class_groups=groups)
