"""Read the K-shot sets that the protocol's authors published, as COCO-format sets.

TFA (Wang et al., 2020) published its groups of shots, the first of them those of earlier work
(``http://dl.yf.io/fs-det/datasets/``):

* Pascal VOC, ``vocsplit/[seed{S}/]box_{K}shot_{class}_train.txt``: one image a line
  (``datasets/VOC2007/JPEGImages/000005.jpg``); the listed images may hold more than K instances
  of the class, and TFA's loader then keeps K of them at random;
* COCO, ``cocosplit/[seed{S}/]full_box_{K}shot_{class}_trainval.json``: the images and exactly
  K annotations of the class (COCO 2014 image ids, which are COCO 2017's).

:func:`read_published_shots` turns one group into the same COCO-format set as
:func:`~mmfrozen.datasets.few_shot_sampler.sample_k_shot` writes, taken from the user's own
training file (MMDetection's VOC conversion ``voc0712_trainval.json``, or COCO's
``instances_train2017.json``), so that its image entries, file names and annotation fields are
those the configs read: for each class, the counted instances
(:func:`~mmfrozen.datasets.few_shot_sampler.counts`) of the class in the listed images (COCO:
the listed annotations themselves); where there are more than K, K of them drawn with the
class's seeded stream (:func:`~mmfrozen.datasets.few_shot_sampler.class_rng`), the others left
out, as TFA's loader leaves them; crowd regions of the class in those images kept as ignored
regions. Fewer than K is reported, not refused (the lists count VOC's "difficult" boxes, which
train only as ignored regions here).
"""
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .few_shot_sampler import (DEFAULT_MIN_SIZE, FewShotSamplingError, category_ids_by_name,
                               class_rng, counts, few_shot_set)


def list_file(list_dir: str, shots: int, name: str) -> str:
    """The published file of one class and K in ``list_dir`` (VOC's ``.txt`` or COCO's
    ``.json``).

    Raises:
        FileNotFoundError: neither exists; the message names both.
    """
    candidates = [osp.join(list_dir, f'box_{shots}shot_{name}_train.txt'),
                  osp.join(list_dir, f'full_box_{shots}shot_{name}_trainval.json')]
    for path in candidates:
        if osp.isfile(path):
            return path
    raise FileNotFoundError(f'no published {shots}-shot list of class {name!r} in {list_dir}: '
                            f'neither {osp.basename(candidates[0])} (VOC) nor '
                            f'{osp.basename(candidates[1])} (COCO).')


def _image_index(data: Dict[str, Any]) -> Dict[str, Any]:
    """Image ids of the training file by ``file_name``, by its last three path parts
    (``VOC2007/JPEGImages/000005.jpg``) and by its base name where that is unique."""
    index: Dict[str, Any] = {}
    basenames: Dict[str, List[Any]] = {}
    for img in data['images']:
        name = str(img.get('file_name', '')).replace('\\', '/')
        index[name] = img['id']
        index['/'.join(name.split('/')[-3:])] = img['id']
        basenames.setdefault(name.split('/')[-1], []).append(img['id'])
    for base, ids in basenames.items():
        if len(ids) == 1:
            index.setdefault(base, ids[0])
    return index


def _listed_images(path: str, index: Dict[str, Any], train_source: str) -> List[Any]:
    """The training file's image ids of the images a VOC ``.txt`` list names, in list order."""
    out = []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, start=1):
            entry = line.strip().replace('\\', '/')
            if not entry:
                continue
            keys = ['/'.join(entry.split('/')[-3:]), entry.split('/')[-1]]
            found = next((index[k] for k in keys if k in index), None)
            if found is None:
                raise FewShotSamplingError(
                    f'{path}, line {number}: image {entry!r} is not among the "images" of '
                    f'{train_source} (matched by "file_name": {keys[0]!r} or {keys[1]!r}). '
                    'Is it the training file of the same data set (e.g. voc0712_trainval.json '
                    "from MMDetection's pascal_voc.py)?")
            if found not in out:
                out.append(found)
    return out


def _listed_annotations(path: str, data: Dict[str, Any], cat_id: Any, name: str,
                        train_source: str) -> List[int]:
    """Positions in the training file of the annotations a COCO ``.json`` shot file lists."""
    with open(path, encoding='utf-8') as f:
        shot_file = json.load(f)
    positions = {ann['id']: i for i, ann in enumerate(data['annotations'])}
    out = []
    for ann in shot_file.get('annotations', []):
        if ann.get('id') not in positions:
            raise FewShotSamplingError(
                f'{path}: annotation id {ann.get("id")!r} (field "id") is not among the '
                f'"annotations" of {train_source}. Is it the COCO training file '
                '(instances_train2017.json)?')
        position = positions[ann['id']]
        if data['annotations'][position]['category_id'] != cat_id:
            raise FewShotSamplingError(
                f'{path}: annotation id {ann["id"]} is of category id '
                f'{data["annotations"][position]["category_id"]} in {train_source}, not of '
                f'{name!r} (id {cat_id}).')
        out.append(position)
    return out


def read_published_shots(data: Dict[str, Any], list_dir: str, shots: int, seed: int = 0,
                         classes: Optional[Sequence[str]] = None,
                         source: str = 'annotation file',
                         min_size: int = DEFAULT_MIN_SIZE) -> Tuple[Dict[str, Any],
                                                                    Dict[str, int]]:
    """One published group of K shots as a COCO-format set (module doc).

    Args:
        data: the checked training annotation dict the lists refer to.
        list_dir: the folder of one group's files (``vocsplit/seed1``, ``cocosplit/seed1``).
        shots: K.
        seed: draws the K instances of a class whose listed images hold more.
        classes: the classes to read (default: every category of ``data``).
        source: the training file, for messages and ``info.few_shot``.
        min_size: images whose shorter side is smaller are left out (the configs' filter).

    Returns:
        tuple: the set, and the counted instances of each class in it.

    Raises:
        FileNotFoundError: a class has no list file.
        FewShotSamplingError: a listed image or annotation is not in ``data``.
    """
    images = {img['id']: img for img in data['images']}
    index = _image_index(data)
    by_image: Dict[Any, List[int]] = {}
    for position, ann in enumerate(data['annotations']):
        by_image.setdefault(ann['image_id'], []).append(position)
    keep: List[int] = []
    found: Dict[str, int] = {}
    files: Dict[str, str] = {}
    for cat_id, name in category_ids_by_name(data, classes, source):
        path = list_file(list_dir, shots, name)
        files[name] = osp.basename(path)
        if path.endswith('.json'):
            listed = _listed_annotations(path, data, cat_id, name, source)
        else:
            listed = [p for image_id in _listed_images(path, index, source)
                      for p in by_image.get(image_id, [])
                      if data['annotations'][p]['category_id'] == cat_id]
        counted, regions = [], []
        for position in listed:
            ann = data['annotations'][position]
            image = images[ann['image_id']]
            if min(image['width'], image['height']) < min_size:
                continue
            (counted if counts(ann, image) else regions).append(position)
        if len(counted) > shots:  # TFA's loader keeps K of them at random
            chosen = class_rng(seed, name).choice(len(counted), size=shots, replace=False)
            counted = [counted[i] for i in sorted(chosen)]
        kept_images = {data['annotations'][p]['image_id'] for p in counted}
        regions = [p for p in regions if data['annotations'][p]['image_id'] in kept_images]
        keep += counted + regions
        found[name] = len(counted)
    record = dict(shots=int(shots), seed=int(seed), source=source, min_size=int(min_size),
                  classes=list(found), published_lists=list_dir,
                  list_files=files, instances_per_class=found,
                  sampler='mmfrozen.datasets.few_shot_lists')
    return few_shot_set(data, sorted(set(keep)), record), found
