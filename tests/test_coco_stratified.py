"""CocoStratifiedMetric against pycocotools' COCOeval on hand-made ground truth and predictions."""
import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import mmfrozen  # noqa: F401  registers the metric
from mmdet.registry import METRICS
import test_lvis_stratified as lvis_tests
from test_lvis_stratified import (EXPECTED_BIN, TRAIN_COUNTS, make_predictions, make_train,
                                  make_val, reference_json)

KEYS = dict(AP='mAP', AP50='mAP_50', AP75='mAP_75', APs='mAP_s', APm='mAP_m', APl='mAP_l')


def to_coco(lvis_path: str, coco_path: str) -> str:
    """The LVIS file as plain COCO: iscrowd (one crowd box), no federated fields."""
    with open(lvis_path) as f:
        data = json.load(f)
    for img in data['images']:
        img.pop('neg_category_ids', None)
        img.pop('not_exhaustive_category_ids', None)
        img['file_name'] = f'{img["id"]:06d}.jpg'
    for i, ann in enumerate(data['annotations']):
        ann['iscrowd'] = int(i == 3)
    for cat in data['categories']:
        for key in ('frequency', 'image_count', 'instance_count', 'synset'):
            cat.pop(key, None)
    with open(coco_path, 'w') as f:
        json.dump(data, f)
    return coco_path


def reference(val_path: str, preds_list, iou_type: str, img_ids=None) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(val_path)
        preds = copy.deepcopy(preds_list)
        if iou_type == 'segm':
            for p in preds:
                p.pop('bbox', None)
        coco_eval = COCOeval(gt, gt.loadRes(preds), iou_type)
        if img_ids is not None:
            coco_eval.params.imgIds = sorted(img_ids)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def run_metric(*args, **kwargs):
    return lvis_tests.run_metric(*args, metric_type='CocoStratifiedMetric', **kwargs)


@pytest.fixture(scope='module')
def coco_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco_handmade')
    lvis_val = make_val(str(root / 'lvis_val.json'))
    return (to_coco(lvis_val, str(root / 'val.json')),
            to_coco(make_train(str(root / 'lvis_train.json')), str(root / 'train.json')))


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_headline_and_bins_equal_pycocotools(coco_files, tmp_path, iou_type):
    val_path, train_path = coco_files
    preds = make_predictions(val_path)
    results, summary = run_metric(val_path, train_path, preds, str(tmp_path))
    ref = reference(val_path, reference_json(preds, val_path, iou_type), iou_type)
    for k, (key, mmdet_key) in enumerate(KEYS.items()):
        if ref.stats[k] == -1:
            assert summary[iou_type][key] is None
            assert f'coco/{iou_type}_{mmdet_key}' not in results
        else:
            assert abs(summary[iou_type][key] - ref.stats[k]) <= 1e-9, key
            assert abs(results[f'coco/{iou_type}_{mmdet_key}'] - ref.stats[k]) <= 1e-9, key
    assert 0 < ref.stats[0] < 1

    precision = ref.eval['precision'][:, :, :, 0, -1]  # all areas, 100 detections
    per_class = {}
    for k, cat_id in enumerate(ref.params.catIds):
        p = precision[:, :, k]
        per_class[cat_id] = float(p[p > -1].mean()) if (p > -1).any() else float('nan')
    for label in ('1-10', '11-100', '101-1000', '>1000', '0'):
        members = [c for c, b in EXPECTED_BIN.items() if b == label]
        expected = np.nanmean([per_class[c] for c in members])
        assert summary[iou_type]['bins'][label]['num_classes'] == len(members)
        assert abs(summary[iou_type]['bins'][label]['AP'] - expected) <= 1e-9, label
        assert abs(results[f'coco/{iou_type}_AP_bin_{label}'] - expected) <= 1e-9
    with open(tmp_path / f'{iou_type}_per_class.json') as f:
        rows = {r['category_id']: r for r in json.load(f)}
    for cat_id, (images, instances) in TRAIN_COUNTS.items():
        assert (rows[cat_id]['train_images'], rows[cat_id]['train_instances']) == (
            images, instances)
        assert abs(rows[cat_id]['AP'] - per_class[cat_id]) <= 1e-9
    assert summary['dataset'] == 'coco'


def test_subset_counts_only_the_evaluated_images(coco_files, tmp_path):
    val_path, train_path = coco_files
    subset = {2, 4, 6, 8, 10}
    preds = make_predictions(val_path, img_ids=subset)
    results, summary = run_metric(val_path, train_path, preds, str(tmp_path),
                                  metric=('bbox',))
    preds_list = reference_json(preds, val_path, 'bbox')
    ref_subset = reference(val_path, preds_list, 'bbox', img_ids=subset)
    ref_all = reference(val_path, preds_list, 'bbox')
    assert abs(results['coco/bbox_mAP'] - ref_subset.stats[0]) <= 1e-9
    assert ref_all.stats[0] < ref_subset.stats[0] - 0.01
    assert summary['num_images'] == len(subset)


def test_category_and_image_errors_name_file_and_field(coco_files):
    from mmfrozen.evaluation.reference_eval import run_coco_eval
    val_path, _ = coco_files
    preds = reference_json(make_predictions(val_path), val_path, 'bbox')
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(val_path)
    bad_cat = copy.deepcopy(preds)
    bad_cat[0]['category_id'] = 999
    with pytest.raises(ValueError, match=r'"category_id".*999.*val\.json'):
        run_coco_eval(gt, bad_cat, 'bbox', gt.getImgIds(), gt_source=val_path)
    bad_img = copy.deepcopy(preds)
    bad_img[0]['image_id'] = 777
    with pytest.raises(ValueError, match=r'"image_id".*777.*val\.json'):
        run_coco_eval(gt, bad_img, 'bbox', gt.getImgIds(), gt_source=val_path)


def test_bad_bins_are_refused(coco_files):
    val_path, train_path = coco_files
    with pytest.raises(ValueError, match='overlap'):
        METRICS.build(dict(type='CocoStratifiedMetric', ann_file=val_path,
                           train_ann_file=train_path, bins=[(1, 10), (5, 20)]))


def test_custom_bins(coco_files, tmp_path):
    val_path, train_path = coco_files
    preds = make_predictions(val_path)
    results, summary = run_metric(val_path, train_path, preds, str(tmp_path),
                                  metric=('bbox',), bins=[(1, 50), (51, None)])
    ref = reference(val_path, reference_json(preds, val_path, 'bbox'), 'bbox')
    precision = ref.eval['precision'][:, :, :, 0, -1]
    per_class = {c: float(precision[:, :, k][precision[:, :, k] > -1].mean())
                 for k, c in enumerate(ref.params.catIds)}
    members = {'1-50': [11, 3], '>50': [20, 7, 25], '0': [31]}
    assert list(summary['bbox']['bins']) == ['1-50', '>50', '0']
    for label, cats in members.items():
        expected = float(np.mean([per_class[c] for c in cats]))
        assert abs(summary['bbox']['bins'][label]['AP'] - expected) <= 1e-9
        assert abs(results[f'coco/bbox_AP_bin_{label}'] - expected) <= 1e-9
