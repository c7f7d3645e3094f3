"""Seeded LVIS-val-shaped synthetic ground truth and detections, for benchmarks/lvis_eval.py.

1,203 categories with LVIS v1's rare/common/frequent split (337/461/405), ~12 annotations
per image over a few present classes (frequent classes more often), ``neg_category_ids`` and
``not_exhaustive_category_ids`` per image, and up to 300 detections per image: jittered
copies of most ground-truth boxes plus false positives, on present, negative and unrelated
classes. Boxes span LVIS's small/medium/large ranges; masks are the boxes' rectangles.
"""
from typing import Any, Dict, List, Tuple

import numpy as np

NUM_CATEGORIES = 1203
FREQUENCY_SPLIT = dict(r=337, c=461, f=405)
# how often a class of each group is present in an image, relatively
GROUP_WEIGHT = dict(r=1.0, c=6.0, f=40.0)
IMAGE_SIZES = ((640, 480), (480, 640), (640, 427), (500, 375))


def make_categories(rng: np.random.RandomState) -> List[Dict[str, Any]]:
    """1,203 LVIS-like categories with ``frequency``, ``image_count``, ``instance_count``."""
    groups = np.array([g for g, n in FREQUENCY_SPLIT.items() for _ in range(n)])
    rng.shuffle(groups)
    ranges = dict(r=(1, 10), c=(11, 100), f=(101, 5000))
    cats = []
    for k, group in enumerate(groups):
        low, high = ranges[group]
        images = int(rng.randint(low, high + 1))
        cats.append(
            dict(
                id=k + 1,
                name=f'class_{k + 1}',
                synset=f'class_{k + 1}.n.01',
                frequency=str(group),
                image_count=images,
                instance_count=int(images * rng.uniform(1, 4))))
    return cats


def _boxes(rng: np.random.RandomState, n: int, width: int, height: int) -> np.ndarray:
    """``n`` xywh boxes with log-uniform sides (small, medium and large objects)."""
    w = np.minimum(np.exp(rng.uniform(np.log(4), np.log(width), size=n)), width - 1)
    h = np.minimum(w * np.exp(rng.uniform(-0.7, 0.7, size=n)), height - 1)
    x = rng.uniform(0, width - w)
    y = rng.uniform(0, height - h)
    return np.round(np.stack([x, y, w, h], axis=1), 2)


def make_dataset(num_images: int,
                 seed: int = 0,
                 max_dets: int = 300) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """The ground truth (an LVIS-format dict) and per-image detections.

    Returns:
        tuple: ``(gt, preds)``; ``preds`` are mmdet-style per-image dicts: ``img_id``,
        ``bboxes`` (float32 xyxy), ``scores`` (float32), ``labels`` (index in the
        categories' order).
    """
    rng = np.random.RandomState(seed)
    cats = make_categories(rng)
    weights = np.array([GROUP_WEIGHT[c['frequency']] for c in cats])
    weights /= weights.sum()
    images, anns, preds = [], [], []
    for img_id in range(1, num_images + 1):
        width, height = IMAGE_SIZES[img_id % len(IMAGE_SIZES)]
        present = rng.choice(NUM_CATEGORIES, size=1 + rng.poisson(2.5), replace=False, p=weights)
        gt_labels, gt_boxes = [], []
        for label in present:
            n = int(rng.geometric(0.35) + rng.poisson(0.5))
            gt_labels += [int(label)] * n
            gt_boxes.append(_boxes(rng, n, width, height))
        gt_boxes = np.concatenate(gt_boxes)
        for label, (x, y, w, h) in zip(gt_labels, gt_boxes.tolist()):
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=img_id,
                    category_id=label + 1,
                    bbox=[x, y, w, h],
                    area=round(w * h, 2),
                    segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
        absent = np.setdiff1d(np.arange(NUM_CATEGORIES), present)
        neg = rng.choice(absent, size=rng.randint(0, 16), replace=False)
        not_exhaustive = [int(c) + 1 for c in present if rng.rand() < 0.1]
        images.append(
            dict(
                id=img_id,
                width=width,
                height=height,
                neg_category_ids=sorted(int(c) + 1 for c in neg),
                not_exhaustive_category_ids=sorted(not_exhaustive)))

        # detections: jittered true positives, then false positives up to ~max_dets
        hit = rng.rand(len(gt_labels)) < 0.8
        tp_boxes = gt_boxes[hit] + rng.normal(0, 0.05, size=(int(hit.sum()), 1)) * \
            gt_boxes[hit][:, 2:].repeat(2, axis=1)
        tp_labels = np.asarray(gt_labels, dtype=np.int64)[hit]
        num_fp = max(0, rng.randint(max_dets - 50, max_dets + 1) - len(tp_labels))
        pool = np.concatenate([present, neg]) if len(neg) else present
        fp_labels = np.where(
            rng.rand(num_fp) < 0.5, rng.choice(pool, size=num_fp),
            rng.choice(NUM_CATEGORIES, size=num_fp, p=weights))
        fp_boxes = _boxes(rng, num_fp, width, height)
        xywh = np.concatenate([tp_boxes, fp_boxes])
        xywh[:, 2:] = np.maximum(xywh[:, 2:], 1)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        scores = np.concatenate(
            [rng.uniform(0.3, 1.0, len(tp_labels)),
             rng.uniform(0.0, 0.7, num_fp)])
        preds.append(
            dict(
                img_id=img_id,
                bboxes=xyxy.astype(np.float32),
                scores=scores.astype(np.float32),
                labels=np.concatenate([tp_labels, fp_labels]).astype(np.int64)))
    gt = dict(images=images, annotations=anns, categories=cats)
    return gt, preds


def to_results(preds: List[Dict[str, Any]], cat_ids: List[int]) -> List[Dict[str, Any]]:
    """The detections as COCO-format results, as mmdet's ``results2json`` writes them."""
    out = []
    for p in preds:
        for box, score, label in zip(p['bboxes'].tolist(), p['scores'].tolist(),
                                     p['labels'].tolist()):
            out.append(
                dict(
                    image_id=p['img_id'],
                    category_id=cat_ids[label],
                    bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    score=score))
    return out
