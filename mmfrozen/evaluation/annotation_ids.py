"""Ground-truth annotation ids the evaluators score right: unique integers, none 0 or below.

pycocotools' ``COCOeval``, lvis-api's ``LVISEval`` and faster-coco-eval mark a detection as
matched with the id of the ground truth it matched, and read 0 as "not matched": a detection
that finds an annotation with id 0 counts as a false positive and the annotation as missed
(measured: two perfect detections of two boxes with ids 0 and 1 score AP 0.252, not 1.000).
faster-coco-eval also loses negative ids (AP 0.000 where pycocotools gives 1.000), and
duplicated ids make pycocotools and lvis-api score one annotation twice and the other never.
MMDetection's own Pascal VOC converter (``tools/dataset_converters/pascal_voc.py``) numbers
annotations from 0, as many COCO-format exporters do.

:func:`renumber_annotation_ids` is the one rule, used by the stratified metrics on their
ground truth (for every backend) and by the checked datasets: where any annotation id is 0 or
negative, every annotation is renumbered ``1..N`` in the order of the file's
``annotations`` (the file itself is not changed). Ids that are missing, not integers or not
unique are an error naming the file and the field.
"""
from typing import Any, Dict, List, Optional, Sequence

#: How many offending ids a message lists.
FIRST_FEW = 5


class AnnotationIdError(ValueError):
    """Annotation ids no evaluator can score: missing, not integers, or not unique."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def annotation_id_problem(annotations: Sequence[Any]) -> Optional[str]:
    """What makes the ids of ``annotations`` unusable, or None.

    Entries that are not dicts are left to the caller's other checks.

    Args:
        annotations: the ``annotations`` list of a COCO- or LVIS-format file.

    Returns:
        str | None: the problem, naming the field ``id`` and the first few ids or positions.
    """
    missing, not_int, seen, repeated = [], [], set(), []
    for index, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            continue
        if 'id' not in ann:
            missing.append(index)
        elif not _is_int(ann['id']):
            not_int.append(ann['id'])
        elif ann['id'] in seen:
            repeated.append(ann['id'])
        else:
            seen.add(ann['id'])
    if missing:
        return (f'{len(missing)} annotation(s) have no field "id" (positions in "annotations": '
                f'{missing[:FIRST_FEW]})')
    if not_int:
        return (f'{len(not_int)} annotation(s) have a field "id" that is not an integer '
                f'(e.g. {not_int[:FIRST_FEW]!r})')
    if repeated:
        return (f'field "id" of "annotations" is not unique: {len(repeated)} repeated id(s), '
                f'e.g. {sorted(set(repeated))[:FIRST_FEW]}; the evaluators would score one of '
                'each pair twice and the other never')
    return None


def renumber_annotation_ids(annotations: List[Dict[str, Any]], source: str,
                            owner: str) -> Optional[str]:
    """Renumber the annotations ``1..N`` in file order (in place) where any id is 0 or less.

    Args:
        annotations: the ``annotations`` list of a COCO- or LVIS-format file (edited in place).
        source: the file, for messages.
        owner: who renumbers (a class name), for messages.

    Returns:
        str | None: the log line saying what was done, or None where nothing needed doing.

    Raises:
        AnnotationIdError: the ids are missing, not integers or not unique.
    """
    problem = annotation_id_problem(annotations)
    if problem is not None:
        raise AnnotationIdError(f'Annotation file {source}: {problem}. Give every annotation a '
                                'unique integer "id".')
    low = [ann['id'] for ann in annotations if isinstance(ann, dict) and ann['id'] <= 0]
    if not low:
        return None
    for number, ann in enumerate(annotations, start=1):
        if isinstance(ann, dict):
            ann['id'] = number
    return (f'{owner}: annotation file {source} has {len(low)} annotation id(s) of 0 or below '
            f'(e.g. {sorted(low)[:FIRST_FEW]}); pycocotools, lvis-api and faster-coco-eval '
            'read id 0 as "not matched" and would score such annotations as missed, so the '
            f'{len(annotations)} annotations are renumbered 1..{len(annotations)} in file order '
            '(in memory; the file is unchanged).')


def renumber_api_annotation_ids(api: Any, source: str, owner: str) -> Optional[str]:
    """:func:`renumber_annotation_ids` on a loaded ``COCO`` or ``LVIS`` api object.

    The annotation dicts are renumbered in place, so the api's per-image and per-category
    indexes (which hold the same dicts) follow; the id index ``anns`` is rebuilt.

    Args:
        api: pycocotools' (or mmdet's) ``COCO``, lvis-api's ``LVIS`` or faster-coco-eval's
            ``COCO``, indexed.
        source: its annotation file, for messages.
        owner: who renumbers, for messages.

    Returns:
        str | None: the log line, or None where nothing needed doing.
    """
    annotations = api.dataset.get('annotations') or []
    line = renumber_annotation_ids(annotations, source, owner)
    if line is not None:
        api.anns = {ann['id']: ann for ann in annotations}
    return line
