"""Hypothesis strategies of COCO and LVIS evaluations: ground truth and a detector's outputs,
valid or broken, and what a test hands the metrics and the reference evaluators from one.

A drawn :class:`EvalCase` has any integer ids (0 and negative ones included, for images,
categories and annotations), images without ground truth or detections, crowd regions (COCO),
the federated fields of LVIS (negative and not-exhaustive categories), scores from a small set
(so that ties are common), sometimes more detections on one image than the reference keeps
(100 for pycocotools, 300 for lvis-api), and boxes anywhere in their image, its borders
included. Box coordinates are multiples of 1/2 and scores of 1/16, exact in float32, so that a
metric's float32 path and the reference's JSON see the same numbers.

Needs ``hypothesis`` (a test requirement, not one of mmfrozen's).
"""
import copy
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils
import torch
from hypothesis import strategies as st

#: detections per image the references keep: pycocotools (COCOeval's default) and lvis-api.
COCO_MAX_DETS = 100
LVIS_MAX_DETS = 300
#: any id a JSON annotation file may hold; small ones (0 included) often.
IDS = st.one_of(st.integers(min_value=-3, max_value=3), st.integers(min_value=-3,
                                                                    max_value=2**31 - 1))
#: detection scores: exact in float32, and few, so that ties are common.
SCORES = tuple(k / 16 for k in range(1, 17))
MAX_SIDE = 160  # images up to this size hold small, medium and large boxes


@dataclass
class EvalCase:
    """One evaluation: an annotation file and a detector's outputs on each of its images.

    Attributes:
        gt: the annotation file's content (COCO, or LVIS with its federated fields).
        dets: per image id (every image of ``gt``), the detector's outputs: ``bboxes`` (N, 4)
            float32 xyxy, ``scores`` (N,) float32, ``labels`` (N,) int64 indices into
            ``gt['categories']`` (the order a dataset's classes take).
        iou_types: what to evaluate: ``('bbox',)`` or ``('bbox', 'segm')``.
        lvis: whether ``gt`` is in LVIS format.
        evaluated: the ids of the images the detector runs on (and the metric is given), in
            file order: all, or some.
    """
    gt: Dict[str, Any]
    dets: Dict[int, Dict[str, np.ndarray]]
    iou_types: Tuple[str, ...]
    lvis: bool
    evaluated: List[int]

    @property
    def every_image(self) -> bool:
        """Whether every image of the file is evaluated."""
        return len(self.evaluated) == len(self.gt['images'])

    @property
    def max_dets(self) -> int:
        """The reference's detections per image."""
        return LVIS_MAX_DETS if self.lvis else COCO_MAX_DETS

    def features(self) -> List[str]:
        """Which of the strategy's promised features this case has (for coverage checks)."""
        anns = self.gt['annotations']
        out = []
        if any(a['id'] <= 0 for a in anns):
            out.append('annotation id <= 0')
        if any(i['id'] <= 0 for i in self.gt['images']) or any(
                c['id'] <= 0 for c in self.gt['categories']):
            out.append('image or category id <= 0')
        with_gt = {a['image_id'] for a in anns}
        if any(i['id'] not in with_gt and not len(self.dets[i['id']]['scores'])
               for i in self.gt['images']):
            out.append('empty image')
        if any(a.get('iscrowd') for a in anns):
            out.append('crowd')
        scores = np.concatenate([d['scores'] for d in self.dets.values()])
        if len(np.unique(scores)) < len(scores):
            out.append('tied scores')
        if any(len(d['scores']) > self.max_dets for d in self.dets.values()):
            out.append('over the detection limit')
        sizes = {i['id']: (i['width'], i['height']) for i in self.gt['images']}
        for img_id, d in self.dets.items():
            w, h = sizes[img_id]
            b = d['bboxes']
            if len(b) and ((b[:, :2] == 0).any() or (b[:, 2] == w).any() or (b[:, 3] == h).any()):
                out.append('box at the border')
                break
        if 'segm' in self.iou_types:
            out.append('segm')
        if not self.every_image:
            out.append('part of the images')
        if any(a['area'] != a['bbox'][2] * a['bbox'][3] for a in anns):
            out.append('area other than the box')
        return out


def _half_steps(draw, high: float, min_size: float = 0.5) -> Tuple[float, float]:
    """Two coordinates ``low < high`` (at least ``min_size`` apart) on a 1/2-pixel grid."""
    steps = int(2 * high)
    a = draw(st.integers(0, steps - int(2 * min_size)))
    b = draw(st.integers(a + int(2 * min_size), steps))
    return a / 2, b / 2


@st.composite
def _gt_box(draw, width: int, height: int) -> List[float]:
    x1, x2 = _half_steps(draw, width)
    y1, y2 = _half_steps(draw, height)
    return [x1, y1, x2 - x1, y2 - y1]


def _rect_polygon(box: Sequence[float]) -> List[List[float]]:
    x, y, w, h = box
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]


@st.composite
def _images(draw, lvis: bool) -> List[Dict[str, Any]]:
    ids = draw(st.lists(IDS, min_size=1, max_size=4, unique=True))
    images = []
    for img_id in ids:
        img = dict(id=img_id, width=draw(st.integers(1, MAX_SIDE)),
                   height=draw(st.integers(1, MAX_SIDE)), file_name=f'{img_id}.jpg')
        if lvis:
            img['coco_url'] = f'http://images.cocodataset.org/val2017/{img_id}.jpg'
        images.append(img)
    return images


@st.composite
def _categories(draw, lvis: bool) -> List[Dict[str, Any]]:
    ids = draw(st.lists(IDS, min_size=1, max_size=4, unique=True))
    cats = []
    for k, cat_id in enumerate(ids):
        cat = dict(id=cat_id, name=f'class_{k}')
        if lvis:
            cat.update(frequency=draw(st.sampled_from('rcf')),
                       image_count=draw(st.integers(0, 200)),
                       instance_count=draw(st.integers(0, 2000)))
        cats.append(cat)
    return cats


def _box_masks(bboxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, H, W) bool masks: each box's pixels (pycocotools' rasterisation of the box)."""
    if not len(bboxes):
        return np.zeros((0, height, width), dtype=bool)
    xywh = np.stack([bboxes[:, 0], bboxes[:, 1], bboxes[:, 2] - bboxes[:, 0],
                     bboxes[:, 3] - bboxes[:, 1]], axis=1).astype(np.float64)
    rles = mask_utils.frPyObjects(np.ascontiguousarray(xywh), height, width)
    return mask_utils.decode(rles).transpose(2, 0, 1).astype(bool)


@st.composite
def eval_cases(draw, lvis: bool = False, min_annotations: int = 0) -> EvalCase:
    """A valid COCO (``lvis=False``) or LVIS ground truth and a detector's outputs on it.

    Detections are jittered copies of some ground-truth boxes (of their class or another),
    false positives anywhere in the image, and, in some cases, a flood of boxes on one image,
    past the reference's detection limit. There is at least one detection in all.

    Args:
        lvis: LVIS format (federated fields, frequencies, no crowd regions).
        min_annotations: at least this many ground-truth annotations on the first image.
    """
    images = draw(_images(lvis))
    cats = draw(_categories(lvis))
    cat_ids = [c['id'] for c in cats]
    anns: List[Dict[str, Any]] = []
    for k, img in enumerate(images):
        count = draw(st.integers(0, 4))
        for _ in range(max(count, min_annotations) if k == 0 else count):
            box = draw(_gt_box(img['width'], img['height']))
            # the area ranges' bounds (32**2, 96**2) included, where implementations may part
            area = draw(st.sampled_from((box[2] * box[3], box[2] * box[3] / 2, 32.0**2,
                                         96.0**2)))
            ann = dict(image_id=img['id'], category_id=draw(st.sampled_from(cat_ids)), bbox=box,
                       area=area, segmentation=_rect_polygon(box))
            if not lvis:
                ann['iscrowd'] = draw(st.sampled_from((0, 0, 0, 1)))
            anns.append(ann)
    ann_ids = draw(st.lists(IDS, min_size=len(anns), max_size=len(anns), unique=True))
    for ann, ann_id in zip(anns, ann_ids):
        ann['id'] = ann_id
    if lvis:
        for img in images:
            present = sorted({a['category_id'] for a in anns if a['image_id'] == img['id']})
            absent = [c for c in cat_ids if c not in present]
            img['neg_category_ids'] = draw(st.lists(st.sampled_from(absent), unique=True)) \
                if absent else []
            img['not_exhaustive_category_ids'] = draw(
                st.lists(st.sampled_from(present), unique=True)) if present else []
    gt = dict(images=images, annotations=anns, categories=cats)
    dets = {img['id']: draw(_detections(img, anns, cat_ids)) for img in images}
    limit = LVIS_MAX_DETS if lvis else COCO_MAX_DETS
    if draw(st.sampled_from((False, False, False, True))):
        img = draw(st.sampled_from(images))
        extra = _flood(img, draw(st.integers(limit - 2, limit + 8)), len(cats),
                       draw(st.integers(0, 2**32 - 1)))
        dets[img['id']] = {k: np.concatenate([dets[img['id']][k], extra[k]]) for k in extra}
    evaluated = [img['id'] for img in images]
    if len(images) > 1 and draw(st.booleans()):
        evaluated = [i for i in evaluated if draw(st.booleans())] or evaluated[-1:]
    if not sum(len(dets[i]['scores']) for i in evaluated):
        img = next(img for img in images if img['id'] == evaluated[0])
        dets[img['id']] = dict(
            bboxes=np.array([[0, 0, img['width'], img['height']]], dtype=np.float32),
            scores=np.array([SCORES[0]], dtype=np.float32), labels=np.zeros(1, dtype=np.int64))
    iou_types = draw(st.sampled_from((('bbox', ), ('bbox', 'segm'))))
    return EvalCase(gt=gt, dets=dets, iou_types=iou_types, lvis=lvis, evaluated=evaluated)


@st.composite
def _detections(draw, img: Dict[str, Any], anns: List[Dict[str, Any]],
                cat_ids: List[int]) -> Dict[str, np.ndarray]:
    width, height = img['width'], img['height']
    num_classes = len(cat_ids)
    boxes, labels = [], []
    for ann in anns:
        if ann['image_id'] != img['id'] or not draw(st.booleans()):
            continue
        x, y, w, h = ann['bbox']
        dx1, dy1, dx2, dy2 = (draw(st.integers(-2, 2)) / 2 for _ in range(4))
        x1, y1 = min(max(x + dx1, 0), width), min(max(y + dy1, 0), height)
        x2, y2 = min(max(x + w + dx2, x1), width), min(max(y + h + dy2, y1), height)
        boxes.append([x1, y1, x2, y2])
        own = cat_ids.index(ann['category_id'])
        labels.append(own if draw(st.booleans()) else draw(st.integers(0, num_classes - 1)))
    for _ in range(draw(st.integers(0, 3))):
        x1, x2 = _half_steps(draw, width, min_size=0)
        y1, y2 = _half_steps(draw, height, min_size=0)
        boxes.append([x1, y1, x2, y2])
        labels.append(draw(st.integers(0, num_classes - 1)))
    scores = [draw(st.sampled_from(SCORES)) for _ in boxes]
    return dict(bboxes=np.array(boxes, dtype=np.float32).reshape(-1, 4),
                scores=np.array(scores, dtype=np.float32),
                labels=np.array(labels, dtype=np.int64))


def _flood(img: Dict[str, Any], count: int, num_classes: int,
           seed: int) -> Dict[str, np.ndarray]:
    """``count`` random boxes on ``img`` (half-pixel grid), scores from :data:`SCORES`."""
    rng = np.random.default_rng(seed)
    xs = np.sort(rng.integers(0, 2 * img['width'] + 1, size=(count, 2)), axis=1) / 2
    ys = np.sort(rng.integers(0, 2 * img['height'] + 1, size=(count, 2)), axis=1) / 2
    return dict(bboxes=np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]],
                                axis=1).astype(np.float32),
                scores=rng.choice(np.array(SCORES, dtype=np.float32), size=count),
                labels=rng.integers(0, num_classes, size=count).astype(np.int64))


def data_samples(case: EvalCase) -> List[Dict[str, Any]]:
    """What a detector's test step hands the metric, one per evaluated image (in file order);
    masks (each detection's box) where ``segm`` is evaluated."""
    samples = []
    for img in case.gt['images']:
        if img['id'] not in case.evaluated:
            continue
        d = case.dets[img['id']]
        pred = dict(bboxes=torch.from_numpy(d['bboxes']), scores=torch.from_numpy(d['scores']),
                    labels=torch.from_numpy(d['labels']))
        if 'segm' in case.iou_types:
            pred['masks'] = torch.from_numpy(_box_masks(d['bboxes'], img['height'],
                                                        img['width']))
        samples.append(dict(img_id=img['id'], ori_shape=(img['height'], img['width']),
                            pred_instances=pred))
    return samples


def results_json(case: EvalCase, iou_type: str) -> List[Dict[str, Any]]:
    """The detections on the evaluated images in the COCO results format, as the reference
    evaluators read them (written here, independently of mmdet's ``results2json``)."""
    cat_ids = [c['id'] for c in case.gt['categories']]
    out = []
    for img in case.gt['images']:
        if img['id'] not in case.evaluated:
            continue
        d = case.dets[img['id']]
        masks = _box_masks(d['bboxes'], img['height'], img['width']) \
            if iou_type == 'segm' else None
        for k in range(len(d['scores'])):
            x1, y1, x2, y2 = (float(v) for v in d['bboxes'][k])
            item = dict(image_id=img['id'], category_id=cat_ids[int(d['labels'][k])],
                        bbox=[x1, y1, x2 - x1, y2 - y1], score=float(d['scores'][k]))
            if masks is not None:
                rle = mask_utils.encode(np.asfortranarray(masks[k].astype(np.uint8)))
                item['segmentation'] = dict(size=rle['size'], counts=rle['counts'].decode())
            out.append(item)
    return out


# --- Broken files ---------------------------------------------------------------------------

#: Faults of an annotation file, and the field the error must name.
FILE_FAULTS = {
    'repeated annotation id': '"id"',
    'annotation id not an integer': '"id"',
    'annotation without id': '"id"',
}
#: Faults the checked datasets find besides (the annotation checks).
DATASET_FAULTS = dict(
    FILE_FAULTS, **{
        'box of non-positive width': '"bbox"',
        'box outside its image': '"bbox"',
        'unknown category_id': '"category_id"',
        'unknown image_id': '"image_id"',
        'repeated image id': 'image id',
    })
#: Faults of an LVIS file besides.
LVIS_FAULTS = {
    'category without frequency': '"frequency"',
    'image without neg_category_ids': '"neg_category_ids"',
}


@st.composite
def broken_files(draw, faults: Sequence[str], lvis: bool = False) -> Tuple[EvalCase, str]:
    """A valid case whose annotation file then gets one of ``faults`` (with at least one
    annotation, so that every fault applies).

    Returns:
        tuple: the broken case and the fault's name.
    """
    case = draw(eval_cases(lvis=lvis, min_annotations=1))
    fault = draw(st.sampled_from(sorted(faults)))
    gt = case.gt
    anns = gt['annotations']
    ann = draw(st.sampled_from(anns))
    if fault == 'repeated annotation id':
        if len(anns) == 1:
            anns.append(copy.deepcopy(ann))
        else:
            ann['id'] = next(a['id'] for a in anns if a is not ann)
    elif fault == 'annotation id not an integer':
        ann['id'] = draw(st.sampled_from((str(ann['id']), float(ann['id']) + 0.5, None)))
    elif fault == 'annotation without id':
        del ann['id']
    elif fault == 'box of non-positive width':
        ann['bbox'][2] = -draw(st.sampled_from((0.0, 0.5, 3.0)))
    elif fault == 'box outside its image':
        img = next(i for i in gt['images'] if i['id'] == ann['image_id'])
        ann['bbox'][0] = img['width'] + draw(st.sampled_from((0.0, 0.5, 10.0)))
    elif fault == 'unknown category_id':
        ann['category_id'] = max(c['id'] for c in gt['categories']) + 1
    elif fault == 'unknown image_id':
        ann['image_id'] = max(i['id'] for i in gt['images']) + 1
    elif fault == 'repeated image id':
        gt['images'].append(copy.deepcopy(draw(st.sampled_from(gt['images']))))
    elif fault == 'category without frequency':
        cat = draw(st.sampled_from(gt['categories']))
        for key in ('frequency', 'image_count'):
            cat.pop(key, None)
    elif fault == 'image without neg_category_ids':
        draw(st.sampled_from(gt['images'])).pop('neg_category_ids')
    else:
        raise ValueError(f'unknown fault {fault!r}')
    return case, fault
