"""Checks of COCO- and LVIS-format annotation files, naming the file, the id and the field.

MMDetection reads such files leniently: a box with negative width trains as no box, an
annotation of an unknown category drops its image, a file without ``annotations`` fails later
with "need at least one array to concatenate", an empty file with a ``JSONDecodeError`` that
names no file. :func:`read_annotation_file` and :func:`check_annotations` say what is wrong,
where, before anything trains or is evaluated.
"""
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.fileio import get_local_path

#: How many offending ids an error or a log line lists.
FIRST_FEW = 5

LVIS_IMAGE_FIELDS = ('neg_category_ids', 'not_exhaustive_category_ids')
LVIS_FREQUENCIES = ('r', 'c', 'f')


class AnnotationFileError(ValueError):
    """An annotation file that cannot be used as it is; the message names file, id and field."""


def read_annotation_file(path: str, backend_args: Optional[dict] = None) -> Dict[str, Any]:
    """Read a JSON annotation file, saying which file is missing, empty or not JSON.

    Args:
        path: the file (any mmengine file backend).
        backend_args: mmengine file backend arguments.

    Returns:
        dict: the parsed file.

    Raises:
        AnnotationFileError: the file is missing, empty, not JSON or not a JSON object.
    """
    try:
        with get_local_path(path, backend_args=backend_args) as local_path:
            if os.path.getsize(local_path) == 0:
                raise AnnotationFileError(f'Annotation file {path}: the file is empty (0 bytes).')
            with open(local_path, encoding='utf-8') as f:
                data = json.load(f)
    except FileNotFoundError as err:
        raise AnnotationFileError(f'Annotation file {path}: no such file.') from err
    except json.JSONDecodeError as err:
        raise AnnotationFileError(
            f'Annotation file {path}: not valid JSON ({err.msg} at line {err.lineno}, column '
            f'{err.colno}).') from err
    except UnicodeDecodeError as err:
        raise AnnotationFileError(f'Annotation file {path}: not a UTF-8 JSON text file '
                                  f'({err.reason} at byte {err.start}).') from err
    if not isinstance(data, dict):
        raise AnnotationFileError(
            f'Annotation file {path}: the top level is a JSON {type(data).__name__}; expected '
            'an object with "images", "annotations" and "categories".')
    return data


def _fail(path: str, what: str) -> None:
    raise AnnotationFileError(f'Annotation file {path}: {what}')


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _check_sections(data: Dict[str, Any], path: str, require_annotations: bool) -> None:
    keys = ('images', 'annotations', 'categories') if require_annotations else \
        ('images', 'categories')
    for key in keys:
        if key not in data:
            _fail(path, f'no "{key}" field (top-level keys: {sorted(data)}).')
        if not isinstance(data[key], list):
            _fail(path, f'"{key}" is a {type(data[key]).__name__}, not a list.')
    if 'annotations' in data and not isinstance(data['annotations'], list):
        _fail(path, f'"annotations" is a {type(data["annotations"]).__name__}, not a list.')
    if not data['images']:
        _fail(path, '"images" is empty: there is nothing to train on or evaluate.')
    if not data['categories']:
        _fail(path, '"categories" is empty.')
    if require_annotations and not data['annotations']:
        _fail(path, '"annotations" is empty: no ground truth to train on or evaluate against.')


def _check_categories(data: Dict[str, Any], path: str, lvis: bool) -> set:
    ids = set()
    for cat in data['categories']:
        if not isinstance(cat, dict) or 'id' not in cat:
            _fail(path, f'a category has no "id": {cat!r}.')
        for field in ('name', ) + (('frequency', ) if lvis else ()):
            if field not in cat:
                _fail(path, f'category id {cat["id"]}: no "{field}" field'
                      + (' (LVIS files give each category r, c or f).' if field == 'frequency'
                         else '.'))
        if lvis and cat['frequency'] not in LVIS_FREQUENCIES:
            _fail(path, f'category id {cat["id"]}: "frequency" is {cat["frequency"]!r}, not one '
                  'of r, c, f.')
        ids.add(cat['id'])
    return ids


def _check_images(data: Dict[str, Any], path: str, lvis: bool) -> Dict[Any, Tuple[float, float]]:
    sizes: Dict[Any, Tuple[float, float]] = {}
    for img in data['images']:
        if not isinstance(img, dict) or 'id' not in img:
            _fail(path, f'an image has no "id": {img!r}.')
        for field in ('width', 'height'):
            if not _number(img.get(field)) or img[field] <= 0:
                _fail(path, f'image id {img["id"]}: "{field}" is {img.get(field)!r}, not a '
                      'positive number.')
        if lvis:
            for field in LVIS_IMAGE_FIELDS:
                if not isinstance(img.get(field), list):
                    _fail(path, f'image id {img["id"]}: no "{field}" list (LVIS files give '
                          'every image neg_category_ids and not_exhaustive_category_ids).')
        if img['id'] in sizes:
            _fail(path, f'image id {img["id"]} appears twice in "images".')
        sizes[img['id']] = (float(img['width']), float(img['height']))
    return sizes


def _annotation_problem(ann: Any, image_sizes: Dict[Any, Tuple[float, float]],
                        category_ids: set) -> Optional[str]:
    """What is wrong with one annotation (field named), or None."""
    if not isinstance(ann, dict):
        return f'is a {type(ann).__name__}, not an object'
    for field in ('image_id', 'category_id', 'bbox'):
        if field not in ann:
            return f'no "{field}" field'
    if ann['image_id'] not in image_sizes:
        return f'"image_id" {ann["image_id"]!r} is not among the images'
    if ann['category_id'] not in category_ids:
        return f'"category_id" {ann["category_id"]!r} is not among the categories'
    bbox = ann['bbox']
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_number(v) for v in bbox):
        return f'"bbox" is {bbox!r}, not four finite numbers [x, y, width, height]'
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        return f'"bbox" {bbox} has non-positive width or height'
    width, height = image_sizes[ann['image_id']]
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return f'"bbox" {bbox} lies outside the {width:g}x{height:g} image'
    return None


def check_annotations(data: Dict[str, Any], path: str, *, lvis: bool = False,
                      require_annotations: bool = True) -> List[Tuple[Any, str]]:
    """Check a COCO- or LVIS-format annotation dict.

    Errors in the file's structure (sections, images, categories) raise at once. Annotations
    that cannot be trained on or evaluated against (unknown ``image_id`` or ``category_id``,
    no ``bbox``, a box with non-positive width or height or entirely outside its image) are
    returned, for the caller's policy.

    Args:
        data: the parsed file.
        path: the file's name, for messages.
        lvis: check LVIS's fields too (category ``frequency``, image ``neg_category_ids`` and
            ``not_exhaustive_category_ids``).
        require_annotations: whether the file must have a non-empty ``annotations`` list
            (``False`` for image-info files such as COCO test-dev, which are only predicted on).

    Returns:
        list: ``(position in "annotations", problem)`` for each invalid annotation, in file
        order; the problem names the annotation id, the image id and the field.

    Raises:
        AnnotationFileError: the file's structure is wrong.
    """
    _check_sections(data, path, require_annotations)
    category_ids = _check_categories(data, path, lvis)
    image_sizes = _check_images(data, path, lvis)
    invalid = []
    for index, ann in enumerate(data.get('annotations', [])):
        problem = _annotation_problem(ann, image_sizes, category_ids)
        if problem is not None:
            ann_id = ann.get('id') if isinstance(ann, dict) else None
            image_id = ann.get('image_id') if isinstance(ann, dict) else None
            invalid.append((index, f'annotation id {ann_id} (image id {image_id}): {problem}'))
    return invalid


def format_invalid(path: str, invalid: Sequence[Tuple[Any, str]]) -> str:
    """One message for a list of invalid annotations: the count and the first few."""
    lines = [f'Annotation file {path}: {len(invalid)} invalid annotation(s); the first '
             f'{min(len(invalid), FIRST_FEW)}:']
    lines += [f'  {problem}' for _, problem in invalid[:FIRST_FEW]]
    return '\n'.join(lines)


def tiny_boxes(data: Dict[str, Any]) -> List[Any]:
    """Ids of annotations MMDetection ignores without a word (width or height < 1, area <= 0).

    They are valid boxes, so they are not errors; the datasets log their count.
    """
    ids = []
    for ann in data.get('annotations', []):
        _, _, w, h = ann['bbox']
        if w < 1 or h < 1 or ann.get('area', 1) <= 0:
            ids.append(ann.get('id'))
    return ids
