"""pycocotools' summary for any IoU thresholds and detection limits, out of one evaluation.

mmdet's ``CocoMetric`` evaluates with its own ``iou_thrs`` and ``maxDets = proposal_nums``
(100, 300, 1000), our stratified report with pycocotools' defaults (0.50:0.95, 1/10/100). One
evaluation on the union of both serves both: pycocotools matches each IoU threshold on its own,
and keeps each image's detections sorted by score, so the precision and recall at a threshold
or a detection limit do not depend on the others evaluated with it. The union's arrays are
sliced to each setting and handed to pycocotools' own ``summarize`` (on an evaluator holding
only those arrays and parameters), so that its -1 rules and its index lookups, quirks
included, are pycocotools' own.
"""
import contextlib
import io
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from pycocotools.cocoeval import COCOeval

#: pycocotools' default IoU thresholds (0.50:0.05:0.95) and detection limits.
DEFAULT_IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
DEFAULT_MAX_DETS = [1, 10, 100]
#: the keys of pycocotools' ``stats`` in order (its ``summarize`` with default parameters).
COCO_STATS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm',
              'ARl')

IouThrs = Union[float, Sequence[float], np.ndarray]


@dataclass
class EvalArrays:
    """The accumulated arrays of one COCO-style evaluation.

    Attributes:
        precision: (IoU thresholds, recall thresholds, classes, area ranges, max detections).
        recall: (IoU thresholds, classes, area ranges, max detections).
        iou_thrs: the IoU thresholds of the first axis, ascending.
        max_dets: the detection limits of the last axis, ascending.
    """
    precision: np.ndarray
    recall: np.ndarray
    iou_thrs: np.ndarray
    max_dets: List[int]


def evaluation_grid(iou_thrs: Optional[IouThrs] = None,
                    max_dets: Optional[Sequence[int]] = None) -> Tuple[np.ndarray, List[int]]:
    """The IoU thresholds and detection limits to evaluate so that pycocotools' defaults and
    the given setting can both be read off.

    Args:
        iou_thrs: the other setting's IoU thresholds (None: only the defaults).
        max_dets: the other setting's detection limits (None: only the defaults).

    Returns:
        tuple: ascending IoU thresholds and ascending detection limits.
    """
    thrs = DEFAULT_IOU_THRS if iou_thrs is None else np.concatenate(
        [DEFAULT_IOU_THRS, np.asarray(iou_thrs, dtype=np.float64).ravel()])
    dets = set(DEFAULT_MAX_DETS) | set(_effective_max_dets(max_dets or []))
    return np.unique(thrs), sorted(int(m) for m in dets)


def _effective_max_dets(max_dets: Sequence[int]) -> List[int]:
    # pycocotools keeps maxDets[-1] detections per image however the list is ordered: a larger
    # limit before it sees only that many.
    return [min(int(m), int(max_dets[-1])) for m in max_dets] if len(max_dets) else []


def select(arrays: EvalArrays, iou_thrs: IouThrs,
           max_dets: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """The precision and recall that pycocotools would accumulate with these parameters.

    Args:
        arrays: an evaluation on a grid holding every threshold and limit asked for.
        iou_thrs: IoU thresholds, in the order (and with the repeats) they are set.
        max_dets: detection limits as they are set.

    Returns:
        tuple: precision (T, R, K, A, M) and recall (T, K, A, M).

    Raises:
        ValueError: a threshold or limit the evaluation does not hold.
    """
    thrs = np.asarray(iou_thrs, dtype=np.float64).ravel()
    t_index = np.searchsorted(arrays.iou_thrs, thrs)
    t_index = np.minimum(t_index, len(arrays.iou_thrs) - 1)
    if not np.array_equal(arrays.iou_thrs[t_index], thrs):
        raise ValueError(f'IoU thresholds {thrs.tolist()} are not all among the evaluated '
                         f'{arrays.iou_thrs.tolist()}.')
    try:
        m_index = [arrays.max_dets.index(m) for m in _effective_max_dets(max_dets)]
    except ValueError as err:
        raise ValueError(f'detection limits {list(max_dets)} are not all among the evaluated '
                         f'{arrays.max_dets}.') from err
    precision = arrays.precision[t_index][..., m_index]
    recall = arrays.recall[t_index][..., m_index]
    return precision, recall


def summarize(arrays: EvalArrays,
              iou_type: str,
              iou_thrs: Optional[IouThrs] = None,
              max_dets: Optional[Sequence[int]] = None) -> Tuple[np.ndarray, str, np.ndarray]:
    """pycocotools' ``COCOeval.summarize`` for one setting, on an evaluation's arrays.

    Args:
        arrays: the evaluation (see :func:`evaluation_grid`).
        iou_type: ``'bbox'`` or ``'segm'``.
        iou_thrs: the IoU thresholds exactly as they would be set on ``params.iouThrs``
            (e.g. mmdet's list); None: the defaults.
        max_dets: the detection limits as set on ``params.maxDets``; None: the defaults.

    Returns:
        tuple: pycocotools' 12 ``stats`` (-1 where it has no value), the lines it prints, and
        the precision array (T, R, K, A, M) of the setting.
    """
    iou_thrs = DEFAULT_IOU_THRS if iou_thrs is None else iou_thrs
    max_dets = list(DEFAULT_MAX_DETS if max_dets is None else max_dets)
    precision, recall = select(arrays, iou_thrs, max_dets)
    evaluator = COCOeval(iouType=iou_type)
    evaluator.params.iouThrs = iou_thrs
    evaluator.params.maxDets = max_dets
    evaluator.eval = dict(precision=precision, recall=recall)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        evaluator.summarize()
    return np.asarray(evaluator.stats), printed.getvalue(), precision
