"""Combine a reference evaluation with training statistics: per-class rows, bins, groups."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .annotation_stats import FREQUENCY_GROUPS, CategoryStats
from .reference_eval import ReferenceResult
from .stratify import Bin, assign_bin, bin_labels, group_ap, per_class_ap

PER_CLASS_FIELDS = ('category_id', 'name', 'frequency', 'train_images', 'train_instances',
                    'AP', 'AP50')


@dataclass
class StratifiedResult:
    """The stratified evaluation of one IoU type.

    Attributes:
        iou_type: ``'bbox'`` or ``'segm'``.
        headline: the reference's AP, AP50, ... (NaN where it has no value).
        bins: per bin of training instances ``{"AP", "num_classes", "num_classes_evaluated"}``.
        frequency_groups: the same per frequency group ``r``/``c``/``f`` (training images).
        rows: per-class rows with the fields of :data:`PER_CLASS_FIELDS`.
    """
    iou_type: str
    headline: Dict[str, float]
    bins: Dict[str, Dict[str, float]]
    frequency_groups: Dict[str, Dict[str, float]]
    rows: List[Dict[str, Any]] = field(default_factory=list)

    def summary(self) -> Dict[str, Any]:
        """The ``summary.json`` entry of this IoU type."""
        return dict(self.headline, bins=self.bins, frequency_groups=self.frequency_groups)

    def scalars(self) -> Dict[str, float]:
        """Bin APs as scalars to log, e.g. ``{'AP_bin_1-10': 0.2}`` (empty bins left out)."""
        return {f'AP_bin_{label}': value['AP'] for label, value in self.bins.items()
                if not np.isnan(value['AP'])}


def stratify_result(ref: ReferenceResult, stats: Mapping[int, CategoryStats],
                    bins: Sequence[Bin]) -> StratifiedResult:
    """Per-class AP and AP per bin of training instances and per frequency group.

    Args:
        ref: the reference's evaluation.
        stats: training statistics per category id; a category without an entry counts as
            having no training annotations.
        bins: bins of training instances (see :func:`~mmfrozen.evaluation.stratify.normalize_bins`).

    Returns:
        StratifiedResult: rows in the reference's category order.
    """
    ap = per_class_ap(ref.precision)
    iou50 = np.flatnonzero(np.isclose(ref.iou_thrs, 0.5))
    ap50 = per_class_ap(ref.precision, iou_index=int(iou50[0])) if iou50.size else None
    rows: List[Dict[str, Any]] = []
    per_class: Dict[int, float] = {}
    bin_of: Dict[int, Optional[str]] = {}
    group_of: Dict[int, Optional[str]] = {}
    for idx, cat_id in enumerate(ref.cat_ids):
        cat = stats.get(cat_id)
        images = cat.train_images if cat else 0
        instances = cat.train_instances if cat else 0
        per_class[cat_id] = float(ap[idx])
        bin_of[cat_id] = assign_bin(instances, bins)
        group_of[cat_id] = cat.frequency if cat else 'r'
        rows.append(dict(category_id=cat_id, name=cat.name if cat else str(cat_id),
                         frequency=group_of[cat_id], train_images=images,
                         train_instances=instances, AP=float(ap[idx]),
                         AP50=float(ap50[idx]) if ap50 is not None else float('nan')))
    return StratifiedResult(
        iou_type=ref.iou_type, headline=dict(ref.headline),
        bins=group_ap(per_class, bin_of, bin_labels(bins)),
        frequency_groups=group_ap(per_class, group_of, FREQUENCY_GROUPS), rows=rows)
