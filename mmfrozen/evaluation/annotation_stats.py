"""Per-class training statistics of a COCO or LVIS annotation file, and LVIS frequency groups.

The paper bins classes by how much training data they have. The counts come from the
*training* annotation file: ``train_images`` is the number of images with at least one
annotation of the class, ``train_instances`` the number of its annotations. LVIS frequency
groups are those of the paper and of lvis-api: rare = 1-10 training images, common = 11-100,
frequent = more than 100.
"""
import json
import warnings
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

FREQUENCY_GROUPS = ('r', 'c', 'f')


@dataclass
class CategoryStats:
    """Training statistics of one category.

    Attributes:
        category_id: the category's id in the annotation files.
        name: the category's name.
        train_images: training images with at least one annotation of the category.
        train_instances: training annotations of the category.
        frequency: frequency group, ``'r'``, ``'c'`` or ``'f'``.
    """
    category_id: int
    name: str
    train_images: int
    train_instances: int
    frequency: str

    def to_dict(self) -> Dict[str, Any]:
        """The statistics as a plain dict (for JSON)."""
        return asdict(self)


def load_annotation_file(path: str) -> Dict[str, Any]:
    """Read a COCO/LVIS-format annotation file and check its top-level fields.

    Args:
        path: the JSON file.

    Returns:
        dict: the parsed file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not JSON, or lacks ``images``, ``annotations`` or
            ``categories``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Annotation file {path!r} does not exist.')
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f'Annotation file {path!r} is not valid JSON: {err}') from err
    if not isinstance(data, dict):
        raise ValueError(f'Annotation file {path!r}: expected a JSON object with fields '
                         f'"images", "annotations", "categories", got {type(data).__name__}.')
    for field in ('images', 'annotations', 'categories'):
        if field not in data:
            raise ValueError(f'Annotation file {path!r} has no field "{field}".')
    return data


def frequency_group(image_count: int) -> str:
    """The LVIS frequency group of a class seen in ``image_count`` training images.

    A class with no training image counts as rare: lvis-api needs every class in a group.

    Args:
        image_count: the number of training images of the class.

    Returns:
        str: ``'r'`` (at most 10), ``'c'`` (11-100) or ``'f'`` (more than 100).
    """
    if image_count <= 10:
        return 'r'
    if image_count <= 100:
        return 'c'
    return 'f'


def ensure_frequency(categories: List[Dict[str, Any]],
                     source: str,
                     train_images: Optional[Dict[int, int]] = None) -> bool:
    """Give every LVIS category a ``frequency`` field, computing missing ones in place.

    A missing ``frequency`` is computed from the category's ``image_count`` (the number of
    training images, as LVIS files carry it), else from ``train_images``, with a warning.

    Args:
        categories: the ``categories`` list of an LVIS file (edited in place).
        source: the file the categories come from, for messages.
        train_images: training images per category id, used when ``image_count`` is missing.

    Returns:
        bool: whether any frequency was computed.

    Raises:
        ValueError: a category has a bad ``frequency``, or neither ``frequency``,
            ``image_count`` nor a training count.
    """
    computed = []
    for cat in categories:
        freq = cat.get('frequency')
        if freq is not None:
            if freq not in FREQUENCY_GROUPS:
                raise ValueError(f'Annotation file {source!r}: category {cat.get("id")} has '
                                 f'field "frequency" = {freq!r}; expected one of r, c, f.')
            continue
        if 'image_count' in cat:
            count = int(cat['image_count'])
        elif train_images is not None:
            count = int(train_images.get(cat['id'], 0))
        else:
            raise ValueError(
                f'Annotation file {source!r}: category {cat.get("id")} has neither field '
                '"frequency" nor "image_count"; pass the training annotation file '
                '(train_ann_file) so that it can be counted.')
        cat['frequency'] = frequency_group(count)
        computed.append(cat['id'])
    if computed:
        warnings.warn(
            f'Annotation file {source!r}: {len(computed)} categories have no field '
            '"frequency"; computed it from "image_count" (or the training annotations) as '
            'r = 1-10, c = 11-100, f = >100 training images.',
            UserWarning,
            stacklevel=2)
    return bool(computed)


def check_lvis_images(images: List[Dict[str, Any]], source: str, owner: str) -> None:
    """Check that every image has LVIS's federated lists, as lvis-api reads them.

    Without them lvis-api fails with a bare ``KeyError``, and a detection's federated rule
    (count it only for classes known present or absent) is undefined.

    Args:
        images: the ``images`` of an LVIS-format file.
        source: the file, for messages.
        owner: who checks, for messages.

    Raises:
        KeyError: naming the file, the first image without a list and the field (lvis-api's
            type of error).
    """
    for img in images:
        for key in ('neg_category_ids', 'not_exhaustive_category_ids'):
            if not isinstance(img.get(key), list):
                raise KeyError(
                    f'{owner}: image id {img.get("id")} of ann_file {source!r} has no list '
                    f'"{key}"; LVIS files give every image "neg_category_ids" and '
                    '"not_exhaustive_category_ids" (empty lists where none).')


def category_stats(train_ann_file: str,
                   categories: Optional[List[Dict[str, Any]]] = None) -> Dict[int, CategoryStats]:
    """Count each category's training images and instances.

    Args:
        train_ann_file: the training annotation file (COCO or LVIS format).
        categories: the categories to report (e.g. those of the evaluation file); defaults to
            the training file's. A category absent from the training file counts 0. The
            frequency group is the category's ``frequency`` field where it has one (LVIS),
            else computed from the counted training images.

    Returns:
        dict: :class:`CategoryStats` per category id.
    """
    data = load_annotation_file(train_ann_file)
    images: Dict[int, set] = {}
    instances: Dict[int, int] = {}
    for i, ann in enumerate(data['annotations']):
        try:
            cat_id, img_id = ann['category_id'], ann['image_id']
        except KeyError as err:
            raise ValueError(f'Annotation file {train_ann_file!r}: annotations[{i}] has no '
                             f'field {err.args[0]!r}.') from err
        images.setdefault(cat_id, set()).add(img_id)
        instances[cat_id] = instances.get(cat_id, 0) + 1
    if categories is None:
        categories = data['categories']
    train_cats = {c['id']: c for c in data['categories']}
    # Match by name where both files name the category (ids may differ, e.g. ground truth
    # converted from a data set numbers its classes from 0), else by id.
    train_id_of_name = {c.get('name'): c['id'] for c in data['categories'] if c.get('name')}
    stats = {}
    for cat in categories:
        cat_id = cat['id']
        train_id = train_id_of_name.get(cat.get('name'), cat_id)
        num_images = len(images.get(train_id, ()))
        freq = cat.get('frequency') or train_cats.get(train_id, {}).get('frequency')
        stats[cat_id] = CategoryStats(
            category_id=cat_id,
            name=str(cat.get('name', cat_id)),
            train_images=num_images,
            train_instances=instances.get(train_id, 0),
            frequency=freq if freq in FREQUENCY_GROUPS else frequency_group(num_images))
    return stats


def categories_have_counts(categories: List[Dict[str, Any]]) -> bool:
    """Whether every category carries ``image_count`` and ``instance_count`` (LVIS v1's do)."""
    return bool(categories) and all('image_count' in cat and 'instance_count' in cat
                                    for cat in categories)


def stats_from_categories(categories: List[Dict[str, Any]],
                          source: str,
                          owner: str = 'The metric') -> Dict[int, CategoryStats]:
    """Training statistics from the categories' own ``image_count`` and ``instance_count``.

    LVIS v1's official files give every category these counts, counted on the training set
    (the train and val files list the same categories), so the val file alone is enough.

    Args:
        categories: the ``categories`` of an LVIS-format file.
        source: the file, for messages.
        owner: who asks, for messages.

    Raises:
        ValueError: a category lacks a count; names the file and both ways out.
    """
    stats = {}
    for cat in categories:
        missing = [k for k in ('image_count', 'instance_count') if k not in cat]
        if missing:
            raise ValueError(
                f'{owner}: category {cat.get("id")} of ann_file {source!r} has no field '
                f'"{missing[0]}", and no train_ann_file is given: set train_ann_file (the '
                'training annotation file, where the per-class counts come from) or use an '
                'annotation file whose categories have "image_count" and "instance_count" '
                "(LVIS v1's official files do).")
        images = int(cat['image_count'])
        freq = cat.get('frequency')
        stats[cat['id']] = CategoryStats(
            category_id=cat['id'],
            name=str(cat.get('name', cat['id'])),
            train_images=images,
            train_instances=int(cat['instance_count']),
            frequency=freq if freq in FREQUENCY_GROUPS else frequency_group(images))
    return stats
