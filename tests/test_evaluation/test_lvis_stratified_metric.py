"""LVISStratifiedMetric, with both backends, against lvis-api's LVISEval on hand-made files.

Every number (headline, bins, frequency groups, per-class AP and AP50, the precision array) is
compared with LVISEval run on the same files, for the full set and a subset of images, boxes
and masks. (That it keeps LVISMetric's keys and values: test_lvis_metric_contract.py.)
"""
import json

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from mmfrozen.testing.stratified import run_stratified
from lvis import LVIS, LVISEval
from mmdet.evaluation.metrics import LVISMetric
from mmdet.registry import METRICS
from mmengine.logging import MMLogger
from mmfrozen.testing.stratified import (EXPECTED_BIN, SIZE, TRAIN_COUNTS, close, data_samples,
                                         frequency_of, lvis_reference, make_categories,
                                         make_predictions, make_train, make_val, reference_json,
                                         reference_per_class_ap, run_metric)

from mmfrozen.evaluation.detections import Detections
from mmfrozen.evaluation.fast_eval import lvis_eval_fast

BACKENDS = ['faster-coco-eval', 'lvis-api']
HEADLINE = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')


@pytest.fixture(scope='module')
def lvis_files(tmp_path_factory):
    root = tmp_path_factory.mktemp('lvis_handmade')
    return make_val(str(root / 'val.json')), make_train(str(root / 'train.json'))


def assert_equal_to_reference(results, summary, rows, ref: LVISEval, iou_type: str):
    """Every metric, bin, group and class of ours equals lvis-api's within 1e-9."""
    for key in HEADLINE:
        assert close(summary[iou_type][key], ref.results[key]), key
        if ref.results[key] != -1:
            assert abs(results[f'lvis/{iou_type}_{key}_exact'] - ref.results[key]) <= 1e-9, key
        else:
            assert f'lvis/{iou_type}_{key}_exact' not in results
        # LVISMetric's key: lvis-api's value (-1 included) to 3 decimals, on these images
        assert results[f'lvis/{iou_type}_{key}'] == float(f'{ref.results[key]:.3f}'), key
    per_class = reference_per_class_ap(ref)
    for label in ('1-10', '11-100', '101-1000', '>1000', '0'):
        members = [c for c, b in EXPECTED_BIN.items() if b == label]
        values = [per_class[c] for c in members if not np.isnan(per_class[c])]
        got = summary[iou_type]['bins'][label]
        assert got['num_classes'] == len(members)
        assert close(got['AP'], float(np.mean(values)) if values else float('nan')), label
        if values:
            assert abs(results[f'lvis/{iou_type}_AP_bin_{label}'] - np.mean(values)) <= 1e-9
    for group, key in (('r', 'APr'), ('c', 'APc'), ('f', 'APf')):
        assert close(summary[iou_type]['frequency_groups'][group]['AP'], ref.results[key])
    assert [r['category_id'] for r in rows] == sorted(TRAIN_COUNTS)
    precision = ref.eval['precision']
    for k, row in enumerate(rows):
        assert (row['train_images'], row['train_instances']) == TRAIN_COUNTS[row['category_id']]
        assert row['frequency'] == frequency_of(row['train_images'])
        assert close(row['AP'], per_class[row['category_id']])
        p50 = precision[0, :, k, 0]
        assert close(row['AP50'], float(p50[p50 > -1].mean()) if (p50 > -1).any() else float('nan'))


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_every_number_equals_lvis_api(lvis_files, tmp_path, iou_type, backend):
    run = run_stratified('LVISStratifiedMetric', lvis_reference, lvis_files, tmp_path, iou_type,
                         backend)
    assert 0 < run.reference.results['AP'] < 1  # a real mix of hits and misses
    assert_equal_to_reference(run.results, run.summary, run.rows, run.reference, iou_type)
    assert run.summary['dataset'] == 'lvis' and run.summary['num_images'] == len(run.preds)
    assert (tmp_path / f'{iou_type}_per_class.csv').read_text().startswith(
        'category_id,name,frequency,train_images,train_instances,AP,AP50')
    assert (tmp_path / f'{iou_type}_per_class_ap.png').stat().st_size > 0


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_subset_counts_only_the_evaluated_images(lvis_files, tmp_path, iou_type, backend):
    subset = {1, 2, 3, 4, 5, 6}
    run = run_stratified('LVISStratifiedMetric', lvis_reference, lvis_files, tmp_path, iou_type,
                         backend, img_ids=subset, metric=(iou_type, ))
    assert_equal_to_reference(run.results, run.summary, run.rows, run.reference, iou_type)
    assert run.summary['num_images'] == len(subset)
    # The images left out hold ground truth that nobody predicted: scoring them lowers AP.
    ref_all = lvis_reference(lvis_files[0], run.preds_list, iou_type)
    assert ref_all.results['AP'] < run.reference.results['AP'] - 0.01


def test_stock_lvis_metric_scores_every_image(lvis_files):
    """Why the subset matters: mmdet's LVISMetric sets params.imgIds, which lvis-api ignores."""
    val_path, _ = lvis_files
    subset = {1, 2, 3, 4, 5, 6}
    preds = make_predictions(val_path, img_ids=subset)
    preds_list = reference_json(preds, val_path, 'bbox')
    stock = LVISMetric(ann_file=val_path, metric='bbox')
    stock.dataset_meta = dict(classes=[c['name'] for c in make_categories()])
    samples = data_samples(preds)
    stock.process({}, samples)
    stock_ap = stock.evaluate(len(samples))['lvis/bbox_AP']
    ref_all = lvis_reference(val_path, preds_list, 'bbox')
    ref_subset = lvis_reference(val_path, preds_list, 'bbox', img_ids=subset)
    assert stock_ap == pytest.approx(round(ref_all.results['AP'], 3), abs=1e-9)
    assert abs(stock_ap - ref_subset.results['AP']) > 0.01


def crowded_predictions(val_path: str, iou_type: str):
    """The hand-made predictions plus, on image 1, 330 more (lvis-api keeps 300 per image),
    tied scores, and boxes of zero area (lvis-api leaves out area 0)."""
    preds = reference_json(make_predictions(val_path), val_path, iou_type)
    rng = np.random.RandomState(5)
    with open(val_path) as f:
        cat_ids = [c['id'] for c in json.load(f)['categories']]
    extra = []
    for k in range(330):
        x, y = (float(v) for v in rng.randint(0, SIZE - 20, size=2))
        w = 0.0 if k % 50 == 0 else float(rng.randint(4, 40))
        item = dict(
            image_id=1,
            category_id=int(rng.choice(cat_ids)),
            bbox=[x, y, w, float(rng.randint(4, 40))],
            score=float(rng.randint(1, 16) / 16))
        if iou_type == 'segm':
            poly = [[x, y, x + max(w, 1), y, x + max(w, 1), y + 8, x, y + 8]]
            rle = mask_utils.frPyObjects(poly, SIZE, SIZE)[0]
            item['segmentation'] = dict(size=rle['size'], counts=rle['counts'].decode())
        extra.append(item)
    return preds[:5] + extra + preds[5:]


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
@pytest.mark.parametrize('nproc, chunk_pairs', [(1, 2_000), (2, 1)])
def test_fast_backend_precision_equals_lvis_api(lvis_files, iou_type, nproc, chunk_pairs):
    """The whole precision array, with lvis-api's 300-per-image and area rules exercised, in
    one chunk and in one chunk per class shared by two worker processes."""
    val_path, _ = lvis_files
    preds = crowded_predictions(val_path, iou_type)
    assert sum(p['image_id'] == 1 for p in preds) > 300
    img_ids = list(range(1, 13))
    ref = lvis_reference(val_path, preds, iou_type, img_ids=img_ids)
    gt = LVIS(val_path)
    ours = lvis_eval_fast(
        gt,
        Detections.from_results(preds, iou_type),
        iou_type,
        img_ids,
        nproc=nproc,
        chunk_pairs=chunk_pairs)
    assert ours.cat_ids == list(ref.params.cat_ids)
    assert np.abs(ours.precision - ref.eval['precision']).max() <= 1e-12
    for key in HEADLINE:
        assert close(ours.headline[key], ref.results[key], 1e-12), key


@pytest.mark.parametrize('with_image_count', [True, False])
def test_missing_frequency_is_computed_with_a_warning(lvis_files, tmp_path, with_image_count):
    """From image_count where the file has it, else from the training annotations."""
    val_path, train_path = lvis_files
    no_freq = make_val(str(tmp_path / 'val_no_freq.json'), with_frequency=False)
    if not with_image_count:
        with open(no_freq) as f:
            data = json.load(f)
        for cat in data['categories']:
            del cat['image_count']
        with open(no_freq, 'w') as f:
            json.dump(data, f)
    preds = make_predictions(no_freq)
    with pytest.warns(UserWarning, match=r'no field "frequency"'):
        results, summary = run_metric(
            no_freq, train_path, preds, str(tmp_path / 'out'), metric=('bbox', ))
    ref = lvis_reference(val_path, reference_json(preds, val_path, 'bbox'), 'bbox')
    for key in ('AP', 'APr', 'APc', 'APf'):
        assert abs(results[f'lvis/bbox_{key}_exact'] - ref.results[key]) <= 1e-9


def test_counts_come_from_the_val_files_categories_without_train_ann_file(lvis_files, tmp_path):
    """LVIS v1's files carry image_count/instance_count: no train_ann_file needed."""
    val_path, train_path = lvis_files
    log_file = str(tmp_path / 'run.log')
    MMLogger.get_instance('counts-from-val', log_file=log_file)
    preds = make_predictions(val_path)
    without, summary_without = run_metric(
        val_path, None, preds, str(tmp_path / 'a'), metric=('bbox', ))
    with_train, summary_with = run_metric(
        val_path, train_path, preds, str(tmp_path / 'b'), metric=('bbox', ))
    assert without == with_train and summary_without == summary_with
    with open(log_file) as f:
        log = f.read()
    assert f'per-class training counts from the "image_count" and "instance_count" of the ' \
           f'categories of ann_file {val_path!r}' in log
    assert f'per-class training counts from the training annotation file {train_path!r}' in log


def test_without_counts_the_bins_are_left_out_with_one_log_line(lvis_files, tmp_path):
    """No train_ann_file and categories without "instance_count": lvis-api's numbers and the
    frequency groups (the file's "frequency"), no bins, and the log says why, once."""
    val_path, _ = lvis_files
    with open(val_path) as f:
        data = json.load(f)
    for cat in data['categories']:
        del cat['instance_count']
    no_counts = str(tmp_path / 'val_no_counts.json')
    with open(no_counts, 'w') as f:
        json.dump(data, f)
    log_file = str(tmp_path / 'run.log')
    MMLogger.get_instance('lvis-no-counts', log_file=log_file)
    preds = make_predictions(no_counts)
    out = tmp_path / 'out'
    for _ in range(2):  # two evaluations (epochs), one log line
        results, summary = run_metric(no_counts, None, preds, str(out), metric=('bbox', ))
    ref = lvis_reference(val_path, reference_json(preds, val_path, 'bbox'), 'bbox')
    for key in HEADLINE:
        assert close(results.get(f'lvis/bbox_{key}_exact'), ref.results[key]), key
        assert results[f'lvis/bbox_{key}'] == float(f'{ref.results[key]:.3f}'), key
    assert not [k for k in results if '_AP_bin_' in k]
    assert summary['bbox']['bins'] == {}
    for group, key in (('r', 'APr'), ('c', 'APc'), ('f', 'APf')):
        assert close(summary['bbox']['frequency_groups'][group]['AP'], ref.results[key])
    rows = json.loads((out / 'bbox_per_class.json').read_text())
    assert all(r['train_instances'] is None and r['frequency'] in 'rcf' for r in rows)
    with open(log_file) as f:
        log = f.read()
    assert log.count('the AP by bins of training annotations is left out') == 1
    assert 'val_no_counts.json have no "image_count" and "instance_count"' in log


@pytest.mark.parametrize('backend', BACKENDS)
def test_label_outside_the_categories_names_file_and_field(lvis_files, tmp_path, backend):
    val_path, train_path = lvis_files
    preds = make_predictions(val_path)
    preds[1]['labels'][0] = len(TRAIN_COUNTS)  # one past the last category
    with pytest.raises(ValueError, match=r'"labels".*val\.json.*"categories"'):
        run_metric(val_path, train_path, preds, str(tmp_path), metric=('bbox', ), backend=backend)


@pytest.mark.parametrize('backend', BACKENDS)
def test_image_not_in_ground_truth_names_file_and_field(lvis_files, tmp_path, backend):
    val_path, train_path = lvis_files
    preds = make_predictions(val_path)
    preds[999] = preds.pop(1)
    with pytest.raises(ValueError, match=r'"img_id".*999.*val\.json'):
        run_metric(val_path, train_path, preds, str(tmp_path), metric=('bbox', ), backend=backend)


def test_prediction_category_not_in_ground_truth(lvis_files):
    from mmfrozen.evaluation.reference_eval import run_lvis_eval
    val_path, _ = lvis_files
    preds = reference_json(make_predictions(val_path), val_path, 'bbox')
    preds[0]['category_id'] = 12345
    with pytest.raises(ValueError, match=r'"category_id".*12345.*val\.json'):
        run_lvis_eval(
            LVIS(val_path), preds, 'bbox', [1, 2, 3], gt_source=val_path, pred_source='preds.json')
    with pytest.raises(ValueError, match=r'"category_id".*12345.*val\.json'):
        lvis_eval_fast(
            LVIS(val_path),
            Detections.from_results(preds, 'bbox'),
            'bbox',
            list(range(1, 13)),
            gt_source=val_path,
            pred_source='preds.json')


def test_unknown_backend_names_the_field(lvis_files):
    val_path, _ = lvis_files
    with pytest.raises(ValueError, match=r'"backend".*lvis-api'):
        METRICS.build(dict(type='LVISStratifiedMetric', ann_file=val_path, backend='mine'))
