"""Bad annotation files and images are errors naming the file, the id and the field.

The checked datasets (``CheckedCocoDataset``, ``CheckedLVISV1Dataset``) against copies of the tiny
COCO set with one fault each; on valid files they load exactly what MMDetection's own datasets
load. Also through tools/train.py and tools/test.py.
"""
import copy
import logging
import os
import os.path as osp
import shutil

import pytest
from mmdet.registry import DATASETS
from mmdet.utils import register_all_modules
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from torch.utils.data import DataLoader

import mmfrozen  # noqa: F401  registers the checked datasets
from mmfrozen.testing import TINY_FASTER_RCNN
from mmfrozen.testing.runs import dump_json, load_json
from mmfrozen.datasets import AnnotationFileError, ImageFileError

register_all_modules(init_default_scope=True)

CLASSES = ('person', 'bicycle', 'car')
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs')]


@pytest.fixture(scope='module')
def train_ann(tiny_coco):
    return load_json(osp.join(tiny_coco, 'annotations', 'instances_train2017.json'))


def lvis_of(coco: dict) -> dict:
    """The tiny COCO annotations as an LVIS v1 file (frequencies, federated image fields)."""
    lvis = copy.deepcopy(coco)
    for img in lvis['images']:
        img.update(coco_url=f'http://images.cocodataset.org/train2017/{img["file_name"]}',
                   neg_category_ids=[], not_exhaustive_category_ids=[])
    for cat in lvis['categories']:
        cat.update(frequency='f', synonyms=[cat['name']], image_count=1, instance_count=1)
    return lvis


def build(root, ann: dict, kind='CheckedCocoDataset', name='ann.json', **kwargs):
    ann_file = dump_json(ann, osp.join(str(root), name)) if ann is not None else \
        osp.join(str(root), name)
    return DATASETS.build(dict(
        type=kind, data_root=kwargs.pop('data_root', ''), ann_file=ann_file,
        data_prefix=dict(img=kwargs.pop('img_prefix', '')), metainfo=dict(classes=CLASSES),
        pipeline=PIPELINE, **kwargs))


def broken(ann: dict, fault: str) -> dict:
    ann = copy.deepcopy(ann)
    first = ann['annotations'][0]
    if fault == 'negative width':
        first['bbox'][2] = -5.0
    elif fault == 'zero height':
        first['bbox'][3] = 0
    elif fault == 'outside the image':
        first['bbox'] = [300.0, 10.0, 20.0, 20.0]
    elif fault == 'unknown category':
        first['category_id'] = 99
    elif fault == 'unknown image':
        first['image_id'] = 999
    elif fault == 'no bbox':
        del first['bbox']
    elif fault in ('images', 'annotations', 'categories'):
        del ann[fault]
    elif fault == 'no images':
        ann['images'] = []
    elif fault == 'no annotations':
        ann['annotations'] = []
    return ann


@pytest.mark.parametrize('fault, expected', [
    ('negative width', 'annotation id 1 (image id 1): "bbox" [{x}, {y}, -5.0, {h}] has '
     'non-positive width or height'),
    ('zero height', 'annotation id 1 (image id 1): "bbox"'),
    ('outside the image', 'annotation id 1 (image id 1): "bbox" [300.0, 10.0, 20.0, 20.0] lies '
     'outside the 128x128 image'),
    ('unknown category', 'annotation id 1 (image id 1): "category_id" 99 is not among the '
     'categories'),
    ('unknown image', 'annotation id 1 (image id 999): "image_id" 999 is not among the images'),
    ('no bbox', 'annotation id 1 (image id 1): no "bbox" field'),
    ('annotations', 'no "annotations" field'),
    ('images', 'no "images" field'),
    ('categories', 'no "categories" field'),
    ('no images', '"images" is empty'),
    ('no annotations', '"annotations" is empty'),
])
def test_bad_coco_annotations_name_file_id_and_field(tmp_path, train_ann, fault, expected):
    x, y, _, h = train_ann['annotations'][0]['bbox']
    with pytest.raises(AnnotationFileError) as err:
        build(tmp_path, broken(train_ann, fault))
    message = str(err.value)
    assert f'Annotation file {tmp_path / "ann.json"}' in message
    assert expected.format(x=x, y=y, h=h) in message


@pytest.mark.parametrize('content, expected', [
    (b'', 'the file is empty (0 bytes)'),
    (b'{"images": [', 'not valid JSON (Expecting value at line 1, column 13)'),
    (b'[]', 'the top level is a JSON list'),
])
def test_unreadable_annotation_files_are_named(tmp_path, content, expected):
    path = tmp_path / 'ann.json'
    path.write_bytes(content)
    with pytest.raises(AnnotationFileError, match='Annotation file') as err:
        build(tmp_path, None)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_skip_invalid_drops_the_annotation_as_mmdet_would_without_it(tmp_path, train_ann,
                                                                     tiny_coco):
    bad = broken(train_ann, 'negative width')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        checked = build(tmp_path, bad, skip_invalid=True, data_root=tiny_coco,
                        img_prefix='train2017/')
    finally:
        logger.removeHandler(handler)
    logged = '\n'.join(r.getMessage() for r in records)
    assert '1 invalid annotation(s)' in logged and 'annotation id 1 (image id 1)' in logged
    reference = copy.deepcopy(train_ann)
    del reference['annotations'][0]
    stock = build(tmp_path, reference, kind='CocoDataset', name='ref.json', data_root=tiny_coco,
                  img_prefix='train2017/')
    assert len(checked) == len(stock) == 24
    assert [checked.get_data_info(i) for i in range(len(checked))] == \
        [stock.get_data_info(i) for i in range(len(stock))]


def test_valid_files_load_as_mmdetection_loads_them(tmp_path, train_ann, tiny_coco):
    for kind, ann in (('CocoDataset', train_ann), ('LVISV1Dataset', lvis_of(train_ann))):
        checked = build(tmp_path, ann, kind='Checked' + kind, data_root=tiny_coco)
        stock = build(tmp_path, ann, kind=kind, data_root=tiny_coco)
        assert len(checked) == 24
        assert [checked.get_data_info(i) for i in range(len(checked))] == \
            [stock.get_data_info(i) for i in range(len(stock))]


@pytest.mark.parametrize('field, expected', [
    ('frequency', 'category id 1: no "frequency" field'),
    ('neg_category_ids', 'image id 1: no "neg_category_ids" list'),
    ('not_exhaustive_category_ids', 'image id 1: no "not_exhaustive_category_ids" list'),
])
def test_lvis_files_need_their_federated_fields(tmp_path, train_ann, field, expected):
    lvis = lvis_of(train_ann)
    del (lvis['categories'][0] if field == 'frequency' else lvis['images'][0])[field]
    with pytest.raises(AnnotationFileError, match=expected):
        build(tmp_path, lvis, kind='CheckedLVISV1Dataset')


@pytest.fixture
def broken_images(tmp_path, tiny_coco):
    """A copy of the tiny train set whose images 1-4 are truncated, empty, text and missing."""
    root = tmp_path / 'data'
    shutil.copytree(osp.join(tiny_coco, 'train2017'), root / 'train2017')
    shutil.copytree(osp.join(tiny_coco, 'annotations'), root / 'annotations')
    first = root / 'train2017' / '000001.jpg'
    first.write_bytes(first.read_bytes()[:len(first.read_bytes()) // 2])
    (root / 'train2017' / '000002.jpg').write_bytes(b'')
    (root / 'train2017' / '000003.jpg').write_text('not an image\n')
    os.remove(root / 'train2017' / '000004.jpg')
    return str(root)


def test_bad_images_name_the_file_and_the_problem(broken_images, train_ann):
    dataset = build(broken_images, train_ann, data_root=broken_images, img_prefix='train2017/',
                    name='annotations/instances_train2017.json')
    index = {dataset.get_data_info(i)['img_id']: i for i in range(len(dataset))}
    for img_id, problem in ((1, 'truncated JPEG file'), (2, 'the file is empty (0 bytes)'),
                            (3, 'not an image'), (4, 'no such file')):
        with pytest.raises(ImageFileError) as err:
            dataset[index[img_id]]
        path = osp.join(broken_images, 'train2017', f'{img_id:06d}.jpg')
        assert f'Image {path} (image id {img_id}' in str(err.value)
        assert problem in str(err.value)


def test_a_data_loader_worker_dies_with_the_message(broken_images, train_ann):
    dataset = build(broken_images, train_ann, data_root=broken_images, img_prefix='train2017/',
                    name='annotations/instances_train2017.json')
    loader = DataLoader(dataset, batch_size=len(dataset), num_workers=1,
                        collate_fn=pseudo_collate)
    with pytest.raises(ImageFileError, match='Caught ImageFileError in DataLoader worker') as err:
        next(iter(loader))
    assert osp.join(broken_images, 'train2017') in str(err.value)


@pytest.mark.runs
def test_train_tool_stops_on_a_bad_box(tmp_path, tiny_coco, train_ann, tiny_coco_options, run_tool):
    ann = dump_json(broken(train_ann, 'negative width'), str(tmp_path / 'bad.json'))
    proc = run_tool(['tools/train.py', TINY_FASTER_RCNN, '--work-dir', str(tmp_path / 'work'),
                     '--cfg-options', *tiny_coco_options,
                     'train_dataloader.dataset.type=CheckedCocoDataset',
                     f'train_dataloader.dataset.ann_file={ann}'], check=False)
    assert proc.returncode != 0
    assert f'AnnotationFileError: Annotation file {ann}: 1 invalid annotation(s)' in proc.stderr
    assert 'annotation id 1 (image id 1): "bbox"' in proc.stderr


@pytest.mark.runs
def test_test_tool_refuses_ground_truth_without_annotations(tmp_path, trained_tiny, tiny_coco,
                                                            tiny_coco_options, run_tool):
    val = load_json(osp.join(tiny_coco, 'annotations', 'instances_val2017.json'))
    del val['annotations']
    ann = dump_json(val, str(tmp_path / 'val.json'))
    proc = run_tool(['tools/test.py', TINY_FASTER_RCNN, osp.join(trained_tiny, 'epoch_2.pth'),
                     '--work-dir', str(tmp_path / 'work'), '--cfg-options', *tiny_coco_options,
                     'test_dataloader.dataset.type=CheckedCocoDataset',
                     f'test_dataloader.dataset.ann_file={ann}', f'test_evaluator.ann_file={ann}'],
                    check=False)
    assert proc.returncode != 0
    assert f'Annotation file {ann}: no "annotations" field' in proc.stderr
