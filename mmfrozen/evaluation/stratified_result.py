"""Combine a reference evaluation with training statistics: per-class rows, bins, groups."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .annotation_stats import FREQUENCY_GROUPS, CategoryStats
from .class_groups import GROUP_IOUS, class_group_ap
from .reference_eval import ReferenceResult
from .stratify import Bin, assign_bin, bin_labels, group_ap, per_class_ap

PER_CLASS_FIELDS = ('category_id', 'name', 'frequency', 'train_images', 'train_instances',
                    'AP', 'AP50')
#: The per-class field added where the metric has ``class_groups``: the groups of the class.
GROUP_FIELD = 'class_groups'


@dataclass
class StratifiedResult:
    """The stratified evaluation of one IoU type.

    Attributes:
        iou_type: ``'bbox'`` or ``'segm'``.
        headline: the reference's AP, AP50, ... (NaN where it has no value).
        bins: per bin of training instances ``{"AP", "num_classes", "num_classes_evaluated"}``
            (empty without training counts).
        frequency_groups: the same per frequency group ``r``/``c``/``f`` (training images;
            empty where no category's group is known).
        rows: per-class rows with the fields of :data:`PER_CLASS_FIELDS` (and, with class
            groups, :data:`GROUP_FIELD`: the names of the groups holding the class).
        class_groups: per named group of classes (the metric's ``class_groups``, e.g. few-shot
            detection's ``novel`` and ``base``) ``{"AP", "AP50", "AP75", "num_classes",
            "num_classes_evaluated"}`` (empty without groups).
    """
    iou_type: str
    headline: Dict[str, float]
    bins: Dict[str, Dict[str, float]]
    frequency_groups: Dict[str, Dict[str, float]]
    rows: List[Dict[str, Any]] = field(default_factory=list)
    class_groups: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def summary(self) -> Dict[str, Any]:
        """The ``summary.json`` entry of this IoU type (``class_groups`` where there are)."""
        out = dict(self.headline, bins=self.bins, frequency_groups=self.frequency_groups)
        if self.class_groups:
            out['class_groups'] = self.class_groups
        return out

    def scalars(self) -> Dict[str, float]:
        """Bin APs as scalars to log, e.g. ``{'AP_bin_1-10': 0.2}`` (empty bins left out)."""
        return {f'AP_bin_{label}': value['AP'] for label, value in self.bins.items()
                if not np.isnan(value['AP'])}

    def group_scalars(self) -> Dict[str, float]:
        """Frequency-group APs as scalars, e.g. ``{'APr': 0.1}`` (empty groups left out)."""
        return {f'AP{group}': value['AP'] for group, value in self.frequency_groups.items()
                if not np.isnan(value['AP'])}

    def class_group_scalars(self) -> Dict[str, float]:
        """Class-group APs as scalars, e.g. ``{'AP_novel': 0.1, 'AP50_novel': 0.2, ...}``
        (values without ground truth left out)."""
        return {f'{key}_{name}': value[key] for name, value in self.class_groups.items()
                for key in GROUP_IOUS if not np.isnan(value[key])}

    @property
    def has_counts(self) -> bool:
        """Whether the rows carry training counts (and the bins are computed)."""
        return bool(self.bins)


def stratify_result(ref: ReferenceResult,
                    stats: Optional[Mapping[int, CategoryStats]],
                    bins: Sequence[Bin],
                    frequencies: Optional[Mapping[int, str]] = None,
                    names: Optional[Mapping[int, str]] = None,
                    class_groups: Optional[Mapping[str, Sequence[int]]] = None
                    ) -> StratifiedResult:
    """Per-class AP and AP per bin of training instances and per frequency group.

    Args:
        ref: the reference's evaluation.
        stats: training statistics per category id; a category without an entry counts as
            having no training annotations. None: no counts, so no bins (the rows' counts are
            None).
        bins: bins of training instances (see :func:`~mmfrozen.evaluation.stratify.normalize_bins`).
        frequencies: each category's frequency group where the ground truth gives it (LVIS);
            else the one of ``stats`` (none without either: no groups).
        names: category names, for the rows of categories without statistics.
        class_groups: named groups of category ids to score on their own (AP, AP50, AP75);
            their rows get :data:`GROUP_FIELD`.

    Returns:
        StratifiedResult: rows in the reference's category order.
    """
    ap = per_class_ap(ref.precision)
    iou50 = np.flatnonzero(np.isclose(ref.iou_thrs, 0.5))
    ap50 = per_class_ap(ref.precision, iou_index=int(iou50[0])) if iou50.size else None
    by_iou = {key: _per_class_at(ref, iou) for key, iou in GROUP_IOUS.items()} \
        if class_groups else None
    rows: List[Dict[str, Any]] = []
    per_class: Dict[int, float] = {}
    bin_of: Dict[int, Optional[str]] = {}
    group_of: Dict[int, Optional[str]] = {}
    for idx, cat_id in enumerate(ref.cat_ids):
        cat = stats.get(cat_id) if stats is not None else None
        images = cat.train_images if cat else (0 if stats is not None else None)
        instances = cat.train_instances if cat else (0 if stats is not None else None)
        per_class[cat_id] = float(ap[idx])
        if stats is not None:
            bin_of[cat_id] = assign_bin(instances, bins)
        group = frequencies.get(cat_id) if frequencies else None
        if group is None and stats is not None:
            group = cat.frequency if cat else 'r'
        group_of[cat_id] = group
        name = cat.name if cat else (names or {}).get(cat_id, str(cat_id))
        rows.append(dict(category_id=cat_id, name=name, frequency=group, train_images=images,
                         train_instances=instances, AP=float(ap[idx]),
                         AP50=float(ap50[idx]) if ap50 is not None else float('nan')))
    known_groups = any(g is not None for g in group_of.values())
    if class_groups:
        for row in rows:
            row[GROUP_FIELD] = ' '.join(name for name, members in class_groups.items()
                                        if row['category_id'] in members)
    return StratifiedResult(
        iou_type=ref.iou_type, headline=dict(ref.headline),
        bins=group_ap(per_class, bin_of, bin_labels(bins)) if stats is not None else {},
        frequency_groups=group_ap(per_class, group_of, FREQUENCY_GROUPS) if known_groups else {},
        rows=rows,
        class_groups=class_group_ap(by_iou, class_groups) if class_groups else {})


def _per_class_at(ref: ReferenceResult, iou: Optional[float]) -> Dict[int, float]:
    """AP per category id at one IoU threshold (None: over all of them).

    Raises:
        ValueError: the evaluation has no such threshold.
    """
    index = None
    if iou is not None:
        found = np.flatnonzero(np.isclose(ref.iou_thrs, iou))
        if not found.size:
            raise ValueError(f'the {ref.iou_type} evaluation has no IoU threshold {iou} '
                             f'(it has {list(ref.iou_thrs)}).')
        index = int(found[0])
    ap = per_class_ap(ref.precision, iou_index=index)
    return {cat_id: float(ap[k]) for k, cat_id in enumerate(ref.cat_ids)}
