"""Class-balanced loss weights (Cui et al., CVPR 2019), from a training annotation file.

The paper's LVIS stage 2 retrains the final classification layer with a class-balanced loss:
class ``j`` with ``n_j`` training instances weighs ``(1 - beta) / (1 - beta ** n_j)`` (the
inverse of its "effective number" of samples), normalised so that the classes' weights average
1 (Cui et al. normalise them to sum to the number of classes).
"""
import warnings
from typing import Dict, List, Sequence

import numpy as np

from mmfrozen.evaluation.annotation_stats import category_stats, load_annotation_file

COUNT_FIELDS = ('instance_count', 'image_count')


def effective_number_weights(counts: Sequence[int], beta: float) -> List[float]:
    """``(1 - beta) / (1 - beta ** n)`` per class, normalised to mean 1.

    Args:
        counts: training samples per class (a class with none counts as 1).
        beta: in [0, 1): 0 gives equal weights, towards 1 inverse-frequency weights.

    Returns:
        list[float]: one weight per class.
    """
    if not 0 <= beta < 1:
        raise ValueError(f'class-balanced loss: field "beta" must be in [0, 1), got {beta!r}.')
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1)
    weights = (1 - beta) / (1 - np.power(beta, n))
    return (weights * len(weights) / weights.sum()).tolist()


def training_counts(ann_file: str,
                    cat_ids: Sequence[int],
                    count: str = 'instance_count') -> Dict[int, int]:
    """Training instances (or images) per category id.

    The categories' own ``instance_count`` / ``image_count`` where every category has it (LVIS
    v1's files), else counted from the file's annotations.

    Args:
        ann_file: the training annotation file (COCO or LVIS format).
        cat_ids: the categories wanted, e.g. a data set's ``cat_ids``.
        count: ``'instance_count'`` or ``'image_count'``.

    Raises:
        ValueError: ``count`` is neither, or a category id is not in the file.
    """
    if count not in COUNT_FIELDS:
        raise ValueError(f'class-balanced loss: field "count" is {count!r}; use one of '
                         f'{list(COUNT_FIELDS)}.')
    data = load_annotation_file(ann_file)
    cats = {c['id']: c for c in data['categories']}
    missing = [c for c in cat_ids if c not in cats]
    if missing:
        raise ValueError(f'Annotation file {ann_file!r}: "categories" has no ids '
                         f'{missing[:10]} of the training data set.')
    if all(count in cats[c] for c in cat_ids):
        return {c: int(cats[c][count]) for c in cat_ids}
    stats = category_stats(ann_file, [cats[c] for c in cat_ids])
    return {
        c: (stats[c].train_instances if count == 'instance_count' else stats[c].train_images)
        for c in cat_ids
    }


def class_balanced_weights(ann_file: str,
                           cat_ids: Sequence[int],
                           beta: float = 0.999,
                           count: str = 'instance_count') -> List[float]:
    """Effective-number weights of ``cat_ids`` (in that order) from a training annotation file.

    Args:
        ann_file: the training annotation file.
        cat_ids: the categories in label order.
        beta: the effective-number hyper-parameter (the paper and Cui et al.: 0.999).
        count: what a sample is, ``'instance_count'`` (annotations) or ``'image_count'``.

    Returns:
        list[float]: one weight per category, mean 1.
    """
    counts = training_counts(ann_file, cat_ids, count)
    empty = [c for c in cat_ids if counts[c] == 0]
    if empty:
        warnings.warn(
            f'Annotation file {ann_file!r}: categories {empty[:10]} have no training '
            'samples; they are weighted as having one.',
            UserWarning,
            stacklevel=2)
    return effective_number_weights([counts[c] for c in cat_ids], beta)
