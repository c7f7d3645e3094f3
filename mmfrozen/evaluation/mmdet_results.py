"""The keys and values mmdet 3.x's ``CocoMetric`` and ``LVISMetric`` return, from our evaluation.

The same names, the same selection by ``metric_items``, the same rounding (each metric rounds
its own way: ``CocoMetric`` with ``round`` on NumPy's float, ``LVISMetric`` with ``'{:.3f}'``),
the same -1 for a value the reference does not define, and the same log lines
(``bbox_mAP_copypaste``), so that a config's ``save_best`` and a log parser see what they would
see with MMDetection's metric.
"""
import itertools
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from terminaltables import AsciiTable

#: ``CocoMetric``'s names of pycocotools' 12 ``stats`` (for its detection limits 100, 300, 1000).
COCO_ITEMS = OrderedDict(
    (name, index) for index, name in enumerate(
        ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100', 'AR@300', 'AR@1000',
         'AR_s@1000', 'AR_m@1000', 'AR_l@1000')))
#: what each metric returns when ``metric_items`` is None.
COCO_DEFAULT_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
LVIS_DEFAULT_ITEMS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')
LVIS_PROPOSAL_ITEMS = ('AR@300', 'ARs@300', 'ARm@300', 'ARl@300')


def check_coco_items(metric_items: Optional[Sequence[str]]) -> None:
    """Refuse a ``metric_items`` entry ``CocoMetric`` does not know, with its error.

    Raises:
        KeyError: ``metric item "<name>" is not supported``.
    """
    for item in metric_items or ():
        if item not in COCO_ITEMS:
            raise KeyError(f'metric item "{item}" is not supported')


def coco_values(metric: str, stats: Sequence[float],
                metric_items: Optional[Sequence[str]]) -> Dict[str, float]:
    """``CocoMetric``'s ``{metric}_{item}`` values from pycocotools' stats at its parameters.

    Args:
        metric: ``'bbox'`` or ``'segm'``.
        stats: the 12 stats of pycocotools' ``summarize`` with ``CocoMetric``'s ``iou_thrs``
            and ``maxDets = proposal_nums`` (NumPy floats, as pycocotools gives them).
        metric_items: the items to return (None: :data:`COCO_DEFAULT_ITEMS`).

    Returns:
        dict: the values rounded to 3 decimals as ``CocoMetric`` rounds them.
    """
    out: Dict[str, float] = OrderedDict()
    for item in (COCO_DEFAULT_ITEMS if metric_items is None else metric_items):
        value = np.float64(stats[COCO_ITEMS[item]])
        out[f'{metric}_{item}'] = float(f'{round(value, 3)}')
    return out


def coco_copypaste(metric: str, stats: Sequence[float]) -> str:
    """The ``{metric}_mAP_copypaste`` line ``CocoMetric`` logs (its first 6 stats)."""
    return f'{metric}_mAP_copypaste: ' + ' '.join(f'{v:.3f}' for v in stats[:6])


def lvis_values(prefix: str, results: Mapping[str, float],
                items: Sequence[str]) -> Dict[str, float]:
    """``LVISMetric``'s values: lvis-api's ``results`` that ``items`` names, in their order.

    Args:
        prefix: ``'bbox_'``, ``'segm_'``, or ``''`` for ``'proposal'``.
        results: lvis-api's results (``AP``, ..., ``APf``, ``AR@300``, ...; -1: no value).
        items: the items to keep (unknown ones are ignored, as ``LVISMetric`` does).

    Returns:
        dict: the values rounded to 3 decimals as ``LVISMetric`` rounds them.
    """
    return OrderedDict((f'{prefix}{key}', float('{:.3f}'.format(float(value))))
                       for key, value in results.items() if key in items)


def class_ap(precision: np.ndarray) -> float:
    """One class's AP as mmdet's classwise tables compute it: the mean of the valid entries.

    Args:
        precision: the class's precision entries (any shape; -1 where undefined).

    Returns:
        float: NumPy's mean, or NaN without a valid entry.
    """
    valid = precision[precision > -1]
    return np.mean(valid) if valid.size else float('nan')


def classwise_values(names: Sequence[str], precision: np.ndarray) -> Dict[str, float]:
    """The ``{class name}_precision`` values of a classwise evaluation.

    Args:
        names: the class names, in the order of ``precision``'s class axis.
        precision: (IoU thresholds, recall thresholds, classes, area ranges), at the detection
            limit mmdet reads (the last of ``proposal_nums`` for COCO, 300 for LVIS).

    Returns:
        dict: AP over all area ranges, rounded as mmdet rounds it (NaN without ground truth).
    """
    return OrderedDict((f'{name}_precision', round(class_ap(precision[:, :, k, 0]), 3))
                       for k, name in enumerate(names))


def classwise_table(names: Sequence[str], columns: Mapping[str, List[float]],
                    pairs_per_row: int = 1) -> str:
    """The per-class AP table for the log.

    Args:
        names: the class names.
        columns: column title -> one value per class.
        pairs_per_row: with one column, how many (class, value) pairs share a row.

    Returns:
        str: the table.
    """
    cells = [[name] + [f'{values[k]:0.3f}' for values in columns.values()]
             for k, name in enumerate(names)]
    header = ['category'] + list(columns)
    if len(columns) == 1 and pairs_per_row > 1:
        width = min(pairs_per_row, len(cells)) or 1
        flat = list(itertools.chain(*cells))
        rows = [flat[i:i + 2 * width] for i in range(0, len(flat), 2 * width)]
        return AsciiTable([header * width] + rows).table
    return AsciiTable([header] + cells).table
