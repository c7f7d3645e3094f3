"""Hand-made LVIS/COCO ground truth and predictions, and the references, for the tests of the
stratified metrics (LVIS, COCO, VOC, the shared loop, the distributed run).

The ground truth has categories in every bin and frequency group (one without training
annotations), non-contiguous ids listed out of order, negative and not-exhaustive category
lists; the predictions mix hits, misses and false positives.
"""
import contextlib
import copy
import io
import json
import math
import os.path as osp
from typing import Any, Callable, Dict, List, NamedTuple, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils
import torch
from lvis import LVISEval
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import mmfrozen  # noqa: F401  applies the lvis-api NumPy fix, registers the metrics
from mmdet.registry import METRICS

SIZE = 128
# category id -> (training images, training instances); listed out of id order on purpose.
TRAIN_COUNTS = {11: (3, 5), 3: (20, 40), 20: (150, 200), 7: (8, 1200), 31: (0, 0), 25: (50, 60)}
# bins by training instances: 11 -> 1-10, 3, 25 -> 11-100, 20 -> 101-1000, 7 -> >1000, 31 -> 0
EXPECTED_BIN = {11: '1-10', 3: '11-100', 25: '11-100', 20: '101-1000', 7: '>1000', 31: '0'}


def frequency_of(images: int) -> str:
    return 'r' if images <= 10 else 'c' if images <= 100 else 'f'


def make_categories(with_frequency: bool = True) -> List[Dict]:
    cats = []
    for cat_id, (images, instances) in TRAIN_COUNTS.items():
        cat = dict(
            id=cat_id,
            name=f'class_{cat_id}',
            synset=f'class_{cat_id}.n.01',
            image_count=images,
            instance_count=instances)
        if with_frequency:
            cat['frequency'] = frequency_of(images)
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
    images = [
        dict(id=i, width=SIZE, height=SIZE, neg_category_ids=[], not_exhaustive_category_ids=[])
        for i in range(1, 201)
    ]
    anns = []
    for cat_id, (num_images, num_instances) in TRAIN_COUNTS.items():
        img_ids = rng.choice(200, size=num_images, replace=False) + 1
        for k in range(num_instances):
            b = _box(rng)
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=int(img_ids[k % num_images]),
                    category_id=cat_id,
                    bbox=b,
                    area=b[2] * b[3],
                    segmentation=_rect_poly(b)))
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=make_categories()), f)
    return path


def make_val(path: str, num_images: int = 12, seed: int = 1, with_frequency: bool = True) -> str:
    """An LVIS evaluation file: every category has ground truth somewhere."""
    rng = np.random.RandomState(seed)
    cat_ids = list(TRAIN_COUNTS)
    images, anns = [], []
    for img_id in range(1, num_images + 1):
        present = set()
        for _ in range(rng.randint(1, 5)):
            cat_id = cat_ids[(img_id + len(anns)) % len(cat_ids)]
            b = _box(rng)
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=img_id,
                    category_id=cat_id,
                    bbox=b,
                    area=b[2] * b[3],
                    segmentation=_rect_poly(b)))
            present.add(cat_id)
        absent = [c for c in cat_ids if c not in present]
        neg = sorted(rng.choice(absent, size=min(2, len(absent)), replace=False).tolist())
        not_exhaustive = sorted(present)[:1] if img_id % 3 == 0 else []
        images.append(
            dict(
                id=img_id,
                width=SIZE,
                height=SIZE,
                neg_category_ids=neg,
                not_exhaustive_category_ids=not_exhaustive))
    with open(path, 'w') as f:
        json.dump(
            dict(images=images, annotations=anns, categories=make_categories(with_frequency)), f)
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
        preds[img['id']] = dict(
            bboxes=boxes_np,
            labels=np.array(labels, dtype=np.int64),
            scores=rng.randint(1, 64, size=len(boxes)) / 64.0,
            masks=masks)
    return preds


def data_samples(preds: Dict[int, Dict]) -> List[Dict]:
    """What a detector's test step hands to the metric."""
    return [
        dict(
            img_id=img_id,
            ori_shape=(SIZE, SIZE),
            pred_instances=dict(
                bboxes=torch.from_numpy(p['bboxes']),
                scores=torch.tensor(p['scores'], dtype=torch.float32),
                labels=torch.from_numpy(p['labels']),
                masks=torch.from_numpy(p['masks']))) for img_id, p in preds.items()
    ]


def reference_json(preds: Dict[int, Dict], val_path: str, iou_type: str) -> List[Dict]:
    """The same predictions in the COCO results format, written independently of mmdet."""
    with open(val_path) as f:
        cat_ids = [c['id'] for c in json.load(f)['categories']]
    out = []
    for img_id, p in preds.items():
        for k in range(len(p['labels'])):
            x1, y1, x2, y2 = (float(v) for v in p['bboxes'][k])
            item = dict(
                image_id=img_id,
                category_id=cat_ids[p['labels'][k]],
                bbox=[x1, y1, x2 - x1, y2 - y1],
                score=float(p['scores'][k]))
            if iou_type == 'segm':
                rle = mask_utils.encode(np.asfortranarray(p['masks'][k].astype(np.uint8)))
                item['segmentation'] = dict(size=rle['size'], counts=rle['counts'].decode())
            out.append(item)
    return out


def lvis_reference(val_path: str, preds_list: List[Dict], iou_type: str, img_ids=None) -> LVISEval:
    """lvis-api's LVISEval, run on the files as its README says (on ``img_ids`` if given)."""
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


def build_metric(metric_type: str, val_path: str, train_path: str, metric: Sequence[str], **kwargs):
    """A stratified metric on hand-made files, with the class names a dataset would give."""
    metric_obj = METRICS.build(
        dict(
            type=metric_type,
            ann_file=val_path,
            train_ann_file=train_path,
            metric=list(metric),
            **kwargs))
    metric_obj.dataset_meta = dict(classes=[c['name'] for c in make_categories()])
    return metric_obj


def run_metric(val_path: str,
               train_path: str,
               preds: Dict[int, Dict],
               out_dir: str,
               metric=('bbox', 'segm'),
               metric_type: str = 'LVISStratifiedMetric',
               **kwargs) -> Tuple[Dict, Dict]:
    """Evaluate ``preds``; return the metrics and the written ``summary.json``."""
    metric_obj = build_metric(metric_type, val_path, train_path, metric, out_dir=out_dir, **kwargs)
    samples = data_samples(preds)
    metric_obj.process({}, samples)
    results = metric_obj.evaluate(len(samples))
    with open(osp.join(out_dir, 'summary.json')) as f:
        summary = json.load(f)
    return results, summary


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


def coco_reference(val_path: str, preds_list, iou_type: str, img_ids=None) -> COCOeval:
    """pycocotools' COCOeval with default parameters (mask area for ``segm``)."""
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


def coco_per_class_ap(coco_eval: COCOeval) -> Dict[int, float]:
    """Per-class AP from COCOeval's precision array (all areas, 100 detections)."""
    precision = coco_eval.eval['precision'][:, :, :, 0, -1]
    out = {}
    for k, cat_id in enumerate(coco_eval.params.catIds):
        p = precision[:, :, k]
        out[cat_id] = float(p[p > -1].mean()) if (p > -1).any() else float('nan')
    return out


def close(ours, ref, tol: float = 1e-9) -> bool:
    """Equal within ``tol``, or both without a value (the reference's -1 or NaN; ours None
    or NaN)."""
    if ref == -1 or (isinstance(ref, float) and math.isnan(ref)):
        return ours is None or (isinstance(ours, float) and math.isnan(ours))
    return ours is not None and abs(ours - ref) <= tol


class StratifiedRun(NamedTuple):
    """One evaluation of the hand-made predictions by a stratified metric and its reference."""
    results: dict  # the metric's evaluate()
    summary: dict  # its summary.json
    rows: list  # its <iou_type>_per_class.json
    reference: Any  # the reference evaluator run on the same images (COCOeval, LVISEval)
    preds: dict  # the predictions, by image
    preds_list: list  # the same as the reference took them


def run_stratified(metric_type: str, reference: Callable, files: Tuple[str, str], out_dir,
                   iou_type: str, backend: str, img_ids=None,
                   metric=('bbox', 'segm')) -> StratifiedRun:
    """Evaluate the hand-made predictions with a stratified metric and with its reference.

    Args:
        metric_type: ``'CocoStratifiedMetric'`` or ``'LVISStratifiedMetric'``.
        reference: :func:`coco_reference` or :func:`lvis_reference`.
        files: the (val, train) annotation files.
        out_dir: the metric's report folder.
        iou_type: ``'bbox'`` or ``'segm'``, the one the reference evaluates.
        backend: the metric's backend.
        img_ids: the images to predict and evaluate (every image by default).
        metric: what the metric evaluates.

    Returns:
        StratifiedRun: the metric's outputs and the reference evaluator.
    """
    val_path, train_path = files
    preds = make_predictions(val_path, img_ids=img_ids)
    results, summary = run_metric(val_path, train_path, preds, str(out_dir), metric=metric,
                                  metric_type=metric_type, backend=backend)
    with open(osp.join(out_dir, f'{iou_type}_per_class.json')) as f:
        rows = json.load(f)
    preds_list = reference_json(preds, val_path, iou_type)
    return StratifiedRun(results, summary, rows,
                         reference(val_path, preds_list, iou_type, img_ids=img_ids), preds,
                         preds_list)
