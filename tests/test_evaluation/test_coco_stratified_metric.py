"""CocoStratifiedMetric, with both backends, against pycocotools' COCOeval on hand-made files
(with a crowd box): every metric, bin and class, boxes and masks, all images and a subset."""
import contextlib
import copy
import io

import numpy as np
import pytest
from mmfrozen.testing.stratified import run_stratified
from mmdet.registry import METRICS
from pycocotools.coco import COCO
from mmfrozen.testing.stratified import (EXPECTED_BIN, TRAIN_COUNTS, close, coco_per_class_ap,
                                         coco_reference, make_predictions, make_train, make_val,
                                         reference_json, run_metric, to_coco)

from mmfrozen.evaluation.detections import Detections
from mmfrozen.evaluation.fast_eval import coco_eval_fast

BACKENDS = ['faster-coco-eval', 'pycocotools']
KEYS = dict(AP='mAP', AP50='mAP_50', AP75='mAP_75', APs='mAP_s', APm='mAP_m', APl='mAP_l')


def run_coco_metric(*args, **kwargs):
    return run_metric(*args, metric_type='CocoStratifiedMetric', **kwargs)


@pytest.fixture(scope='module')
def coco_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco_handmade')
    lvis_val = make_val(str(root / 'lvis_val.json'))
    return (to_coco(lvis_val, str(root / 'val.json')),
            to_coco(make_train(str(root / 'lvis_train.json')), str(root / 'train.json')))


def assert_equal_to_reference(results, summary, rows, ref, iou_type):
    for k, (key, mmdet_key) in enumerate(KEYS.items()):
        if ref.stats[k] == -1:
            assert summary[iou_type][key] is None
            assert f'coco/{iou_type}_{mmdet_key}' not in results
        else:
            assert abs(summary[iou_type][key] - ref.stats[k]) <= 1e-9, key
            assert abs(results[f'coco/{iou_type}_{mmdet_key}'] - ref.stats[k]) <= 1e-9, key
    per_class = coco_per_class_ap(ref)
    for label in ('1-10', '11-100', '101-1000', '>1000', '0'):
        members = [c for c, b in EXPECTED_BIN.items() if b == label]
        values = [per_class[c] for c in members if not np.isnan(per_class[c])]
        assert summary[iou_type]['bins'][label]['num_classes'] == len(members)
        expected = float(np.mean(values)) if values else float('nan')
        assert close(summary[iou_type]['bins'][label]['AP'], expected), label
        if values:
            assert abs(results[f'coco/{iou_type}_AP_bin_{label}'] - expected) <= 1e-9
    rows = {r['category_id']: r for r in rows}
    for cat_id, (images, instances) in TRAIN_COUNTS.items():
        assert (rows[cat_id]['train_images'], rows[cat_id]['train_instances']) == (images,
                                                                                   instances)
        assert close(rows[cat_id]['AP'], per_class[cat_id])


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_every_number_equals_pycocotools(coco_files, tmp_path, iou_type, backend):
    run = run_stratified('CocoStratifiedMetric', coco_reference, coco_files, tmp_path, iou_type,
                         backend)
    assert 0 < run.reference.stats[0] < 1
    assert_equal_to_reference(run.results, run.summary, run.rows, run.reference, iou_type)
    assert run.summary['dataset'] == 'coco'


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_subset_counts_only_the_evaluated_images(coco_files, tmp_path, iou_type, backend):
    subset = {2, 4, 6, 8, 10}
    run = run_stratified('CocoStratifiedMetric', coco_reference, coco_files, tmp_path, iou_type,
                         backend, img_ids=subset, metric=(iou_type, ))
    assert_equal_to_reference(run.results, run.summary, run.rows, run.reference, iou_type)
    every_image = coco_reference(coco_files[0], run.preds_list, iou_type)
    assert every_image.stats[0] < run.reference.stats[0] - 0.01
    assert run.summary['num_images'] == len(subset)


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_fast_backend_precision_equals_pycocotools(coco_files, iou_type):
    """The precision array at 100 detections, chunk per class, two worker processes, and
    more than 100 detections of one class in an image (pycocotools keeps 100)."""
    val_path, _ = coco_files
    preds = reference_json(make_predictions(val_path), val_path, iou_type)
    base = [p for p in preds if p['image_id'] == 1][0]
    preds += [dict(copy.deepcopy(base), score=(k % 7) / 8) for k in range(120)]
    ref = coco_reference(val_path, preds, iou_type)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(val_path)
    ours = coco_eval_fast(
        gt,
        Detections.from_results(preds, iou_type),
        iou_type,
        gt.getImgIds(),
        nproc=2,
        chunk_pairs=1)
    assert np.abs(ours.precision - ref.eval['precision'][..., -1]).max() <= 1e-12
    for k, key in enumerate(KEYS):
        assert close(ours.headline[key], ref.stats[k], 1e-12), key


def test_category_and_image_errors_name_file_and_field(coco_files):
    from mmfrozen.evaluation.reference_eval import run_coco_eval
    val_path, _ = coco_files
    preds = reference_json(make_predictions(val_path), val_path, 'bbox')
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(val_path)
    bad_cat = copy.deepcopy(preds)
    bad_cat[0]['category_id'] = 999
    bad_img = copy.deepcopy(preds)
    bad_img[0]['image_id'] = 777
    for run in (
            run_coco_eval,
            lambda gt, p, *a, **k: coco_eval_fast(gt, Detections.from_results(p, 'bbox'), *a, **k)):
        with pytest.raises(ValueError, match=r'"category_id".*999.*val\.json'):
            run(gt, bad_cat, 'bbox', gt.getImgIds(), gt_source=val_path)
        with pytest.raises(ValueError, match=r'"image_id".*777.*val\.json'):
            run(gt, bad_img, 'bbox', gt.getImgIds(), gt_source=val_path)


def test_train_ann_file_is_required(coco_files):
    val_path, _ = coco_files
    with pytest.raises(ValueError, match='train_ann_file'):
        METRICS.build(dict(type='CocoStratifiedMetric', ann_file=val_path))


def test_bad_bins_are_refused(coco_files):
    val_path, train_path = coco_files
    with pytest.raises(ValueError, match='overlap'):
        METRICS.build(
            dict(
                type='CocoStratifiedMetric',
                ann_file=val_path,
                train_ann_file=train_path,
                bins=[(1, 10), (5, 20)]))


def test_custom_bins(coco_files, tmp_path):
    val_path, train_path = coco_files
    preds = make_predictions(val_path)
    results, summary = run_coco_metric(
        val_path, train_path, preds, str(tmp_path), metric=('bbox', ), bins=[(1, 50), (51, None)])
    ref = coco_reference(val_path, reference_json(preds, val_path, 'bbox'), 'bbox')
    per_class = coco_per_class_ap(ref)
    members = {'1-50': [11, 3], '>50': [20, 7, 25], '0': [31]}
    assert list(summary['bbox']['bins']) == ['1-50', '>50', '0']
    for label, cats in members.items():
        expected = float(np.mean([per_class[c] for c in cats]))
        assert abs(summary['bbox']['bins'][label]['AP'] - expected) <= 1e-9
        assert abs(results[f'coco/bbox_AP_bin_{label}'] - expected) <= 1e-9
