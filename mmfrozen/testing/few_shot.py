"""A small Pascal VOC devkit of any VOC classes, converted by MMDetection's own converter, and
detections on it, for the tests of few-shot detection's novel / base scoring.

:func:`write_voc_devkit` writes ``VOC2007/Annotations/*.xml`` and ``ImageSets/Main/{trainval,
test}.txt`` (no images: the converter reads only the XML), with "difficult" boxes among them;
:func:`convert_voc` runs ``cvt_annotations`` of MMDetection's
``tools/dataset_converters/pascal_voc.py`` in this process, as its command line does for each
split; :func:`voc_detections` draws detections in the per-image form a detector hands a metric.
"""
import importlib.util
import os
import os.path as osp
from typing import Dict, List, Sequence
from xml.etree import ElementTree as ET

import numpy as np

from ..mmdet_tools import mmdet_tool_path

#: Width and height of the devkit's images.
VOC_SIZE = 160


def write_voc_devkit(devkit: str, classes: Sequence[str], num_trainval: int = 30,
                     num_test: int = 24, seed: int = 0) -> str:
    """Write a VOC2007-layout devkit whose objects are of ``classes``.

    Args:
        devkit: the folder to write (``VOCdevkit``).
        classes: the class names to draw objects of (VOC names).
        num_trainval: images of the trainval split.
        num_test: images of the test split.
        seed: seed of the drawing.

    Returns:
        str: ``devkit``.
    """
    rng = np.random.RandomState(seed)
    voc = osp.join(devkit, 'VOC2007')
    for sub in ('Annotations', 'JPEGImages', osp.join('ImageSets', 'Main')):
        os.makedirs(osp.join(voc, sub), exist_ok=True)
    number = 0
    for split, count in (('trainval', num_trainval), ('test', num_test)):
        stems = []
        for _ in range(count):
            number += 1
            stem = f'{number:06d}'
            stems.append(stem)
            root = ET.Element('annotation')
            ET.SubElement(root, 'filename').text = f'{stem}.jpg'
            size = ET.SubElement(root, 'size')
            for key in ('width', 'height'):
                ET.SubElement(size, key).text = str(VOC_SIZE)
            ET.SubElement(size, 'depth').text = '3'
            for _ in range(rng.randint(1, 5)):
                obj = ET.SubElement(root, 'object')
                ET.SubElement(obj, 'name').text = str(classes[rng.randint(len(classes))])
                ET.SubElement(obj, 'difficult').text = str(int(rng.rand() < 0.1))
                w, h = rng.randint(12, 90, size=2)
                x, y = rng.randint(1, VOC_SIZE - w), rng.randint(1, VOC_SIZE - h)
                box = ET.SubElement(obj, 'bndbox')  # VOC boxes are 1-based pixel indices
                for key, value in zip(('xmin', 'ymin', 'xmax', 'ymax'), (x, y, x + w, y + h)):
                    ET.SubElement(box, key).text = str(int(value))
            ET.ElementTree(root).write(osp.join(voc, 'Annotations', f'{stem}.xml'))
        with open(osp.join(voc, 'ImageSets', 'Main', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(stems) + '\n')
    return devkit


def convert_voc(devkit: str, out_dir: str, splits: Sequence[str] = ('trainval', 'test')
                ) -> Dict[str, str]:
    """Convert the devkit's VOC2007 splits to COCO format with MMDetection's converter.

    Returns:
        dict: split -> the written ``voc07_{split}.json`` (ids from 0, difficult boxes as
        ``iscrowd=1``, as the converter writes them).
    """
    spec = importlib.util.spec_from_file_location(
        'mmdet_pascal_voc_converter',
        mmdet_tool_path(osp.join('dataset_converters', 'pascal_voc.py')))
    converter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(converter)
    os.makedirs(out_dir, exist_ok=True)
    out = {}
    for split in splits:
        out[split] = osp.join(out_dir, f'voc07_{split}.json')
        converter.cvt_annotations(devkit, '2007', split, out[split])
    return out


def voc_detections(gt: dict, classes: Sequence[str], seed: int = 0) -> Dict[int, Dict]:
    """Per image of a COCO-format ground truth: jittered copies of most boxes (sometimes under
    another class) and false positives, labels indexing ``classes``, scores multiples of 1/64.

    Returns:
        dict: image id -> ``bboxes`` (xyxy, float32), ``scores``, ``labels``.
    """
    rng = np.random.RandomState(seed)
    name_of = {c['id']: c['name'] for c in gt['categories']}
    preds = {}
    for img in gt['images']:
        boxes: List[List[float]] = []
        labels: List[int] = []
        for ann in gt['annotations']:
            if ann['image_id'] != img['id'] or rng.rand() < 0.2:
                continue
            x, y, w, h = ann['bbox']
            dx, dy = rng.randint(-5, 6, size=2)
            boxes.append([x + dx, y + dy, x + dx + w, y + dy + h])
            label = classes.index(name_of[ann['category_id']])
            labels.append(label if rng.rand() > 0.15 else int(rng.randint(len(classes))))
        for _ in range(3):
            w, h = rng.randint(12, 60, size=2)
            x, y = rng.randint(0, VOC_SIZE - w, size=2)
            boxes.append([x, y, x + w, y + h])
            labels.append(int(rng.randint(len(classes))))
        preds[img['id']] = dict(
            bboxes=np.clip(np.array(boxes, dtype=np.float32), 0, VOC_SIZE),
            scores=rng.randint(1, 64, size=len(boxes)) / 64.0,
            labels=np.array(labels, dtype=np.int64))
    return preds
