"""Per-class AP from a reference evaluator's precision array, and AP per bin of classes.

lvis-api and pycocotools compute an AP as the mean of the valid (> -1) entries of their
precision array. Every class with ground truth fills all its entries (IoU thresholds x recall
thresholds), so a group's AP is also the mean of its classes' APs: the bins here are exact
(e.g. the ``r``/``c``/``f`` groups reproduce lvis-api's APr/APc/APf).
"""
import math
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

Bin = Tuple[int, Optional[int]]

DEFAULT_BINS: List[Bin] = [(1, 10), (11, 100), (101, 1000), (1001, None)]
NO_TRAINING_DATA = '0'


def bin_label(bin_range: Bin) -> str:
    """Name a bin: ``(1, 10)`` is ``'1-10'``, ``(1001, None)`` is ``'>1000'``."""
    low, high = bin_range
    if high is None:
        return f'>{low - 1}'
    return f'{low}-{high}'


def normalize_bins(bins: Iterable[Sequence[Optional[int]]]) -> List[Bin]:
    """Check and sort bins of training-annotation counts.

    Args:
        bins: ``(low, high)`` pairs, both inclusive; ``high=None`` is open-ended. ``low`` must
            be at least 1: classes without training annotations always form bin ``'0'``.

    Returns:
        list: the bins as tuples, sorted by ``low``.

    Raises:
        ValueError: a bin is malformed, or two bins overlap.
    """
    out: List[Bin] = []
    for item in bins:
        if len(item) != 2:
            raise ValueError(f'bins: each bin is (low, high), got {item!r}.')
        low, high = item
        if int(low) < 1 or (high is not None and int(high) < int(low)):
            raise ValueError(f'bins: bad bin {item!r}; need 1 <= low <= high (high=None for '
                             'no upper limit); classes with no annotations are bin "0".')
        out.append((int(low), None if high is None else int(high)))
    out.sort(key=lambda b: b[0])
    for prev, nxt in zip(out, out[1:]):
        if prev[1] is None or prev[1] >= nxt[0]:
            raise ValueError(f'bins: {prev!r} and {nxt!r} overlap.')
    return out


def assign_bin(count: int, bins: Sequence[Bin]) -> Optional[str]:
    """The label of the bin holding ``count`` (``'0'`` for no annotations; None if no bin)."""
    if count == 0:
        return NO_TRAINING_DATA
    for low, high in bins:
        if count >= low and (high is None or count <= high):
            return bin_label((low, high))
    return None


def per_class_ap(precision: np.ndarray, iou_index: Optional[int] = None,
                 area_index: int = 0) -> np.ndarray:
    """Each class's AP, as the reference computes its AP: the mean of valid precision entries.

    Args:
        precision: the reference's ``eval['precision']`` of shape (IoU thresholds, recall
            thresholds, classes, area ranges), for one max-detections setting.
        iou_index: one IoU threshold's index (e.g. 0 for AP50), or None for all.
        area_index: the area range's index (0 is "all").

    Returns:
        np.ndarray: AP per class (axis 2's order), NaN where a class has no valid entry.
    """
    selected = precision[:, :, :, area_index]
    if iou_index is not None:
        selected = selected[iou_index:iou_index + 1]
    selected = selected.reshape(-1, selected.shape[2])
    valid = selected > -1
    counts = valid.sum(axis=0)
    sums = np.where(valid, selected, 0.0).sum(axis=0)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def group_ap(per_class: Mapping[int, float], groups: Mapping[int, Optional[str]],
             labels: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """AP of each group of classes: the mean AP of its classes that have ground truth.

    Args:
        per_class: AP per category id (NaN where the class has no ground truth).
        groups: group label per category id (None: in no group).
        labels: the groups to report, in order; each appears even when empty.

    Returns:
        dict: per label ``{"AP": mean or NaN, "num_classes": classes in the group,
        "num_classes_evaluated": those with ground truth in the evaluated images}``.
    """
    out: Dict[str, Dict[str, float]] = {}
    for label in labels:
        members = [cat for cat, group in groups.items() if group == label]
        values = [per_class[cat] for cat in members
                  if cat in per_class and not math.isnan(per_class[cat])]
        out[label] = dict(AP=float(np.mean(values)) if values else float('nan'),
                          num_classes=len(members), num_classes_evaluated=len(values))
    return out


def bin_labels(bins: Sequence[Bin]) -> List[str]:
    """All bin labels in report order: the bins, then ``'0'``."""
    return [bin_label(b) for b in bins] + [NO_TRAINING_DATA]
