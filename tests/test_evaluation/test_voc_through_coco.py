"""Pascal VOC's path to stratified evaluation: mmdet's converter to COCO format, then
CocoStratifiedMetric, checked against pycocotools on the converted files. The converter numbers
annotations from 0, so pycocotools runs on the renumbered copy (ids 1..N), as the metric
evaluates it; on the file as converted it would count annotation 0 as never matched."""
import json
import os
import os.path as osp
import subprocess
import sys
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from mmfrozen.testing.stratified import (SIZE, coco_reference, data_samples, reference_json,
                                         write_renumbered)

import mmfrozen  # noqa: F401  registers the metric
from mmdet.evaluation import voc_classes
from mmdet.registry import METRICS
from mmfrozen.mmdet_tools import mmdet_tool_path


def write_voc2007(coco_root: str, devkit: str) -> dict:
    """tiny_coco as a VOCdevkit: its train split as VOC2007 trainval, its val split as test.

    Returns:
        dict: training instances per class name, as written.
    """
    voc = osp.join(devkit, 'VOC2007')
    for sub in ('Annotations', 'JPEGImages', osp.join('ImageSets', 'Main')):
        os.makedirs(osp.join(voc, sub), exist_ok=True)
    train_counts: dict = {}
    for src, split in (('train', 'trainval'), ('val', 'test')):
        with open(osp.join(coco_root, 'annotations', f'instances_{src}2017.json')) as f:
            data = json.load(f)
        names = {c['id']: c['name'] for c in data['categories']}
        stems = []
        for img in data['images']:
            stem = f'{src}_{img["id"]:06d}'
            stems.append(stem)
            root = ET.Element('annotation')
            size = ET.SubElement(root, 'size')
            for key in ('width', 'height'):
                ET.SubElement(size, key).text = str(img[key])
            for ann in data['annotations']:
                if ann['image_id'] != img['id']:
                    continue
                obj = ET.SubElement(root, 'object')
                ET.SubElement(obj, 'name').text = names[ann['category_id']]
                ET.SubElement(obj, 'difficult').text = '0'
                box = ET.SubElement(obj, 'bndbox')
                x, y, w, h = ann['bbox']
                # VOC boxes are 1-based pixel indices
                for key, value in zip(('xmin', 'ymin', 'xmax', 'ymax'),
                                      (x + 1, y + 1, x + w + 1, y + h + 1)):
                    ET.SubElement(box, key).text = str(int(round(value)))
                if split == 'trainval':
                    name = names[ann['category_id']]
                    train_counts[name] = train_counts.get(name, 0) + 1
            ET.ElementTree(root).write(osp.join(voc, 'Annotations', f'{stem}.xml'))
        with open(osp.join(voc, 'ImageSets', 'Main', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(stems) + '\n')
    return train_counts


@pytest.fixture(scope='module')
def voc_coco_files(tiny_coco, tmp_path_factory):
    devkit = str(tmp_path_factory.mktemp('VOCdevkit'))
    train_counts = write_voc2007(tiny_coco, devkit)
    out_dir = osp.join(devkit, 'coco_format')
    proc = subprocess.run([
        sys.executable,
        mmdet_tool_path(osp.join('dataset_converters', 'pascal_voc.py')), devkit, '-o', out_dir,
        '--out-format', 'coco'
    ], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return (osp.join(out_dir, 'voc07_test.json'), osp.join(out_dir,
                                                           'voc07_trainval.json'), train_counts)


def predictions(val_path: str, seed: int = 0) -> dict:
    """Jittered copies of most ground-truth boxes plus false positives, VOC label indices."""
    with open(val_path) as f:
        val = json.load(f)
    label_of = {c['id']: voc_classes().index(c['name']) for c in val['categories']}
    rng = np.random.RandomState(seed)
    preds = {}
    for img in val['images']:
        boxes, labels = [], []
        for ann in val['annotations']:
            if ann['image_id'] == img['id'] and rng.rand() > 0.2:
                x, y, w, h = ann['bbox']
                dx, dy = rng.randint(-4, 5, size=2)
                boxes.append([x + dx, y + dy, x + dx + w, y + dy + h])
                labels.append(label_of[ann['category_id']])
        for _ in range(2):
            x, y = rng.randint(0, SIZE - 40, size=2)
            boxes.append([x, y, x + 30, y + 30])
            labels.append(int(rng.choice([14, 1, 6])))  # person, bicycle, car
        n = len(boxes)
        preds[img['id']] = dict(
            bboxes=np.array(boxes, dtype=np.float32),
            scores=rng.permutation(np.arange(1, n + 1)) / 64.0,
            labels=np.array(labels, dtype=np.int64),
            masks=np.zeros((n, SIZE, SIZE), dtype=bool))
    return preds


def test_voc_through_coco_format_equals_pycocotools(voc_coco_files, tmp_path):
    val_path, train_path, train_counts = voc_coco_files
    preds = predictions(val_path)
    metric = METRICS.build(
        dict(
            type='CocoStratifiedMetric',
            ann_file=val_path,
            train_ann_file=train_path,
            metric=['bbox'],
            out_dir=str(tmp_path)))
    metric.dataset_meta = dict(classes=voc_classes())
    samples = data_samples(preds)
    metric.process({}, samples)
    results = metric.evaluate(len(samples))

    with open(val_path) as f:
        assert min(a['id'] for a in json.load(f)['annotations']) == 0  # the converter's ids
    renumbered = write_renumbered(val_path, str(tmp_path / 'renumbered.json'))
    ref = coco_reference(renumbered, reference_json(preds, val_path, 'bbox'), 'bbox')
    assert results['coco/bbox_AP_exact'] == pytest.approx(ref.stats[0], abs=1e-9)
    assert results['coco/bbox_AP50_exact'] == pytest.approx(ref.stats[1], abs=1e-9)
    assert results['coco/bbox_mAP'] == float(f'{round(ref.stats[0], 3)}')  # CocoMetric's

    # per-class AP from pycocotools' precision array (all areas, 100 detections)
    cat_ids = ref.params.catIds
    with open(val_path) as f:
        name_of = {c['id']: c['name'] for c in json.load(f)['categories']}
    per_class = {}
    for k, cat_id in enumerate(cat_ids):
        precision = ref.eval['precision'][:, :, k, 0, -1]
        valid = precision[precision > -1]
        if valid.size:
            per_class[name_of[cat_id]] = float(valid.mean())
    assert set(per_class) == set(train_counts) == {'person', 'bicycle', 'car'}

    with open(tmp_path / 'summary.json') as f:
        summary = json.load(f)
    with open(tmp_path / 'bbox_per_class.json') as f:
        rows = {row['name']: row for row in json.load(f)}
    for name, count in train_counts.items():
        assert rows[name]['train_instances'] == count
        assert rows[name]['AP'] == pytest.approx(per_class[name], abs=1e-9)
    bins = summary['bbox']['bins']
    # the three drawn classes have 11-100 training boxes; the other 17 VOC classes none
    assert all(1 <= c <= 100 for c in train_counts.values())
    evaluated = {label: b for label, b in bins.items() if b['AP'] is not None}
    expected = {}
    for name, count in train_counts.items():
        label = '1-10' if count <= 10 else '11-100'
        expected.setdefault(label, []).append(per_class[name])
    assert set(evaluated) == set(expected)
    for label, aps in expected.items():
        assert evaluated[label]['AP'] == pytest.approx(np.mean(aps), abs=1e-9)
    assert bins['0']['num_classes'] == 17 and bins['0']['AP'] is None
