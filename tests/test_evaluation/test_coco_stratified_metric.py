"""CocoStratifiedMetric, with both backends, against pycocotools' COCOeval on hand-made files
(with a crowd box): every metric, bin and class, boxes and masks, all images and a subset.
(That it keeps CocoMetric's keys and values: test_coco_metric_contract.py.)"""
import contextlib
import copy
import io
import json

import numpy as np
import pytest
from mmfrozen.testing.stratified import run_stratified
from mmdet.registry import METRICS
from mmengine.logging import MMLogger
from pycocotools.coco import COCO
from mmfrozen.testing.stratified import (EXPECTED_BIN, TRAIN_COUNTS, close, coco_per_class_ap,
                                         coco_reference, make_predictions, make_train, make_val,
                                         reference_json, run_metric, to_coco)

from mmfrozen.evaluation.detections import Detections
from mmfrozen.evaluation.fast_eval import coco_eval_fast

BACKENDS = ['faster-coco-eval', 'pycocotools']
KEYS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')


def run_coco_metric(*args, **kwargs):
    return run_metric(*args, metric_type='CocoStratifiedMetric', **kwargs)


@pytest.fixture(scope='module')
def coco_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco_handmade')
    lvis_val = make_val(str(root / 'lvis_val.json'))
    return (to_coco(lvis_val, str(root / 'val.json')),
            to_coco(make_train(str(root / 'lvis_train.json')), str(root / 'train.json')))


def assert_equal_to_reference(results, summary, rows, ref, iou_type):
    for k, key in enumerate(KEYS):
        if ref.stats[k] == -1:
            assert summary[iou_type][key] is None
            assert f'coco/{iou_type}_{key}_exact' not in results
        else:
            assert abs(summary[iou_type][key] - ref.stats[k]) <= 1e-9, key
            assert abs(results[f'coco/{iou_type}_{key}_exact'] - ref.stats[k]) <= 1e-9, key
    # AP is read at 100 detections in both settings: CocoMetric's rounded value of the same
    assert results[f'coco/{iou_type}_mAP'] == float(f'{round(ref.stats[0], 3)}')
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
    # frequency groups by training images (r: 1-10, c: 11-100, f: >100; none counts as r)
    for group, members in (('r', [11, 31, 7]), ('c', [3, 25]), ('f', [20])):
        values = [per_class[c] for c in members if not np.isnan(per_class[c])]
        assert abs(results[f'coco/{iou_type}_AP{group}'] - np.mean(values)) <= 1e-9, group


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


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_one_evaluation_gives_any_iou_thrs_and_max_dets(coco_files, iou_type):
    """Both backends evaluate pycocotools' defaults and mmdet's setting (its IoU thresholds,
    maxDets = proposal_nums) at once; each setting read off equals pycocotools run with it
    alone: the 12 stats and the whole precision array."""
    from mmfrozen.evaluation.coco_summary import summarize
    from mmfrozen.evaluation.reference_eval import run_coco_eval
    val_path, _ = coco_files
    preds = reference_json(make_predictions(val_path), val_path, iou_type)
    base = [p for p in preds if p['image_id'] == 1][0]
    preds += [dict(copy.deepcopy(base), score=(k % 7) / 8) for k in range(12)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(val_path)
    iou_thrs = np.array([0.3, 0.5, 0.55, 0.75, 0.9])
    max_dets = [3, 8, 100]
    ours = {
        'fast': coco_eval_fast(gt, Detections.from_results(preds, iou_type), iou_type,
                               gt.getImgIds(), iou_thrs=iou_thrs, max_dets=max_dets),
        'pycocotools': run_coco_eval(gt, preds, iou_type, gt.getImgIds(), iou_thrs=iou_thrs,
                                     max_dets=max_dets)
    }
    for setting_thrs, setting_dets in ((None, None), (iou_thrs, max_dets)):
        alone = coco_reference(val_path, preds, iou_type)
        if setting_thrs is not None:
            alone.params.iouThrs, alone.params.maxDets = setting_thrs, setting_dets
            with contextlib.redirect_stdout(io.StringIO()):
                alone.evaluate()
                alone.accumulate()
                alone.summarize()
        for backend, result in ours.items():
            stats, _, precision = summarize(result.arrays, iou_type, setting_thrs, setting_dets)
            assert np.abs(precision - alone.eval['precision']).max() <= 1e-12, backend
            assert np.abs(stats - alone.stats).max() <= 1e-12, backend
    assert ours['pycocotools'].arrays.max_dets == [1, 3, 8, 10, 100]


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


def test_without_train_ann_file_the_bins_are_left_out_with_one_log_line(coco_files, tmp_path):
    val_path, train_path = coco_files
    log_file = str(tmp_path / 'run.log')
    MMLogger.get_instance('coco-no-train-ann', log_file=log_file)
    preds = make_predictions(val_path)
    out = tmp_path / 'no_counts'
    results = {}
    for _ in range(2):  # two evaluations (epochs), one log line
        results, summary = run_coco_metric(val_path, None, preds, str(out), metric=('bbox', ))
    with_counts, _ = run_coco_metric(val_path, train_path, preds, str(tmp_path / 'counts'),
                                     metric=('bbox', ))
    ref = coco_reference(val_path, reference_json(preds, val_path, 'bbox'), 'bbox')
    assert abs(results['coco/bbox_AP_exact'] - ref.stats[0]) <= 1e-9
    assert {k: v for k, v in with_counts.items() if k in results} == results
    assert not [k for k in results if '_AP_bin_' in k or k.endswith(('_APr', '_APc', '_APf'))]
    assert summary['bbox']['bins'] == {} and summary['bbox']['AP'] == results[
        'coco/bbox_AP_exact']
    rows = json.loads((out / 'bbox_per_class.json').read_text())
    assert {r['name'] for r in rows} == {f'class_{c}' for c in TRAIN_COUNTS}
    assert all(r['train_instances'] is None for r in rows)
    assert not (out / 'bbox_per_class_ap.png').exists()
    with open(log_file) as f:
        assert f.read().count('the AP by bins of training annotations is left out') == 1


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
        assert abs(results[f'coco/bbox_AP_bin_{label}'] - expected) <= 1e-9, label
