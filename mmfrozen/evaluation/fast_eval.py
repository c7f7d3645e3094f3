"""The default backend: faster-coco-eval's C++ matching and accumulation, by chunks of classes.

``lvis_eval_fast`` gives lvis-api's ``LVISEval`` numbers and ``coco_eval_fast``
pycocotools' ``COCOeval`` numbers (the tests compare every metric and every class's precision
with them), in a fraction of the time and memory:

- AP is computed per class, so the classes are evaluated in chunks, each chunk's ground truth
  and detections turned into the dicts faster-coco-eval reads only while it runs. This bounds
  memory (faster-coco-eval on all of LVIS val at once needs more than 21 GB, its issue #57) and
  lets ``nproc`` worker processes share the chunks.
- lvis-api's own rules are applied first, on arrays: at most 300 detections per image (by a
  stable sort on score; faster-coco-eval caps 300 per image *and class*), detections and
  ground truth of area 0 left out (lvis-api's ``get_ann_ids`` keeps ``0 < area < inf``), and
  a detection box's area ``w * h`` for the area ranges, for ``segm`` too when the results
  carry boxes (lvis-api's ``LVISResults`` does so).
- Images and classes are handed to faster-coco-eval by their positions in id order, not by
  their ids (any integer is a valid id; faster-coco-eval refuses negative image ids), and the
  annotation ids it reads are the metric's, renumbered where any is 0 or below
  (:mod:`~mmfrozen.evaluation.annotation_ids`).
- The headline numbers are lvis-api's ``summarize`` on the assembled precision and recall
  arrays, with the same index expressions, and pycocotools' own ``summarize`` on them
  (:mod:`~mmfrozen.evaluation.coco_summary`, which also reads off other IoU thresholds and
  detection limits, e.g. mmdet's, evaluated in the same run).
"""
import multiprocessing
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils

from .coco_summary import EvalArrays, evaluation_grid
from .detections import Detections
from .reference_eval import (LVIS_HEADLINE, ReferenceResult, check_image_ids, coco_result,
                             no_value_as_nan)

FAST_BACKEND = 'faster-coco-eval'
LVIS_MAX_DETS = 300
AREA_RANGES = OrderedDict(
    all=[0**2, 1e5**2], small=[0**2, 32**2], medium=[32**2, 96**2], large=[96**2, 1e5**2])
IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
#: lvis-api's ``summarize()``, in its order: key, AP (else AR), IoU threshold (None: all),
#: area range, frequency group (None: all classes).
LVIS_SUMMARY = (
    ('AP', True, None, 'all', None),
    ('AP50', True, 0.5, 'all', None),
    ('AP75', True, 0.75, 'all', None),
    ('APs', True, None, 'small', None),
    ('APm', True, None, 'medium', None),
    ('APl', True, None, 'large', None),
    ('APr', True, None, 'all', 'r'),
    ('APc', True, None, 'all', 'c'),
    ('APf', True, None, 'all', 'f'),
    (f'AR@{LVIS_MAX_DETS}', False, None, 'all', None),
    (f'ARs@{LVIS_MAX_DETS}', False, None, 'small', None),
    (f'ARm@{LVIS_MAX_DETS}', False, None, 'medium', None),
    (f'ARl@{LVIS_MAX_DETS}', False, None, 'large', None),
)
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
# Chunk limits: detections, and image x class pairs (faster-coco-eval visits every pair of a
# chunk; small chunks of the classes present in few images are the fastest, measured).
MAX_CHUNK_DETS = 200_000
MAX_CHUNK_PAIRS = 2_000

# progress(done, total): called as chunks finish
Progress = Callable[[int, int], None]
# What a forked worker reads: set in the parent before the pool starts.
_SHARED: Dict[str, Any] = {}


def _detection_area(dets: Detections) -> np.ndarray:
    if dets.bbox is not None:
        return dets.bbox[:, 2] * dets.bbox[:, 3]
    return np.asarray(mask_utils.area(dets.segm), dtype=np.float64)


def _chunks(gt_keys: np.ndarray, dt_keys: np.ndarray, cat_ids: Sequence[int], num_cats: int,
            max_dets: int, max_pairs: int) -> List[Tuple[List[int], List[int]]]:
    """Consecutive groups of ``cat_ids`` and the images where they have ground truth or
    detections.

    faster-coco-eval visits every image x class pair of its ``imgIds`` x ``catIds``; an image
    with neither ground truth nor detections of a class adds nothing to that class's AP
    (lvis-api and pycocotools skip it too), so each chunk lists only its own images. A chunk
    holds at most ``max_dets`` detections and ``max_pairs`` pairs (a class with more is alone).

    Args:
        gt_keys: ``image * num_cats + class`` of each ground-truth annotation.
        dt_keys: the same for each detection.
        cat_ids: the classes, in order.
        num_cats: the key's multiplier.
        max_dets: detections per chunk at most.
        max_pairs: image x class pairs per chunk at most.

    Returns:
        list: ``(cat_ids, img_ids)`` per chunk.
    """
    dets_per_cat = dict(zip(*np.unique(dt_keys % num_cats, return_counts=True)))
    pairs = np.unique(np.concatenate([gt_keys, dt_keys]))
    pair_cats, pair_imgs = pairs % num_cats, pairs // num_cats
    order = np.argsort(pair_cats, kind='stable')
    pair_cats, pair_imgs = pair_cats[order], pair_imgs[order]
    bounds = np.searchsorted(pair_cats, np.asarray(cat_ids), side='left'), \
        np.searchsorted(pair_cats, np.asarray(cat_ids), side='right')
    chunks: List[Tuple[List[int], set]] = [([], set())]
    total = 0
    for k, cat_id in enumerate(cat_ids):
        imgs = pair_imgs[bounds[0][k]:bounds[1][k]].tolist()
        n = int(dets_per_cat.get(cat_id, 0))
        cats, union = chunks[-1]
        if cats and (total + n > max_dets or (len(cats) + 1) * len(union.union(imgs)) > max_pairs):
            chunks.append(([], set()))
            total = 0
        chunks[-1][0].append(cat_id)
        chunks[-1][1].update(imgs)
        total += n
    return [(cats, sorted(union)) for cats, union in chunks]


def _dt_dicts(dets: Detections, index: np.ndarray, area: np.ndarray,
              iou_type: str) -> List[Dict[str, Any]]:
    """COCO-format dicts of the detections at ``index``; ids are their position + 1."""
    out = [
        dict(id=i + 1, image_id=img, category_id=cat, score=score, area=a, iscrowd=0)
        for i, img, cat, score, a in zip(index.tolist(), dets.image_id[index].tolist(
        ), dets.category_id[index].tolist(), dets.score[index].tolist(), area[index].tolist())
    ]
    if dets.bbox is not None:
        for d, box in zip(out, dets.bbox[index].tolist()):
            d['bbox'] = box
    if iou_type == 'segm':
        for d, i in zip(out, index.tolist()):
            d['segmentation'] = dets.segm[i]
    return out


def _evaluate_chunk(number: int) -> Tuple[int, np.ndarray, np.ndarray]:
    """Evaluate one chunk of classes with faster-coco-eval (in a worker or in-process).

    Returns:
        tuple: the chunk's number, precision (T, R, K, A, M) and recall (T, K, A, M).
    """
    from faster_coco_eval import COCO as FastCOCO
    from faster_coco_eval import COCOeval_faster

    s = _SHARED
    cat_ids, img_ids = s['chunks'][number]
    cats = set(cat_ids)
    img_pos, cat_pos = s['img_pos'], s['cat_pos']
    # copies: faster-coco-eval writes into the annotation dicts ('ignore', 'rle')
    gt_anns = [
        dict(ann, image_id=img_pos[ann['image_id']], category_id=cat_pos[ann['category_id']],
             **s['gt_override']) for ann in s['gt_anns_by_chunk'][number]
    ]
    dt_anns = _dt_dicts(s['dets'], s['dt_index_by_chunk'][number], s['dt_area'], s['iou_type'])
    images = [s['images'][i] for i in img_ids]
    categories = [c for c in s['categories'] if c['id'] in cats]
    gt = FastCOCO(dict(images=images, annotations=gt_anns, categories=categories))
    dt = FastCOCO(dict(images=images, annotations=dt_anns, categories=categories))
    evaluator = COCOeval_faster(
        gt,
        dt,
        s['iou_type'],
        lvis_style=s['lvis_style'],
        print_function=lambda *args, **kwargs: None)
    evaluator.params.imgIds = list(img_ids)
    evaluator.params.catIds = list(cat_ids)
    evaluator.params.maxDets = list(s['max_dets'])
    evaluator.params.iouThrs = s['iou_thrs']
    evaluator.evaluate()
    evaluator.accumulate()
    return (number, np.asarray(evaluator.eval['precision']), np.asarray(evaluator.eval['recall']))


def _run_chunks(numbers: List[int], nproc: int,
                progress: Optional[Progress]) -> List[Tuple[int, Any, Any]]:
    """Evaluate the chunks ``numbers``, in ``nproc`` forked workers when more than one.

    ``progress(done, total)`` is told each finished chunk's work (its detections, at least 1).
    """
    sizes = [max(1, len(index)) for index in _SHARED['dt_index_by_chunk']]
    total = sum(sizes[n] for n in numbers)
    out = []
    if nproc > 1 and len(numbers) > 1 and 'fork' in multiprocessing.get_all_start_methods():
        # fork: the workers read the ground truth and detections without copying them.
        with multiprocessing.get_context('fork').Pool(min(nproc, len(numbers))) as pool:
            for result in pool.imap_unordered(_evaluate_chunk, numbers):
                out.append(result)
                if progress:
                    progress(sizes[result[0]], total)
    else:
        for number in numbers:
            out.append(_evaluate_chunk(number))
            if progress:
                progress(sizes[number], total)
    return out


def _assemble(chunks: List[Tuple[List[int], List[int]]], results, cat_ids: List[int],
              num_thrs: int, num_max_dets: int) -> Tuple[np.ndarray, np.ndarray]:
    """Precision (T, R, K, A, M) and recall (T, K, A, M) of all classes, in ``cat_ids`` order."""
    position = {c: k for k, c in enumerate(cat_ids)}
    precision = -np.ones(
        (num_thrs, len(REC_THRS), len(cat_ids), len(AREA_RANGES), num_max_dets))
    recall = -np.ones((num_thrs, len(cat_ids), len(AREA_RANGES), num_max_dets))
    for number, chunk_precision, chunk_recall in results:
        idx = [position[c] for c in sorted(chunks[number][0])]  # faster-coco-eval sorts
        precision[:, :, idx] = chunk_precision
        recall[:, idx] = chunk_recall
    return precision, recall


def _mean_valid(s: np.ndarray) -> float:
    return -1 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))


def _summarize(precision: np.ndarray,
               recall: np.ndarray,
               ap: bool,
               iou_thr=None,
               area_rng: str = 'all',
               cat_index=None) -> float:
    """lvis-api's ``_summarize`` (one max-detections setting)."""
    aidx = [list(AREA_RANGES).index(area_rng)]
    s = precision if ap else recall
    if iou_thr is not None:
        s = s[np.where(iou_thr == IOU_THRS)[0]]
    if ap:
        s = s[:, :, cat_index, aidx] if cat_index is not None else s[:, :, :, aidx]
    else:
        s = s[:, :, aidx]
    return _mean_valid(s)


def _summary_line(ap: bool,
                  value: float,
                  iou_thr: Optional[float] = None,
                  area: str = 'all',
                  group: str = 'all') -> str:
    """One line of lvis-api's ``print_results``."""
    title, kind = ('Average Precision', '(AP)') if ap else ('Average Recall', '(AR)')
    iou = f'{IOU_THRS[0]:0.2f}:{IOU_THRS[-1]:0.2f}' if iou_thr is None else f'{iou_thr:0.2f}'
    return (f' {title:<18} {kind} @[ IoU={iou:<9} | area={area:>6s} | '
            f'maxDets={LVIS_MAX_DETS:>3d} catIds={group:>3s}] = {value:0.3f}')


def _share(**kwargs: Any) -> None:
    _SHARED.clear()
    _SHARED.update(kwargs)


class _Positions:
    """The evaluated images' and classes' ids as positions ``1..n`` in ascending id order.

    faster-coco-eval takes no negative image ids (its C++ mask code refuses them) and the
    chunking keys ``image * classes + class`` need non-negative, bounded numbers; any integer
    is a valid COCO id. Positions keep the ids' order, so every sort (images, classes) and so
    every number is the same as with the ids themselves.

    Args:
        img_ids: the evaluated images' ids.
        cat_ids: the evaluated classes' ids.
    """

    def __init__(self, img_ids: Sequence[int], cat_ids: Sequence[int]) -> None:
        self.img_ids = np.asarray(sorted(img_ids), dtype=np.int64)
        self.cat_ids = np.asarray(sorted(cat_ids), dtype=np.int64)
        self.num_cats = len(self.cat_ids) + 1  # the keys' multiplier

    def images(self, ids: np.ndarray) -> np.ndarray:
        """Positions of evaluated image ids (others: meaningless)."""
        return np.searchsorted(self.img_ids, np.asarray(ids, dtype=np.int64)) + 1

    def cats(self, ids: np.ndarray) -> np.ndarray:
        """Positions of evaluated class ids (others: meaningless)."""
        return np.searchsorted(self.cat_ids, np.asarray(ids, dtype=np.int64)) + 1

    def keys(self, img_ids: np.ndarray, cat_ids: np.ndarray) -> np.ndarray:
        """``image position * num_cats + class position`` of each (image, class) pair."""
        return self.images(img_ids) * self.num_cats + self.cats(cat_ids)


def _image_by_position(img: Dict[str, Any], img_pos: Dict[int, int],
                       cat_pos: Dict[int, int]) -> Dict[str, Any]:
    """A copy of an image's dict with its id and LVIS's category lists by position."""
    out = dict(img, id=img_pos[img['id']])
    for key in ('neg_category_ids', 'not_exhaustive_category_ids'):
        if key in img:
            out[key] = [cat_pos[c] for c in img[key] if c in cat_pos]
    return out


def _prepare_and_run(gt_anns: List[Dict[str, Any]], dets: Detections, dt_keep: np.ndarray,
                     dt_area: np.ndarray, images: List[Dict[str, Any]],
                     categories: List[Dict[str, Any]], pos: _Positions, iou_type: str,
                     lvis_style: bool, max_dets: List[int], iou_thrs: np.ndarray,
                     gt_override: Dict[str, Any], nproc: int, progress: Optional[Progress],
                     chunk_dets: int,
                     chunk_pairs: int) -> Tuple[List[Tuple[List[int], List[int]]], list]:
    """Split the classes into chunks and evaluate them with faster-coco-eval.

    faster-coco-eval sees the images and classes by their positions (:class:`_Positions`);
    the chunks returned name them by their ids.

    Args:
        gt_anns: the ground truth to evaluate (already filtered to the images and classes).
        dets: all detections; ``dt_keep`` indexes those to evaluate.
        dt_area: every detection's area for the area ranges.
        images: the evaluated images' dicts.
        categories: the evaluated classes' dicts, in ascending id order.
        pos: the evaluated images' and classes' positions.
        iou_type, lvis_style, max_dets, iou_thrs: faster-coco-eval's settings.
        gt_override: fields set on (copies of) the ground truth, e.g. ``iscrowd=0``.
        nproc, progress, chunk_dets, chunk_pairs: see :func:`lvis_eval_fast`.

    Returns:
        tuple: the chunks (class ids, image ids) and each evaluated chunk's
        ``(number, precision, recall)``.
    """
    num_cats = pos.num_cats
    gt_cat = pos.cats(np.array([a['category_id'] for a in gt_anns], dtype=np.int64))
    gt_keys = pos.images(np.array([a['image_id'] for a in gt_anns],
                                  dtype=np.int64)) * num_cats + gt_cat
    # the detections by position (those not kept are never read)
    dt_img = np.zeros(len(dets), dtype=np.int64)
    dt_cat = np.zeros(len(dets), dtype=np.int64)
    dt_img[dt_keep] = pos.images(dets.image_id[dt_keep])
    dt_cat[dt_keep] = pos.cats(dets.category_id[dt_keep])
    dt_keys = dt_img[dt_keep] * num_cats + dt_cat[dt_keep]
    chunks = _chunks(gt_keys, dt_keys, list(range(1, num_cats)), num_cats, chunk_dets,
                     chunk_pairs)
    chunk_of = np.full(num_cats, -1, dtype=np.int64)
    for n, (cats, _) in enumerate(chunks):
        chunk_of[cats] = n
    gt_chunk = chunk_of[gt_cat]
    dt_chunk = chunk_of[dt_cat[dt_keep]]
    gt_by_chunk: List[List[Dict[str, Any]]] = [[] for _ in chunks]
    for ann, n in zip(gt_anns, gt_chunk.tolist()):
        gt_by_chunk[n].append(ann)
    dt_by_chunk = [dt_keep[dt_chunk == n] for n in range(len(chunks))]
    img_pos = dict(zip(pos.img_ids.tolist(), range(1, len(pos.img_ids) + 1)))
    cat_pos = dict(zip(pos.cat_ids.tolist(), range(1, num_cats)))
    _share(
        chunks=chunks,
        gt_anns_by_chunk=gt_by_chunk,
        dt_index_by_chunk=dt_by_chunk,
        dets=Detections(dt_img, dt_cat, dets.score, dets.bbox, dets.segm),
        dt_area=dt_area,
        images={img_pos[img['id']]: _image_by_position(img, img_pos, cat_pos)
                for img in images},
        categories=[dict(cat, id=cat_pos[cat['id']]) for cat in categories],
        img_pos=img_pos,
        cat_pos=cat_pos,
        iou_type=iou_type,
        lvis_style=lvis_style,
        max_dets=max_dets,
        iou_thrs=iou_thrs,
        gt_override=gt_override)
    try:
        # a chunk without images has nothing to evaluate: its precision stays -1
        results = _run_chunks([n for n, (_, imgs) in enumerate(chunks) if imgs], nproc, progress)
    finally:
        _SHARED.clear()
    ids = [([int(pos.cat_ids[c - 1]) for c in cats], [int(pos.img_ids[i - 1]) for i in imgs])
           for cats, imgs in chunks]
    return ids, results


def lvis_eval_fast(gt: Any,
                   dets: Detections,
                   iou_type: str,
                   img_ids: Sequence[int],
                   gt_source: str = 'LVIS ground truth',
                   pred_source: str = '',
                   nproc: int = 1,
                   progress: Optional[Progress] = None,
                   chunk_dets: int = MAX_CHUNK_DETS,
                   chunk_pairs: int = MAX_CHUNK_PAIRS) -> ReferenceResult:
    """lvis-api's ``LVISEval`` on ``img_ids``, computed by faster-coco-eval in chunks.

    Args:
        gt: the ground truth (an lvis-api ``LVIS``; its categories need ``frequency``).
        dets: the detections.
        iou_type: ``'bbox'`` or ``'segm'``.
        img_ids: the evaluated images: only these count.
        gt_source: the ground-truth file, for messages.
        pred_source: where the predictions come from, for messages.
        nproc: worker processes sharing the chunks.
        progress: ``progress(done, total)`` as chunks finish (work in detections).
        chunk_dets: detections per chunk at most (a class with more is a chunk alone).
        chunk_pairs: image x class pairs per chunk at most.

    Returns:
        ReferenceResult: lvis-api's headline metrics, precision array and summary text.
    """
    check_image_ids(img_ids, gt.get_img_ids(), gt_source, pred_source or 'Evaluation')
    img_ids = sorted(set(int(i) for i in img_ids))
    cat_ids = sorted(gt.get_cat_ids())
    dets.check(cat_ids, img_ids, gt_source, pred_source)

    dt_area_all = _detection_area(dets)
    top = dets.top_per_image(LVIS_MAX_DETS)
    img_set = np.asarray(img_ids, dtype=np.int64)
    # lvis-api's get_ann_ids keeps 0 < area < inf, for ground truth and detections.
    gt_anns = [a for i in img_ids for a in gt.img_ann_map[i] if 0 < a['area'] < float('inf')]
    pos = _Positions(img_ids, cat_ids)
    images = gt.load_imgs(img_ids)
    # Federated rule: a detection counts only for classes known present or absent (negative).
    known = [pos.keys([a['image_id'] for a in gt_anns], [a['category_id'] for a in gt_anns])]
    cat_set = set(cat_ids)
    for img in images:
        negative = [c for c in img.get('neg_category_ids', []) if c in cat_set]
        known.append(pos.keys([img['id']] * len(negative), negative))
    top_area = dt_area_all[top]
    keys = pos.keys(dets.image_id[top], dets.category_id[top])
    keep = (
        np.isin(dets.image_id[top], img_set) & (top_area > 0) & (top_area < np.inf)
        & np.isin(keys, np.concatenate(known)))
    dt_keep = top[keep]

    categories = gt.load_cats(cat_ids)
    chunks, results = _prepare_and_run(gt_anns, dets, dt_keep, dt_area_all, images,
                                       categories, pos, iou_type, True, [LVIS_MAX_DETS],
                                       IOU_THRS, dict(iscrowd=0), nproc, progress, chunk_dets,
                                       chunk_pairs)
    precision, recall = _assemble(chunks, results, cat_ids, len(IOU_THRS), 1)
    precision, recall = precision[..., 0], recall[..., 0]

    freq = [c['frequency'] for c in categories]
    groups = {g: [k for k, f in enumerate(freq) if f == g] for g in ('r', 'c', 'f')}
    values: Dict[str, float] = OrderedDict()
    lines = []
    for key, ap, iou_thr, area, group in LVIS_SUMMARY:
        values[key] = _summarize(
            precision,
            recall,
            ap,
            iou_thr=iou_thr,
            area_rng=area,
            cat_index=None if group is None else groups[group])
        lines.append(
            _summary_line(ap, values[key], iou_thr, 'all' if area == 'all' else area[0], group
                          or 'all'))
    return ReferenceResult(
        iou_type=iou_type,
        headline={k: no_value_as_nan(values[k])
                  for k in LVIS_HEADLINE},
        cat_ids=cat_ids,
        precision=precision,
        iou_thrs=IOU_THRS.copy(),
        summary='\n'.join(lines) + '\n',
        stats=dict(values))


def coco_eval_fast(gt: Any,
                   dets: Detections,
                   iou_type: str,
                   img_ids: Sequence[int],
                   gt_source: str = 'COCO ground truth',
                   pred_source: str = '',
                   cat_ids: Optional[Sequence[int]] = None,
                   nproc: int = 1,
                   progress: Optional[Progress] = None,
                   chunk_dets: int = MAX_CHUNK_DETS,
                   chunk_pairs: int = MAX_CHUNK_PAIRS,
                   iou_thrs: Optional[Sequence[float]] = None,
                   max_dets: Optional[Sequence[int]] = None) -> ReferenceResult:
    """pycocotools' ``COCOeval`` on ``img_ids``, by faster-coco-eval.

    Args:
        gt: the ground truth (a pycocotools ``COCO``).
        dets: the detections; for ``segm`` the area ranges use the mask area, as
            :func:`~mmfrozen.evaluation.reference_eval.run_coco_eval` does.
        iou_type: ``'bbox'`` or ``'segm'``.
        img_ids: the evaluated images: only these count.
        gt_source: the ground-truth file, for messages.
        pred_source: where the predictions come from, for messages.
        cat_ids: the categories to evaluate (default: all of the ground truth's).
        nproc: worker processes sharing the chunks.
        progress: ``progress(done, total)`` as chunks finish (work in detections).
        chunk_dets: detections per chunk at most.
        chunk_pairs: image x class pairs per chunk at most.
        iou_thrs: IoU thresholds to evaluate besides pycocotools' defaults (e.g. mmdet's).
        max_dets: detection limits to evaluate besides pycocotools' defaults (e.g. mmdet's).

    Returns:
        ReferenceResult: pycocotools' default summary, precision at 100 detections, and the
        whole evaluation's arrays (as :func:`~mmfrozen.evaluation.reference_eval.run_coco_eval`).
    """
    check_image_ids(img_ids, gt.getImgIds(), gt_source, pred_source or 'Evaluation')
    img_ids = sorted(set(int(i) for i in img_ids))
    all_cats = gt.getCatIds()
    cat_ids = sorted(set(int(c) for c in (all_cats if cat_ids is None else cat_ids)))
    dets.check(all_cats, img_ids, gt_source, pred_source)
    if iou_type == 'segm':
        dets = Detections(dets.image_id, dets.category_id, dets.score, None, dets.segm)
    dt_area = _detection_area(dets)
    dt_keep = np.flatnonzero(
        np.isin(dets.image_id, np.asarray(img_ids, dtype=np.int64))
        & np.isin(dets.category_id, np.asarray(cat_ids, dtype=np.int64)))
    cat_set = set(cat_ids)
    gt_anns = [a for i in img_ids for a in gt.imgToAnns[i] if a['category_id'] in cat_set]
    thrs, limits = evaluation_grid(iou_thrs, max_dets)
    chunks, results = _prepare_and_run(gt_anns, dets, dt_keep, dt_area, gt.loadImgs(img_ids),
                                       gt.loadCats(cat_ids), _Positions(img_ids, cat_ids),
                                       iou_type, False, limits,
                                       thrs, {}, nproc, progress, chunk_dets, chunk_pairs)
    precision, recall = _assemble(chunks, results, cat_ids, len(thrs), len(limits))
    return coco_result(iou_type, cat_ids, EvalArrays(precision, recall, thrs, limits))
