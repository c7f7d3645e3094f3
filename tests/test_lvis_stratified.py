"""LVISStratifiedMetric against lvis-api's LVISEval on hand-made ground truth and predictions.

The ground truth has categories in every bin and frequency group (one without training
annotations), non-contiguous ids listed out of order, negative and not-exhaustive category
lists; the predictions mix hits, misses and false positives. Every number is compared with
LVISEval run on the same files.
"""
import copy
import json
import math
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

import mmfrozen  # noqa: F401  applies the lvis-api NumPy fix, registers the metric
from lvis import LVISEval
from mmdet.evaluation.metrics import LVISMetric
from mmdet.registry import METRICS

SIZE = 128
# category id -> (training images, training instances); listed out of id order on purpose.
TRAIN_COUNTS = {11: (3, 5), 3: (20, 40), 20: (150, 200), 7: (8, 1200), 31: (0, 0),
                25: (50, 60)}
# bins by training instances: 11 -> 1-10, 3, 25 -> 11-100, 20 -> 101-1000, 7 -> >1000, 31 -> 0
EXPECTED_BIN = {11: '1-10', 3: '11-100', 25: '11-100', 20: '101-1000', 7: '>1000', 31: '0'}


def _freq(images: int) -> str:
    return 'r' if images <= 10 else 'c' if images <= 100 else 'f'


def make_categories(with_frequency: bool = True) -> List[Dict]:
    cats = []
    for cat_id, (images, instances) in TRAIN_COUNTS.items():
        cat = dict(id=cat_id, name=f'class_{cat_id}', synset=f'class_{cat_id}.n.01',
                   image_count=images, instance_count=instances)
        if with_frequency:
            cat['frequency'] = _freq(images)
        cats.append(cat)
    return cats


def _box(rng: np.random.RandomState) -> List[float]:
    w, h = rng.randint(8, 110, size=2)
    x, y = rng.randint(0, SIZE - w), rng.randint(0, SIZE - h)
    return [float(x), float(y), float(w), float(h)]


def _rect_poly(b: List[float]) -> List[List[float]]:
    x, y, w, h = b
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


def make_train(path: str) -> str:
    """An LVIS training file with exactly TRAIN_COUNTS images and instances per category."""
    rng = np.random.RandomState(0)
    images = [dict(id=i, width=SIZE, height=SIZE, neg_category_ids=[],
                   not_exhaustive_category_ids=[]) for i in range(1, 201)]
    anns = []
    for cat_id, (num_images, num_instances) in TRAIN_COUNTS.items():
        img_ids = rng.choice(200, size=num_images, replace=False) + 1
        for k in range(num_instances):
            b = _box(rng)
            anns.append(dict(id=len(anns) + 1, image_id=int(img_ids[k % num_images]),
                             category_id=cat_id, bbox=b, area=b[2] * b[3],
                             segmentation=_rect_poly(b)))
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=make_categories()), f)
    return path


def make_val(path: str, num_images: int = 12, seed: int = 1,
             with_frequency: bool = True) -> str:
    """An LVIS evaluation file: every category has ground truth somewhere."""
    rng = np.random.RandomState(seed)
    cat_ids = list(TRAIN_COUNTS)
    images, anns = [], []
    for img_id in range(1, num_images + 1):
        present = set()
        for _ in range(rng.randint(1, 5)):
            cat_id = cat_ids[(img_id + len(anns)) % len(cat_ids)]
            b = _box(rng)
            anns.append(dict(id=len(anns) + 1, image_id=img_id, category_id=cat_id, bbox=b,
                             area=b[2] * b[3], segmentation=_rect_poly(b)))
            present.add(cat_id)
        absent = [c for c in cat_ids if c not in present]
        neg = sorted(rng.choice(absent, size=min(2, len(absent)), replace=False).tolist())
        not_exhaustive = sorted(present)[:1] if img_id % 3 == 0 else []
        images.append(dict(id=img_id, width=SIZE, height=SIZE, neg_category_ids=neg,
                           not_exhaustive_category_ids=not_exhaustive))
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=make_categories(with_frequency)), f)
    return path


def make_predictions(val_path: str, img_ids=None, seed: int = 2) -> Dict[int, Dict]:
    """Per image: xyxy boxes, scores, labels (index in the file's category order), masks.

    Coordinates are integers and scores multiples of 1/64, exact in float32, so the metric's
    float32 path and the reference's JSON see the same numbers.
    """
    with open(val_path) as f:
        val = json.load(f)
    label_of = {c['id']: i for i, c in enumerate(val['categories'])}
    rng = np.random.RandomState(seed)
    preds = {}
    for img in val['images']:
        if img_ids is not None and img['id'] not in img_ids:
            continue
        boxes, labels = [], []
        for ann in val['annotations']:
            if ann['image_id'] != img['id'] or rng.rand() < 0.2:
                continue
            x, y, w, h = ann['bbox']
            dx, dy = rng.randint(-3, 4, size=2)
            boxes.append([x + dx, y + dy, x + dx + w, y + dy + h])
            labels.append(label_of[ann['category_id']])
        for _ in range(3):  # false positives, some on negative or not-exhaustive categories
            x, y, w, h = _box(rng)
            boxes.append([x, y, x + w, y + h])
            labels.append(int(rng.randint(len(label_of))))
        boxes_np = np.clip(np.array(boxes, dtype=np.float32), 0, SIZE)
        masks = np.zeros((len(boxes), SIZE, SIZE), dtype=bool)
        for k, (x1, y1, x2, y2) in enumerate(boxes_np.astype(int)):
            masks[k, y1:y2, x1:x2] = True
        preds[img['id']] = dict(bboxes=boxes_np, labels=np.array(labels, dtype=np.int64),
                                scores=rng.randint(1, 64, size=len(boxes)) / 64.0,
                                masks=masks)
    return preds


def data_samples(preds: Dict[int, Dict]) -> List[Dict]:
    """What a detector's test step hands to the metric."""
    return [dict(img_id=img_id, ori_shape=(SIZE, SIZE),
                 pred_instances=dict(bboxes=torch.from_numpy(p['bboxes']),
                                     scores=torch.tensor(p['scores'], dtype=torch.float32),
                                     labels=torch.from_numpy(p['labels']),
                                     masks=torch.from_numpy(p['masks'])))
            for img_id, p in preds.items()]


def reference_json(preds: Dict[int, Dict], val_path: str, iou_type: str) -> List[Dict]:
    """The same predictions in the COCO results format, written independently of mmdet."""
    with open(val_path) as f:
        cat_ids = [c['id'] for c in json.load(f)['categories']]
    out = []
    for img_id, p in preds.items():
        for k in range(len(p['labels'])):
            x1, y1, x2, y2 = (float(v) for v in p['bboxes'][k])
            item = dict(image_id=img_id, category_id=cat_ids[p['labels'][k]],
                        bbox=[x1, y1, x2 - x1, y2 - y1], score=float(p['scores'][k]))
            if iou_type == 'segm':
                rle = mask_utils.encode(np.asfortranarray(p['masks'][k].astype(np.uint8)))
                item['segmentation'] = dict(size=rle['size'], counts=rle['counts'].decode())
            out.append(item)
    return out


def reference_eval(val_path: str, preds_list: List[Dict], iou_type: str,
                   img_ids=None) -> LVISEval:
    lvis_eval = LVISEval(val_path, copy.deepcopy(preds_list), iou_type)
    if img_ids is not None:
        lvis_eval.params.img_ids = sorted(img_ids)
    lvis_eval.run()
    return lvis_eval


def reference_per_class_ap(lvis_eval: LVISEval) -> Dict[int, float]:
    """Per-class AP from LVISEval's precision array, as its summarize() averages."""
    precision = lvis_eval.eval['precision']
    out = {}
    for k, cat_id in enumerate(lvis_eval.params.cat_ids):
        p = precision[:, :, k, 0]
        p = p[p > -1]
        out[cat_id] = float(p.mean()) if p.size else float('nan')
    return out


def build_metric(metric_type: str, val_path: str, train_path: str, metric: Sequence[str],
                 **kwargs):
    """A stratified metric on hand-made files, with the class names a dataset would give."""
    metric_obj = METRICS.build(dict(type=metric_type, ann_file=val_path,
                                    train_ann_file=train_path, metric=list(metric), **kwargs))
    metric_obj.dataset_meta = dict(classes=[c['name'] for c in make_categories()])
    return metric_obj


def run_metric(val_path: str, train_path: str, preds: Dict[int, Dict], out_dir: str,
               metric=('bbox', 'segm'), metric_type: str = 'LVISStratifiedMetric',
               **kwargs) -> Tuple[Dict, Dict]:
    """Evaluate ``preds``; return the metrics and the written ``summary.json``."""
    metric_obj = build_metric(metric_type, val_path, train_path, metric, out_dir=out_dir,
                              **kwargs)
    samples = data_samples(preds)
    metric_obj.process({}, samples)
    results = metric_obj.evaluate(len(samples))
    with open(osp.join(out_dir, 'summary.json')) as f:
        summary = json.load(f)
    return results, summary


def _close(ours, ref) -> bool:
    if ref == -1 or (isinstance(ref, float) and math.isnan(ref)):
        return ours is None or (isinstance(ours, float) and math.isnan(ours))
    return abs(ours - ref) <= 1e-9


@pytest.fixture(scope='module')
def lvis_files(tmp_path_factory) -> Tuple[str, str]:
    root = tmp_path_factory.mktemp('lvis_handmade')
    return make_val(str(root / 'val.json')), make_train(str(root / 'train.json'))


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_headline_bins_and_classes_equal_lvis_api(lvis_files, tmp_path, iou_type):
    val_path, train_path = lvis_files
    preds = make_predictions(val_path)
    results, summary = run_metric(val_path, train_path, preds, str(tmp_path))
    ref = reference_eval(val_path, reference_json(preds, val_path, iou_type), iou_type)

    for key in ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf'):
        assert _close(summary[iou_type][key], ref.results[key]), key
        if ref.results[key] != -1:
            assert abs(results[f'lvis/{iou_type}_{key}'] - ref.results[key]) <= 1e-9, key
        else:
            assert f'lvis/{iou_type}_{key}' not in results
    assert 0 < ref.results['AP'] < 1  # a real mix of hits and misses

    per_class = reference_per_class_ap(ref)
    for label in ('1-10', '11-100', '101-1000', '>1000', '0'):
        members = [c for c, b in EXPECTED_BIN.items() if b == label]
        expected = np.nanmean([per_class[c] for c in members])
        got = summary[iou_type]['bins'][label]
        assert got['num_classes'] == len(members)
        assert abs(got['AP'] - expected) <= 1e-9, label
        assert abs(results[f'lvis/{iou_type}_AP_bin_{label}'] - expected) <= 1e-9
    for group, key in (('r', 'APr'), ('c', 'APc'), ('f', 'APf')):
        assert _close(summary[iou_type]['frequency_groups'][group]['AP'], ref.results[key])

    with open(tmp_path / f'{iou_type}_per_class.json') as f:
        rows = json.load(f)
    assert [r['category_id'] for r in rows] == sorted(TRAIN_COUNTS)
    precision = ref.eval['precision']
    for k, row in enumerate(rows):
        assert (row['train_images'], row['train_instances']) == TRAIN_COUNTS[
            row['category_id']]
        assert row['frequency'] == _freq(row['train_images'])
        assert _close(row['AP'], per_class[row['category_id']])
        p50 = precision[0, :, k, 0]
        assert _close(row['AP50'], float(p50[p50 > -1].mean()))
    assert summary['dataset'] == 'lvis' and summary['num_images'] == len(preds)
    assert (tmp_path / f'{iou_type}_per_class.csv').read_text().startswith(
        'category_id,name,frequency,train_images,train_instances,AP,AP50')
    assert (tmp_path / f'{iou_type}_per_class_ap.png').stat().st_size > 0


def test_subset_counts_only_the_evaluated_images(lvis_files, tmp_path):
    val_path, train_path = lvis_files
    subset = {1, 2, 3, 4, 5, 6}
    preds = make_predictions(val_path, img_ids=subset)
    results, summary = run_metric(val_path, train_path, preds, str(tmp_path),
                                  metric=('bbox',))
    preds_list = reference_json(preds, val_path, 'bbox')
    ref_subset = reference_eval(val_path, preds_list, 'bbox', img_ids=subset)
    ref_all = reference_eval(val_path, preds_list, 'bbox')
    assert abs(results['lvis/bbox_AP'] - ref_subset.results['AP']) <= 1e-9
    assert summary['num_images'] == len(subset)
    # The images left out hold ground truth that nobody predicted: scoring them lowers AP.
    assert ref_all.results['AP'] < ref_subset.results['AP'] - 0.01

    # mmdet's stock LVISMetric sets params.imgIds, which lvis-api ignores: it scores all.
    stock = LVISMetric(ann_file=val_path, metric='bbox')
    stock.dataset_meta = dict(classes=[c['name'] for c in make_categories()])
    samples = data_samples(preds)
    stock.process({}, samples)
    stock_ap = stock.evaluate(len(samples))['lvis/bbox_AP']
    assert stock_ap == pytest.approx(round(ref_all.results['AP'], 3), abs=1e-9)
    assert abs(stock_ap - ref_subset.results['AP']) > 0.01


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
        results, summary = run_metric(no_freq, train_path, preds, str(tmp_path / 'out'),
                                      metric=('bbox',))
    ref = reference_eval(val_path, reference_json(preds, val_path, 'bbox'), 'bbox')
    for key in ('AP', 'APr', 'APc', 'APf'):
        assert abs(results[f'lvis/bbox_{key}'] - ref.results[key]) <= 1e-9


def test_label_outside_the_categories_names_file_and_field(lvis_files, tmp_path):
    val_path, train_path = lvis_files
    preds = make_predictions(val_path)
    preds[1]['labels'][0] = len(TRAIN_COUNTS)  # one past the last category
    with pytest.raises(ValueError, match=r'"labels".*val\.json.*"categories"'):
        run_metric(val_path, train_path, preds, str(tmp_path), metric=('bbox',))


def test_image_not_in_ground_truth_names_file_and_field(lvis_files, tmp_path):
    val_path, train_path = lvis_files
    preds = make_predictions(val_path)
    preds[999] = preds.pop(1)
    with pytest.raises(ValueError, match=r'"img_id".*999.*val\.json'):
        run_metric(val_path, train_path, preds, str(tmp_path), metric=('bbox',))


def test_prediction_category_not_in_ground_truth(lvis_files):
    from lvis import LVIS

    from mmfrozen.evaluation.reference_eval import run_lvis_eval
    val_path, _ = lvis_files
    preds = reference_json(make_predictions(val_path), val_path, 'bbox')
    preds[0]['category_id'] = 12345
    with pytest.raises(ValueError, match=r'"category_id".*12345.*val\.json'):
        run_lvis_eval(LVIS(val_path), preds, 'bbox', [1, 2, 3], gt_source=val_path,
                      pred_source='preds.json')


def test_train_ann_file_is_required(lvis_files):
    val_path, _ = lvis_files
    with pytest.raises(ValueError, match='train_ann_file'):
        METRICS.build(dict(type='LVISStratifiedMetric', ann_file=val_path))
