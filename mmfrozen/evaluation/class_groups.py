"""Named groups of classes scored on their own: the novel and base classes of few-shot detection.

The few-shot protocol reports AP over its novel classes and over its base classes (novel AP50
on Pascal VOC; novel AP, AP50, AP75 and base AP on COCO). A stratified metric given
``class_groups=dict(novel=[...], base=[...])`` reports, for each group and IoU type,
``{iou}_AP_{group}``, ``{iou}_AP50_{group}`` and ``{iou}_AP75_{group}``.

Each is the mean, over the group's classes that have ground truth in the evaluated images, of the
class's AP as the reference computes it (the mean of its valid precision entries). Every such
class fills all its entries, so this is exactly what pycocotools (lvis-api) reports when its
``params.catIds`` (``params.cat_ids``) is the group, and what MMDetection's ``CocoMetric``
reports on a data set whose classes are the group's: MMDetection's evaluation restricted to
those classes (tested against both).
"""
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

#: The IoU thresholds of the per-group values, by key suffix (None: 0.50:0.95).
GROUP_IOUS = {'AP': None, 'AP50': 0.5, 'AP75': 0.75}
#: Group names that would collide with the metrics' other keys (``{iou}_AP_exact``, bins).
RESERVED = ('exact', 'bin')


def check_class_groups(class_groups: Optional[Mapping[str, Sequence[str]]],
                       owner: str) -> Optional[Dict[str, List[str]]]:
    """Check the ``class_groups`` argument of a stratified metric.

    Args:
        class_groups: group name -> class names (as the data set's ``classes`` name them);
            None for none. A class may be in several groups.
        owner: the metric's name, for messages.

    Returns:
        dict or None: the groups as lists, in the order given.

    Raises:
        ValueError: naming the field ``class_groups`` and what is wrong.
    """
    if class_groups is None:
        return None
    if not isinstance(class_groups, Mapping) or not class_groups:
        raise ValueError(f'{owner}: field "class_groups" must map group names to lists of class '
                         f'names, e.g. dict(novel=[...], base=[...]); got {class_groups!r}.')
    out: Dict[str, List[str]] = {}
    for name, members in class_groups.items():
        if not isinstance(name, str) or not name or not name.replace('-', '').replace(
                '_', '').isalnum() or name.split('_')[0] in RESERVED:
            raise ValueError(f'{owner}: field "class_groups": group name {name!r} must be letters, '
                             f'digits, "-" or "_", and not start with {" or ".join(RESERVED)}.')
        if isinstance(members, str) or not members or not all(
                isinstance(m, str) for m in members):
            raise ValueError(f'{owner}: field "class_groups": group {name!r} must list class '
                             f'names, got {members!r}.')
        if len(set(members)) != len(members):
            raise ValueError(f'{owner}: field "class_groups": group {name!r} names a class '
                             'twice.')
        out[name] = list(members)
    return out


def resolve_class_groups(class_groups: Optional[Mapping[str, Sequence[str]]],
                         categories: Sequence[Dict[str, Any]], owner: str,
                         gt_source: str) -> Optional[Dict[str, List[int]]]:
    """The groups as category ids of the evaluated ground truth.

    Args:
        class_groups: checked groups of class names (:func:`check_class_groups`), or None.
        categories: the evaluated categories (``id``, ``name``).
        owner: the metric's name, for messages.
        gt_source: the ground truth's file, for messages.

    Returns:
        dict or None: group name -> category ids, in the group's order.

    Raises:
        ValueError: a class of a group is not among the categories (field ``class_groups``).
    """
    if class_groups is None:
        return None
    ids = {cat['name']: cat['id'] for cat in categories}
    out = {}
    for name, members in class_groups.items():
        missing = [m for m in members if m not in ids]
        if missing:
            raise ValueError(f'{owner}: field "class_groups": group {name!r} names {missing}, '
                             f'which are not among the evaluated categories of {gt_source} '
                             '(their "name").')
        out[name] = [ids[m] for m in members]
    return out


def class_group_ap(per_class: Mapping[str, Mapping[int, float]],
                   groups: Mapping[str, Sequence[int]]) -> Dict[str, Dict[str, float]]:
    """AP, AP50 and AP75 of each group: the mean over its classes with ground truth.

    Args:
        per_class: per key of :data:`GROUP_IOUS`, AP per category id (NaN without ground truth).
        groups: group name -> category ids.

    Returns:
        dict: per group ``{"AP", "AP50", "AP75" (NaN where no class has ground truth),
        "num_classes", "num_classes_evaluated"}``.
    """
    out: Dict[str, Dict[str, float]] = {}
    for name, members in groups.items():
        entry: Dict[str, float] = {}
        evaluated = 0
        for key in GROUP_IOUS:
            values = [per_class[key][c] for c in members
                      if c in per_class[key] and not np.isnan(per_class[key][c])]
            entry[key] = float(np.mean(values)) if values else float('nan')
            evaluated = max(evaluated, len(values))
        entry.update(num_classes=len(members), num_classes_evaluated=evaluated)
        out[name] = entry
    return out
