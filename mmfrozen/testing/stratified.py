"""Hand-made LVIS/COCO ground truth and predictions, and the references, for the tests of the
stratified metrics (LVIS, COCO, VOC, the shared loop, the distributed run), and the tools of
their drop-in contract with MMDetection's metrics (the same scenario through both).

The ground truth has categories in every bin and frequency group (one without training
annotations), non-contiguous ids listed out of order, negative and not-exhaustive category
lists; the predictions mix hits, misses and false positives.
"""
import contextlib
import copy
import io
import json
import math
import os
import os.path as osp
import uuid
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils
import torch
from lvis import LVISEval
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import mmfrozen  # noqa: F401  applies the lvis-api NumPy fix, registers the metrics
from mmdet.registry import METRICS
from mmengine.logging import MMLogger

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


def renumbered(gt: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of an annotation file's content as the stratified metrics and the checked
    datasets evaluate it: where any annotation id is 0 or below, the annotations numbered
    ``1..N`` in file order (the documented rule, written here independently of
    :mod:`mmfrozen.evaluation.annotation_ids`)."""
    out = copy.deepcopy(gt)
    if any(ann['id'] <= 0 for ann in out['annotations']):
        for number, ann in enumerate(out['annotations'], start=1):
            ann['id'] = number
    return out


def write_renumbered(path: str, out_path: str) -> str:
    """:func:`renumbered` of the annotation file ``path``, written to ``out_path``."""
    with open(path) as f:
        data = json.load(f)
    with open(out_path, 'w') as f:
        json.dump(renumbered(data), f)
    return out_path


def write_numbered_from_zero(path: str, out_path: str) -> str:
    """The annotation file ``path`` with its annotations numbered ``0..N-1`` in file order (as
    MMDetection's Pascal VOC converter numbers them), written to ``out_path``."""
    with open(path) as f:
        data = json.load(f)
    for number, ann in enumerate(data['annotations']):
        ann['id'] = number
    with open(out_path, 'w') as f:
        json.dump(data, f)
    return out_path


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


# --- Drop-in contract: our metric and MMDetection's on the same inputs --------------------

#: The one-image scenario of MMDetection's metric tests: class names, boxes (xyxy) and labels.
ONE_IMAGE_CLASSES = ['car', 'bicycle']
ONE_IMAGE_BOXES = [[50, 60, 70, 80], [100, 120, 130, 150], [150, 160, 190, 200],
                   [250, 260, 350, 360]]
ONE_IMAGE_LABELS = [0, 0, 1, 0]


def _corner_rle() -> Dict[str, Any]:
    mask = np.zeros((10, 10), order='F', dtype=np.uint8)
    mask[:5, :5] = 1
    rle = mask_utils.encode(mask)
    return dict(size=rle['size'], counts=rle['counts'].decode())


def write_one_image_file(path: str, lvis: bool = False) -> str:
    """One 640x640 image holding :data:`ONE_IMAGE_BOXES` as ground truth, each with a 10x10
    RLE mask, as MMDetection's metric tests set it up.

    Args:
        path: the JSON file to write.
        lvis: LVIS format: category ids from 1, ``frequency`` and ``image_count`` (no
            ``instance_count``: no training counts), the images' federated fields.

    Returns:
        str: ``path``.
    """
    offset = 1 if lvis else 0
    image = dict(id=0, width=640, height=640, file_name='0.jpg')
    if lvis:
        image.update(neg_category_ids=[], not_exhaustive_category_ids=[])
    anns = []
    for k, ((x1, y1, x2, y2), label) in enumerate(zip(ONE_IMAGE_BOXES, ONE_IMAGE_LABELS)):
        anns.append(dict(id=k + 1, image_id=0, category_id=label + offset,
                         bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                         iscrowd=0, segmentation=_corner_rle()))
    cats = [dict(id=k + offset, name=name) for k, name in enumerate(ONE_IMAGE_CLASSES)]
    if lvis:
        cats[0].update(frequency='c', image_count=64)
        cats[1].update(frequency='f', image_count=364)
    with open(path, 'w') as f:
        json.dump(dict(images=[image], annotations=anns, categories=cats), f)
    return path


def one_image_sample(empty: bool = False, with_instances: bool = False) -> Dict[str, Any]:
    """What a detector hands the metric for that image: every box found (or none); integer
    boxes, as in MMDetection's tests.

    Args:
        empty: no detections at all.
        with_instances: add the image's ground truth as a data set gives it (``instances``),
            for a metric without ``ann_file``.
    """
    n = 0 if empty else len(ONE_IMAGE_BOXES)
    masks = np.zeros((n, 10, 10), dtype=np.uint8)
    masks[:, :5, :5] = 1
    sample = dict(
        img_id=0,
        ori_shape=(640, 640),
        pred_instances=dict(
            bboxes=torch.tensor(ONE_IMAGE_BOXES[:n], dtype=torch.int64).reshape(-1, 4),
            scores=torch.tensor([1.0, 0.98, 0.96, 0.95][:n], dtype=torch.float64),
            labels=torch.tensor(ONE_IMAGE_LABELS[:n], dtype=torch.int64),
            masks=torch.from_numpy(masks)))
    if with_instances:
        sample['instances'] = [
            dict(bbox_label=label, bbox=box, ignore_flag=0, mask=_corner_rle())
            for box, label in zip(ONE_IMAGE_BOXES, ONE_IMAGE_LABELS)
        ]
    return sample


class Outcome(NamedTuple):
    """What one metric did with a scenario."""
    results: Optional[dict]  # evaluate()'s metrics; None if it raised
    error: Optional[BaseException]  # what it raised (building or evaluating)
    files: Dict[str, Any]  # the JSON files it wrote under its outfile_prefix, loaded
    log: str  # what it logged


def _written(folder: str) -> Dict[str, Any]:
    files = {}
    if osp.isdir(folder):
        for name in sorted(os.listdir(folder)):
            with open(osp.join(folder, name)) as f:
                content = json.load(f)
            if isinstance(content, dict):
                content.pop('info', None)  # a converted ground truth's creation time
            files[name] = content
    return files


def evaluate_metric(cfg: Dict[str, Any], samples: Sequence[Dict[str, Any]],
                    classes: Sequence[str], work_dir: str) -> Outcome:
    """Build a metric from ``cfg``, feed it ``samples`` and evaluate, catching what it raises.

    ``outfile_prefix='<name>'`` in ``cfg`` is put under ``<work_dir>/files/``; the metric logs
    to ``<work_dir>/log.txt``.
    """
    cfg = copy.deepcopy(dict(cfg))
    files_dir = osp.join(work_dir, 'files')
    os.makedirs(files_dir, exist_ok=True)
    if cfg.get('outfile_prefix'):
        cfg['outfile_prefix'] = osp.join(files_dir, cfg['outfile_prefix'])
    log_file = osp.join(work_dir, 'log.txt')
    MMLogger.get_instance(f'contract-{uuid.uuid4().hex}', log_file=log_file)
    results, error = None, None
    try:
        metric = METRICS.build(cfg)
        metric.dataset_meta = dict(classes=list(classes))
        metric.process({}, copy.deepcopy(list(samples)))
        results = metric.evaluate(len(samples))
    except Exception as err:  # noqa: BLE001  compared with the parent's
        error = err
    with open(log_file) as f:
        log = f.read()
    return Outcome(results, error, _written(files_dir), log)


def evaluate_both(parent_type: str, ours_type: str, samples: Sequence[Dict[str, Any]],
                  classes: Sequence[str], work_dir: str, ours: Optional[Dict[str, Any]] = None,
                  **kwargs: Any) -> Tuple[Outcome, Outcome]:
    """MMDetection's metric and ours, on the same samples and arguments (``ours`` adds ours,
    e.g. the backend; the report goes to ``<work_dir>/ours/report``)."""
    parent = evaluate_metric(dict(type=parent_type, **kwargs), samples, classes,
                             osp.join(work_dir, 'parent'))
    ours_cfg = dict(type=ours_type, out_dir=osp.join(work_dir, 'ours', 'report'), **kwargs)
    ours_cfg.update(ours or {})
    return parent, evaluate_metric(ours_cfg, samples, classes, osp.join(work_dir, 'ours'))


def same_value(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN."""
    both_nan = all(isinstance(v, (float, np.floating)) and math.isnan(v) for v in (a, b))
    return both_nan or a == b


def assert_drop_in(parent: Outcome, ours: Outcome, same_message: bool = True) -> None:
    """Ours did what the parent did: the same error (type, and message), or every key and
    value the parent returned (ours may add keys), and the same files with the same content.
    """
    if parent.error is not None:
        assert type(ours.error) is type(parent.error), (parent.error, ours.error)
        if same_message:
            assert str(ours.error) == str(parent.error), (parent.error, ours.error)
        return
    assert ours.error is None, ours.error
    missing = {k: v for k, v in parent.results.items() if k not in ours.results}
    assert not missing, f'keys the parent returns that ours does not: {missing}'
    different = {k: (v, ours.results[k]) for k, v in parent.results.items()
                 if not same_value(v, ours.results[k])}
    assert not different, f'(parent, ours) differ: {different}'
    assert list(ours.files) == list(parent.files)
    for name, content in parent.files.items():
        assert ours.files[name] == content, name


def log_lines(log: str, marker: str) -> List[str]:
    """The log's lines holding ``marker``, without their time stamps."""
    return [line[line.index(marker):] for line in log.splitlines() if marker in line]
