"""Draw K-shot training sets from a COCO-format annotation file, deterministically by seed.

The K-shot stage of the few-shot protocol trains on K annotated instances of every class
(:mod:`~mmfrozen.datasets.few_shot_splits`). :func:`sample_k_shot` draws them the way TFA's
``prepare_coco_few_shot.py`` does, made exact and reproducible:

1. An instance *counts* when MMDetection's ``CocoDataset`` trains on it (:func:`counts`): not a
   crowd region (VOC's "difficult" boxes, which MMDetection's converter writes as
   ``iscrowd=1``), not ``ignore``, its box at least 1x1 pixel with a positive area and inside
   its image. Images smaller than ``min_size`` pixels (the configs' ``filter_cfg``) are left
   out.
2. For each class on its own, the images holding at least one counted instance of it, in image
   id order, are shuffled by NumPy's legacy ``RandomState`` seeded with ``[seed, crc32(class
   name)]`` (a frozen stream: the same files on any machine and NumPy version).
3. Going through them in that order, an image is taken when all its counted instances of the
   class still fit in K; the class is done when exactly K are taken. If no order of the
   remaining images can reach K exactly (too few instances, or only images with too many) the
   greedy pass fails and :class:`FewShotSamplingError` names the class.
4. A taken image keeps every annotation of that class (its crowd regions too, which train as
   ignored regions, as in the full set); an image taken for several classes keeps each one's.
   The other objects in a taken image are not annotated, as in TFA's sets.

The result is a COCO-format dict: the taken images and annotations as the source has them (ids,
fields, order), every category of the source (so labels are numbered as in the full set), and
``info.few_shot`` recording how it was drawn. The same source, K, seed and classes always give
the same dict, byte for byte once written by :func:`dump_coco`.
"""
import json
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils import atomic_write
from .annotation_check import (AnnotationFileError, check_annotations, format_invalid,
                               read_annotation_file)

#: The configs' ``filter_cfg.min_size``: smaller images are never trained on.
DEFAULT_MIN_SIZE = 32


class FewShotSamplingError(ValueError):
    """A K-shot set cannot be drawn as asked; the message names the file and the class."""


def read_checked(path: str) -> Dict[str, Any]:
    """Read a COCO-format annotation file and check it as the checked datasets do.

    Args:
        path: the JSON file.

    Returns:
        dict: its content.

    Raises:
        AnnotationFileError: naming the file, the id and the field of what is wrong.
    """
    data = read_annotation_file(path)
    invalid = check_annotations(data, path)
    if invalid:
        raise AnnotationFileError(format_invalid(path, invalid))
    return data


def counts(ann: Dict[str, Any], image: Dict[str, Any]) -> bool:
    """Whether MMDetection's ``CocoDataset`` trains on this annotation as an instance.

    Args:
        ann: a COCO annotation.
        image: its image's entry (``width``, ``height``).

    Returns:
        bool: False for crowd regions, ``ignore`` annotations and the boxes ``CocoDataset``
        drops (outside the image, under 1 pixel wide or high, area 0 or less).
    """
    if ann.get('iscrowd', 0) or ann.get('ignore', False):
        return False
    x, y, w, h = ann['bbox']
    inter_w = max(0, min(x + w, image['width']) - max(x, 0))
    inter_h = max(0, min(y + h, image['height']) - max(y, 0))
    return inter_w * inter_h > 0 and ann.get('area', w * h) > 0 and w >= 1 and h >= 1


def class_rng(seed: int, name: str) -> np.random.RandomState:
    """The random stream of one class: NumPy's legacy (frozen) generator on
    ``[seed, crc32(name)]``, so that each class's draw depends only on the seed and its name."""
    if int(seed) < 0:
        raise ValueError(f'seed must be 0 or more, got {seed}.')
    return np.random.RandomState([int(seed), zlib.crc32(name.encode('utf-8'))])


def category_ids_by_name(data: Dict[str, Any], classes: Optional[Sequence[str]],
                         source: str) -> List[Tuple[int, str]]:
    """``(category id, name)`` of ``classes`` (default: every category), in file order.

    Raises:
        FewShotSamplingError: a class is not among the file's categories.
    """
    by_name = {cat['name']: cat['id'] for cat in data['categories']}
    if classes is None:
        return [(cat['id'], cat['name']) for cat in data['categories']]
    missing = [name for name in classes if name not in by_name]
    if missing:
        raise FewShotSamplingError(
            f'{source}: classes {missing} are not among its "categories" (field "name"); it '
            f'has {sorted(by_name)}.')
    wanted = set(classes)
    return [(cat['id'], cat['name']) for cat in data['categories'] if cat['name'] in wanted]


def _instances_by_image(data: Dict[str, Any], min_size: int) -> Dict[int, Dict[Any, List[int]]]:
    """Per category id, per image id: the positions in ``annotations`` of its counted
    instances (images smaller than ``min_size`` left out)."""
    images = {img['id']: img for img in data['images']}
    out: Dict[int, Dict[Any, List[int]]] = {}
    for index, ann in enumerate(data['annotations']):
        image = images[ann['image_id']]
        if min(image['width'], image['height']) < min_size or not counts(ann, image):
            continue
        out.setdefault(ann['category_id'], {}).setdefault(ann['image_id'], []).append(index)
    return out


def draw_images(per_image: Dict[Any, List[int]], shots: int, rng: np.random.RandomState,
                what: str) -> List[Any]:
    """The images of one class to take: shuffled, then greedily while their counted
    instances fit in ``shots``, until exactly ``shots``.

    Args:
        per_image: counted instances of the class, by image id.
        shots: K.
        rng: the class's random stream.
        what: the class and file, for messages.

    Returns:
        list: the taken image ids, in the order drawn.

    Raises:
        FewShotSamplingError: the greedy pass cannot reach exactly ``shots``.
    """
    candidates = sorted(per_image)
    order = rng.permutation(len(candidates))
    taken, total = [], 0
    for position in order:
        image_id = candidates[position]
        count = len(per_image[image_id])
        if total + count <= shots:
            taken.append(image_id)
            total += count
            if total == shots:
                return taken
    available = sum(len(v) for v in per_image.values())
    if available < shots:
        raise FewShotSamplingError(
            f'{what}: cannot take exactly {shots} instances: it has only {available} counted '
            f'instances (in {len(candidates)} images). Use a smaller K, or leave the class out '
            '(classes=...).')
    raise FewShotSamplingError(
        f'{what}: this seed\'s greedy pass cannot take exactly {shots} instances: after '
        f'taking {total}, every image left holds more than the {shots - total} still needed '
        f'({available} counted instances in {len(candidates)} images). Try another seed, a '
        'smaller K, or leave the class out (classes=...).')


def sample_k_shot(data: Dict[str, Any], shots: int, seed: int,
                  classes: Optional[Sequence[str]] = None, source: str = 'annotation file',
                  min_size: int = DEFAULT_MIN_SIZE) -> Dict[str, Any]:
    """Draw a K-shot set: exactly ``shots`` counted instances of each class (module doc).

    Args:
        data: a checked COCO-format annotation dict (:func:`read_checked`).
        shots: K, at least 1.
        seed: the group's seed (0 or more); each seed draws another group.
        classes: the classes to draw, by name (default: every category of ``data``; TFA's
            generalized setting draws K of every class, base and novel).
        source: the file ``data`` was read from, for messages and ``info.few_shot``.
        min_size: images whose shorter side is smaller are left out (the configs' filter).

    Returns:
        dict: the K-shot set in COCO format.

    Raises:
        FewShotSamplingError: a class cannot get exactly ``shots`` instances, or is unknown.
    """
    if int(shots) < 1:
        raise ValueError(f'shots (K) must be at least 1, got {shots}.')
    wanted = category_ids_by_name(data, classes, source)
    instances = _instances_by_image(data, min_size)
    by_image: Dict[Any, List[int]] = {}
    for index, ann in enumerate(data['annotations']):
        by_image.setdefault(ann['image_id'], []).append(index)
    keep, drawn = set(), {}
    for cat_id, name in wanted:
        taken = draw_images(instances.get(cat_id, {}), int(shots), class_rng(seed, name),
                            f'{source}: class {name!r} (category id {cat_id})')
        drawn[name] = taken
        for image_id in taken:  # every annotation of the class there, crowd regions included
            keep.update(i for i in by_image[image_id]
                        if data['annotations'][i]['category_id'] == cat_id)
    record = dict(shots=int(shots), seed=int(seed), source=source, min_size=int(min_size),
                  classes=[name for _, name in wanted], images_per_class=drawn,
                  sampler='mmfrozen.datasets.few_shot_sampler')
    return few_shot_set(data, sorted(keep), record)


def few_shot_set(data: Dict[str, Any], annotation_positions: Sequence[int],
                 record: Dict[str, Any]) -> Dict[str, Any]:
    """The COCO-format set of the chosen annotations (by position in ``data['annotations']``):
    their images in id order, every category, ``info.few_shot = record``."""
    anns = [data['annotations'][i] for i in sorted(annotation_positions)]
    image_ids = {ann['image_id'] for ann in anns}
    images = sorted((img for img in data['images'] if img['id'] in image_ids),
                    key=lambda img: img['id'])
    info = dict(data['info']) if isinstance(data.get('info'), dict) else {}
    info['few_shot'] = record
    out = dict(info=info, images=images, annotations=anns, categories=data['categories'])
    if 'licenses' in data:
        out['licenses'] = data['licenses']
    return out


def instance_counts(data: Dict[str, Any], min_size: int = DEFAULT_MIN_SIZE) -> Dict[str, int]:
    """Counted instances (:func:`counts`) of each category of a COCO-format dict, by name."""
    per = _instances_by_image(data, min_size)
    return {cat['name']: sum(len(v) for v in per.get(cat['id'], {}).values())
            for cat in data['categories']}


def dump_coco(data: Dict[str, Any], path: str) -> None:
    """Write a COCO-format dict as JSON, keys in their order, no spaces (deterministic bytes),
    through a temporary file renamed into place (never a half-written set)."""
    with atomic_write(path) as tmp:
        with open(tmp, 'w', encoding='utf-8') as f:
            json.dump(data, f, separators=(',', ':'), ensure_ascii=False)
