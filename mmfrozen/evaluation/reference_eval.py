"""Run the arithmetic of record (lvis-api's LVISEval, pycocotools' COCOeval) on a set of images.

Both are run on exactly the evaluated images (lvis-api reads ``params.img_ids``, pycocotools
``params.imgIds``), with their default parameters, so the numbers equal what they print on
the same files; pycocotools also on the IoU thresholds and detection limits asked for besides
(:mod:`~mmfrozen.evaluation.coco_summary`). Predictions are checked first, so that bad input
names the file and field instead of failing deep inside the reference; no predictions at all
give zeros.
"""
import contextlib
import copy
import io
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from lvis import LVIS, LVISEval, LVISResults
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .coco_summary import (COCO_STATS, DEFAULT_IOU_THRS, DEFAULT_MAX_DETS, EvalArrays,
                           evaluation_grid, summarize)

LVIS_HEADLINE = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')
COCO_HEADLINE = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')


@dataclass
class ReferenceResult:
    """What the reference computed for one IoU type.

    Attributes:
        iou_type: ``'bbox'`` or ``'segm'``.
        headline: AP, AP50, AP75, APs, APm, APl (and APr, APc, APf for LVIS) as the
            reference reports them, except that "no value" (the reference's -1) is NaN.
        cat_ids: category ids in the order of the precision array's class axis.
        precision: (IoU thresholds, recall thresholds, classes, area ranges), for the
            reference's headline max-detections setting.
        iou_thrs: the IoU thresholds of the first axis.
        evaluator: the LVISEval / COCOeval object itself; None for the fast backend.
        summary: the summary lines the reference prints (AP, AP50, ..., AR).
        stats: every value of that summary as the reference gives it (-1: no value), keyed
            as lvis-api's ``results`` (``AR@300``, ...) or as :data:`COCO_STATS`.
        arrays: COCO only: the whole evaluation, for other IoU thresholds and detection
            limits (:func:`~mmfrozen.evaluation.coco_summary.summarize`).
    """
    iou_type: str
    headline: Dict[str, float]
    cat_ids: List[int]
    precision: np.ndarray
    iou_thrs: np.ndarray
    evaluator: Any = None
    summary: str = ''
    stats: Dict[str, float] = field(default_factory=dict)
    arrays: Optional[EvalArrays] = None


def no_value_as_nan(value: float) -> float:
    value = float(value)
    return float('nan') if value == -1 else value


def check_predictions(predictions: Sequence[Dict[str, Any]], gt_cat_ids: Sequence[int],
                      gt_img_ids: Sequence[int], gt_source: str, pred_source: str) -> None:
    """Check COCO-format predictions against the ground truth's categories and images.

    Args:
        predictions: dicts with ``image_id``, ``category_id``, ``score`` and ``bbox`` or
            ``segmentation``.
        gt_cat_ids: the ground truth's category ids.
        gt_img_ids: the images the predictions may refer to.
        gt_source: the ground-truth file, for messages.
        pred_source: where the predictions come from, for messages.

    Raises:
        ValueError: a prediction lacks a field, or names a category or an image that the
            ground truth does not have.
    """
    cats, imgs = set(gt_cat_ids), set(gt_img_ids)
    bad_cats, bad_imgs = set(), set()
    for i, pred in enumerate(predictions):
        for key in ('image_id', 'category_id', 'score'):
            if key not in pred:
                raise ValueError(f'Predictions {pred_source}: item {i} has no field "{key}".')
        if pred['category_id'] not in cats:
            bad_cats.add(pred['category_id'])
        if pred['image_id'] not in imgs:
            bad_imgs.add(pred['image_id'])
    if bad_cats:
        raise ValueError(
            f'Predictions {pred_source}: field "category_id" has ids {sorted(bad_cats)[:10]} '
            f'that are not in the "categories" of the ground truth {gt_source!r}. Do the '
            "model's classes match the annotation file's categories?")
    if bad_imgs:
        raise ValueError(
            f'Predictions {pred_source}: field "image_id" has ids {sorted(bad_imgs)[:10]} '
            f'that are not among the evaluated "images" of the ground truth {gt_source!r}.')


def check_image_ids(img_ids: Sequence[int], gt_img_ids: Sequence[int], gt_source: str,
                    source: str) -> None:
    """Check that every evaluated image is in the ground truth.

    Raises:
        ValueError: naming the ids (field ``img_id``) the ground-truth file lacks.
    """
    missing = sorted(set(img_ids) - set(gt_img_ids))
    if missing:
        raise ValueError(
            f'{source}: {len(missing)} evaluated images (field "img_id", e.g. {missing[:10]}) '
            f'are not in the "images" of the ground truth {gt_source!r}. Is ann_file the '
            "data set's annotation file?")


def _empty_lvis_results(gt: LVIS) -> LVISResults:
    """An LVISResults without detections (lvis-api's constructor fails on an empty list)."""
    results = LVISResults.__new__(LVISResults)
    results.dataset = copy.deepcopy(gt.dataset)
    results.dataset['annotations'] = []
    results.logger = gt.logger
    results._create_index()
    return results


def run_lvis_eval(gt: LVIS,
                  predictions: List[Dict[str, Any]],
                  iou_type: str,
                  img_ids: Sequence[int],
                  gt_source: str = 'LVIS ground truth',
                  pred_source: str = '') -> ReferenceResult:
    """Evaluate predictions on ``img_ids`` with lvis-api's LVISEval.

    Args:
        gt: the ground truth (its categories need ``frequency``; see
            :func:`~mmfrozen.evaluation.annotation_stats.ensure_frequency`).
        predictions: COCO-format predictions (at most 300 per image are kept, as lvis-api).
        iou_type: ``'bbox'`` or ``'segm'``.
        img_ids: the evaluated images: only these count.
        gt_source: the ground-truth file, for messages.
        pred_source: where the predictions come from, for messages.

    Returns:
        ReferenceResult: headline metrics and the precision array.
    """
    check_image_ids(img_ids, gt.get_img_ids(), gt_source, pred_source or 'Evaluation')
    check_predictions(predictions, gt.get_cat_ids(), img_ids, gt_source, pred_source)
    if predictions:
        dt = LVISResults(gt, copy.deepcopy(list(predictions)))
    else:
        dt = _empty_lvis_results(gt)
    lvis_eval = LVISEval(gt, dt, iou_type)
    lvis_eval.params.img_ids = sorted(set(img_ids))
    lvis_eval.run()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        lvis_eval.print_results()
    headline = {k: no_value_as_nan(lvis_eval.results[k]) for k in LVIS_HEADLINE}
    return ReferenceResult(
        iou_type=iou_type,
        headline=headline,
        cat_ids=[int(c) for c in lvis_eval.params.cat_ids],
        precision=lvis_eval.eval['precision'],
        iou_thrs=np.asarray(lvis_eval.params.iou_thrs),
        evaluator=lvis_eval,
        summary=printed.getvalue(),
        stats={k: float(v) for k, v in lvis_eval.results.items()})


def _coco_results(gt: COCO, predictions: List[Dict[str, Any]], iou_type: str) -> COCO:
    """``gt.loadRes`` that also accepts no predictions (pycocotools fails on an empty list)."""
    if predictions:
        preds = copy.deepcopy(list(predictions))
        if iou_type == 'segm':
            # pycocotools takes the box area as the instance area when a box is present:
            # drop it so that APs/APm/APl use the mask area (as mmdet's CocoMetric does).
            for pred in preds:
                pred.pop('bbox', None)
        return gt.loadRes(preds)
    results = COCO()
    results.dataset = dict(
        images=list(gt.dataset['images']),
        categories=copy.deepcopy(gt.dataset['categories']),
        annotations=[])
    results.createIndex()
    return results


def run_coco_eval(gt: COCO,
                  predictions: List[Dict[str, Any]],
                  iou_type: str,
                  img_ids: Sequence[int],
                  gt_source: str = 'COCO ground truth',
                  pred_source: str = '',
                  cat_ids: Optional[Sequence[int]] = None,
                  iou_thrs: Optional[Sequence[float]] = None,
                  max_dets: Optional[Sequence[int]] = None) -> ReferenceResult:
    """Evaluate predictions on ``img_ids`` with pycocotools' COCOeval.

    Args:
        gt: the ground truth.
        predictions: COCO-format predictions.
        iou_type: ``'bbox'`` or ``'segm'``.
        img_ids: the evaluated images: only these count.
        gt_source: the ground-truth file, for messages.
        pred_source: where the predictions come from, for messages.
        cat_ids: the categories to evaluate (default: all of the ground truth's).
        iou_thrs: IoU thresholds to evaluate besides the defaults (e.g. mmdet's).
        max_dets: detection limits to evaluate besides the defaults (e.g. mmdet's).

    Returns:
        ReferenceResult: pycocotools' default summary, precision at 100 detections, and the
        whole evaluation's arrays.
    """
    check_image_ids(img_ids, gt.getImgIds(), gt_source, pred_source or 'Evaluation')
    check_predictions(predictions, gt.getCatIds(), img_ids, gt_source, pred_source)
    coco_eval = COCOeval(gt, _coco_results(gt, predictions, iou_type), iou_type)
    coco_eval.params.imgIds = sorted(set(img_ids))
    if cat_ids is not None:
        coco_eval.params.catIds = list(cat_ids)
    coco_eval.params.iouThrs, coco_eval.params.maxDets = evaluation_grid(iou_thrs, max_dets)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.evaluate()
        coco_eval.accumulate()
    arrays = EvalArrays(coco_eval.eval['precision'], coco_eval.eval['recall'],
                        np.asarray(coco_eval.params.iouThrs), list(coco_eval.params.maxDets))
    return coco_result(iou_type, [int(c) for c in coco_eval.params.catIds], arrays, coco_eval)


def coco_result(iou_type: str, cat_ids: List[int], arrays: EvalArrays,
                evaluator: Any = None) -> ReferenceResult:
    """A COCO evaluation's result: pycocotools' summary with its default parameters.

    Args:
        iou_type: ``'bbox'`` or ``'segm'``.
        cat_ids: the categories of the arrays' class axis, in order.
        arrays: the evaluation (its grid holds the defaults).
        evaluator: the COCOeval object, if any.

    Returns:
        ReferenceResult: headline and stats of the default summary, precision at 100
        detections over the default IoU thresholds.
    """
    stats, printed, precision = summarize(arrays, iou_type)
    values = dict(zip(COCO_STATS, (float(v) for v in stats)))
    return ReferenceResult(
        iou_type=iou_type,
        headline={k: no_value_as_nan(values[k])
                  for k in COCO_HEADLINE},
        cat_ids=cat_ids,
        precision=precision[..., DEFAULT_MAX_DETS.index(100)],
        iou_thrs=DEFAULT_IOU_THRS.copy(),
        evaluator=evaluator,
        summary=printed,
        stats=values,
        arrays=arrays)
