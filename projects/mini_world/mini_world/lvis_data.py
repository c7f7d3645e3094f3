"""A long-tailed detection set from the mini world, in LVIS v1 format.

The layout is LVIS v1's (``train2017/``, ``val2017/``, ``annotations/lvis_v1_{train,val}.json``)
and mmdet's ``LVISV1Dataset`` reads it as it is. The vocabulary is a subset of the world's
classes, each given a target number of training images: frequent (more than 100), common
(11-100) and rare (1-10). Every category's ``frequency`` is then derived from the
``image_count`` actually written, with LVIS's thresholds (:func:`frequency_group`).

Per image, as LVIS has them:

- ``neg_category_ids``: vocabulary categories verified absent. The generator knows every
  object it drew, so every absent category is verified: evaluation is exact, not federated
  guesswork.
- ``not_exhaustive_category_ids``: categories with an instance left unannotated. Where an image
  holds several instances of a category, one of them is, with probability
  ``not_exhaustive_prob``, drawn but not annotated, as LVIS annotators sometimes stopped early.

Images may also hold objects of world classes outside the vocabulary, never annotated (the
"background" objects a detector must learn to ignore). The validation split is balanced
(``val_images_per_category`` images per category), so that rare categories have instances
enough to be measured.
"""
import json
import math
import os
import os.path as osp
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Sequence, Tuple

import numpy as np
from mmengine.utils import track_iter_progress
from PIL import Image
from pycocotools import mask as mask_utils

from mmfrozen.evaluation.annotation_stats import frequency_group
from mmfrozen.utils import atomic_write
from .world import ObjectClass, image_rng, render_scene

#: Seed keys of the detection set's random streams (apart from the classification set's).
VOCABULARY_KEY = 10
SPLIT_KEYS = {'train': 11, 'val': 12}
#: Image ids of the val split start here, so that ids are unique across splits, as in LVIS.
VAL_ID_OFFSET = 1_000_000
#: mmdet's LVISV1Dataset takes an image's path from ``coco_url`` minus this prefix.
COCO_URL_PREFIX = 'http://images.cocodataset.org/'


@dataclass(frozen=True)
class LongTailSpec:
    """The shape of the long tail and of the images.

    Attributes:
        num_frequent: categories with more than 100 training images.
        num_common: categories with 11-100 training images.
        num_rare: categories with 1-10 training images.
        frequent_images: ``(min, max)`` training images of a frequent category.
        common_images: ``(min, max)`` for a common category.
        rare_images: ``(min, max)`` for a rare category.
        val_images_per_category: validation images showing each category.
        categories_per_image: mean number of vocabulary categories in an image.
        max_categories_per_image: at most this many categories in an image.
        image_size: side of the square images in pixels.
        extent_range: ``(min, max)`` longer box side of an object in pixels.
        extra_instance_probs: probabilities of 1, 2, 3 instances of a category in an image.
        distractor_prob: probability of an object of a class outside the vocabulary.
        not_exhaustive_prob: probability that an image with several instances of a category
            leaves one unannotated.
    """

    num_frequent: int = 6
    num_common: int = 12
    num_rare: int = 12
    frequent_images: Tuple[int, int] = (110, 200)
    common_images: Tuple[int, int] = (11, 100)
    rare_images: Tuple[int, int] = (1, 10)
    val_images_per_category: int = 20
    categories_per_image: float = 2.5
    max_categories_per_image: int = 4
    image_size: int = 128
    extent_range: Tuple[float, float] = (20.0, 48.0)
    extra_instance_probs: Tuple[float, float, float] = field(default=(0.75, 0.2, 0.05))
    distractor_prob: float = 0.5
    not_exhaustive_prob: float = 0.1

    @property
    def num_categories(self) -> int:
        """Size of the vocabulary."""
        return self.num_frequent + self.num_common + self.num_rare


def _spread(low: int, high: int, count: int) -> List[int]:
    """``count`` integers from ``low`` to ``high``, evenly spread on a log scale."""
    if count <= 0:
        return []
    return [int(round(v)) for v in np.geomspace(low, high, count)]


def choose_vocabulary(classes: Sequence[ObjectClass], spec: LongTailSpec,
                      seed: int) -> Tuple[List[int], List[int]]:
    """Pick the vocabulary and each category's target number of training images.

    Args:
        classes: the world's classes.
        spec: the long tail.
        seed: the world's seed.

    Returns:
        tuple: world class indices of the vocabulary (frequent first, then common, then rare)
        and their target training image counts.
    """
    if spec.num_categories > len(classes):
        raise ValueError(f'the vocabulary ({spec.num_categories} categories) is larger than '
                         f'the world ({len(classes)} classes)')
    order = image_rng(seed, VOCABULARY_KEY).permutation(len(classes))[:spec.num_categories]
    targets = (_spread(*spec.frequent_images, spec.num_frequent)[::-1]
               + _spread(*spec.common_images, spec.num_common)[::-1]
               + _spread(*spec.rare_images, spec.num_rare)[::-1])
    return [int(i) for i in order], targets


def assign_categories(rng: np.random.Generator, targets: Sequence[int], num_images: int,
                      max_per_image: int) -> List[List[int]]:
    """Spread categories over images so that category ``c`` is in exactly ``targets[c]`` images.

    Categories are placed largest first, each into the images that hold fewest so far (ties
    broken at random), so every image gets at least one when ``sum(targets) >= num_images``.

    Args:
        rng: generator.
        targets: images wanted per category.
        num_images: number of images.
        max_per_image: at most this many categories per image.

    Returns:
        list[list[int]]: per image, the categories (indices into ``targets``) it shows.
    """
    if max(targets) > num_images or sum(targets) > num_images * max_per_image:
        raise ValueError(f'cannot place {sum(targets)} category-images (max {max(targets)}) '
                         f'into {num_images} images of at most {max_per_image} categories')
    images: List[List[int]] = [[] for _ in range(num_images)]
    load = np.zeros(num_images)
    for category in np.argsort(-np.asarray(targets), kind='stable'):
        order = np.argsort(load + rng.uniform(0, 0.5, num_images), kind='stable')
        for index in order[:targets[category]]:
            images[index].append(int(category))
            load[index] += 1
    return images


def _polygon_area(polygon: List[float], height: int, width: int) -> float:
    rle = mask_utils.frPyObjects([polygon], height, width)
    return float(mask_utils.area(mask_utils.merge(rle)))


def _render_split(out_root: str, split: str, classes: Sequence[ObjectClass],
                  vocabulary: Sequence[int], image_categories: Sequence[Sequence[int]],
                  spec: LongTailSpec, seed: int) -> Tuple[List[dict], List[dict]]:
    """Draw a split's images and return its LVIS ``images`` and ``annotations``."""
    folder = f'{split}2017'
    os.makedirs(osp.join(out_root, folder), exist_ok=True)
    outside = sorted(set(range(len(classes))) - set(vocabulary))
    category_of = {label: category for category, label in enumerate(vocabulary)}
    images, annotations = [], []
    offset = VAL_ID_OFFSET if split == 'val' else 0
    for index in track_iter_progress(range(len(image_categories))):
        rng = image_rng(seed, SPLIT_KEYS[split], index)
        image_id = offset + index + 1
        categories = list(image_categories[index])
        counts = rng.choice(len(spec.extra_instance_probs), size=len(categories),
                            p=spec.extra_instance_probs) + 1
        # One instance of each category must be drawn; extra ones and distractors may not fit.
        labels = [vocabulary[c] for c in categories]
        for category, count in zip(categories, counts):
            labels += [vocabulary[category]] * int(count - 1)
        if outside and rng.random() < spec.distractor_prob:
            labels.append(int(rng.choice(outside)))
        pixels, placed = render_scene(rng, classes, spec.image_size, labels, spec.extent_range,
                                      required=len(categories))
        file_name = f'{folder}/{image_id:012d}.png'
        Image.fromarray(pixels).save(osp.join(out_root, file_name))

        by_category: Dict[int, List] = {}
        for obj in placed:
            if obj.label in category_of:
                by_category.setdefault(category_of[obj.label], []).append(obj)
        not_exhaustive = []
        for category, objects in sorted(by_category.items()):
            if len(objects) > 1 and rng.random() < spec.not_exhaustive_prob:
                objects.pop()  # drawn, left unannotated
                not_exhaustive.append(category + 1)
            for obj in objects:
                polygon = [round(float(v), 2) for v in obj.polygon.reshape(-1)]
                annotations.append(dict(
                    id=0, image_id=image_id, category_id=category + 1,
                    bbox=[round(v, 2) for v in obj.bbox],
                    area=_polygon_area(polygon, spec.image_size, spec.image_size),
                    segmentation=[polygon]))
        present = set(by_category)
        images.append(dict(
            id=image_id, height=spec.image_size, width=spec.image_size,
            coco_url=COCO_URL_PREFIX + file_name,
            neg_category_ids=[c + 1 for c in range(len(vocabulary)) if c not in present],
            not_exhaustive_category_ids=not_exhaustive))
    return images, annotations


def write_mini_lvis(out_root: str, classes: Sequence[ObjectClass], spec: LongTailSpec,
                    seed: int) -> Dict[str, str]:
    """Render the long-tailed detection set and write it in LVIS v1 format.

    Args:
        out_root: the data root (gets ``train2017/``, ``val2017/``, ``annotations/``).
        classes: the world's classes.
        spec: the long tail and image settings.
        seed: the world's seed.

    Returns:
        dict: paths of the ``train`` and ``val`` annotation files.
    """
    vocabulary, targets = choose_vocabulary(classes, spec, seed)
    train_images = max(math.ceil(sum(targets) / spec.categories_per_image), max(targets))
    val_targets = [spec.val_images_per_category] * len(vocabulary)
    val_images = max(math.ceil(sum(val_targets) / spec.categories_per_image),
                     spec.val_images_per_category)
    splits = {
        'train': assign_categories(image_rng(seed, SPLIT_KEYS['train']), targets, train_images,
                                   spec.max_categories_per_image),
        'val': assign_categories(image_rng(seed, SPLIT_KEYS['val']), val_targets, val_images,
                                 spec.max_categories_per_image),
    }
    rendered = {split: _render_split(out_root, split, classes, vocabulary, image_categories,
                                     spec, seed)
                for split, image_categories in splits.items()}

    train_annotations = rendered['train'][1]
    image_count = [len({a['image_id'] for a in train_annotations if a['category_id'] == c + 1})
                   for c in range(len(vocabulary))]
    instance_count = [sum(a['category_id'] == c + 1 for a in train_annotations)
                      for c in range(len(vocabulary))]
    categories = [{'id': c + 1, 'name': classes[w].name, 'synset': f'mini_world.{classes[w].name}',
                   'synonyms': [classes[w].name], 'def': classes[w].description,
                   'frequency': frequency_group(image_count[c]), 'image_count': image_count[c],
                   'instance_count': instance_count[c]}
                  for c, w in enumerate(vocabulary)]
    info = dict(description='mini-LVIS: a long-tailed detection set rendered by the mini world',
                version='1.0', seed=seed, spec=asdict(spec),
                world_class_index={classes[w].name: w for w in vocabulary})
    os.makedirs(osp.join(out_root, 'annotations'), exist_ok=True)
    paths = {}
    for split, (images, annotations) in rendered.items():
        for ann_id, annotation in enumerate(annotations, start=1):
            annotation['id'] = ann_id + (VAL_ID_OFFSET if split == 'val' else 0)
        path = osp.join(out_root, 'annotations', f'lvis_v1_{split}.json')
        with atomic_write(path) as tmp, open(tmp, 'w') as handle:
            json.dump(dict(info=info, licenses=[], images=images, annotations=annotations,
                           categories=categories), handle)
        paths[split] = path
    return paths
