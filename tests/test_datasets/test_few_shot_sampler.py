"""K-shot sets: drawn by seed with exactly K instances per class as MMDetection trains them, the
same bytes for the same seed; the published TFA lists read into the same format.

A hand-made file has what a real one has: ids from 0 (MMDetection's VOC converter), crowd
regions, a box MMDetection drops, an image under the configs' 32-pixel filter, images with
several instances of a class; the tiny COCO set goes through ``CheckedCocoDataset``.
"""
import json
import os.path as osp

import pytest
from mmdet.registry import DATASETS
from mmdet.utils import register_all_modules

import mmfrozen  # noqa: F401  registers the checked datasets
from mmfrozen.datasets.few_shot_lists import read_published_shots
from mmfrozen.datasets.few_shot_sampler import (FewShotSamplingError, dump_coco,
                                                instance_counts, read_checked, sample_k_shot)
from mmfrozen.testing.runs import dump_json

register_all_modules(init_default_scope=True)

#: (image id, file stem, side, [(category id, bbox, iscrowd)]); category 0 'a', 5 'b', 9 'c'
IMAGES = [
    (0, '000001', 128, [(0, [10, 10, 30, 30], 0)]),
    (1, '000002', 128, [(0, [10, 10, 30, 30], 0), (0, [50, 50, 30, 30], 0)]),
    (2, '000003', 128, [(0, [10, 10, 30, 30], 0), (0, [60, 60, 20, 20], 1)]),
    (3, '000004', 128, [(5, [10, 10, 30, 30], 0), (0, [60, 60, 20, 20], 0)]),
    (4, '2008_000005', 128, [(5, [1, 1, 20, 20], 0), (5, [30, 30, 20, 20], 0),
                             (5, [60, 60, 20, 20], 0)]),
    (5, '000006', 128, [(5, [10, 10, 30, 30], 0), (5, [60, 60, 0.5, 20], 0)]),
    (6, '000007', 20, [(0, [2, 2, 10, 10], 0)]),  # under the 32-pixel filter
    (7, '000008', 128, [(5, [10, 10, 30, 30], 0), (9, [5, 5, 10, 10], 0),
                        (9, [50, 50, 10, 10], 0)]),
]
COUNTED = {'a': 5, 'b': 6, 'c': 2}


def hand_made() -> dict:
    images, anns = [], []
    for image_id, stem, side, objects in IMAGES:
        year = '2012' if '_' in stem else '2007'
        images.append(dict(id=image_id, file_name=f'VOC{year}/JPEGImages/{stem}.jpg',
                           width=side, height=side))
        for cat_id, bbox, crowd in objects:
            anns.append(dict(id=len(anns), image_id=image_id, category_id=cat_id, bbox=bbox,
                             area=bbox[2] * bbox[3], iscrowd=crowd, ignore=0))
    cats = [dict(id=0, name='a'), dict(id=5, name='b'), dict(id=9, name='c')]
    return dict(images=images, annotations=anns, categories=cats)


@pytest.fixture
def source(tmp_path) -> str:
    return dump_json(hand_made(), str(tmp_path / 'train.json'))


def test_exactly_k_instances_per_class_and_the_same_bytes_for_the_same_seed(source, tmp_path):
    data = read_checked(source)
    assert instance_counts(data) == COUNTED
    sets = set()
    for shots in (1, 2):
        for seed in range(6):
            subset = sample_k_shot(data, shots, seed, classes=['a', 'b'], source='train.json')
            assert instance_counts(subset) == dict(a=shots, b=shots, c=0)
            first, second = tmp_path / 'first.json', tmp_path / 'second.json'
            dump_coco(subset, str(first))
            dump_coco(sample_k_shot(read_checked(source), shots, seed, classes=['a', 'b'],
                                    source='train.json'), str(second))
            assert first.read_bytes() == second.read_bytes()
            sets.add(first.read_bytes())
    assert len(sets) >= 6  # other seeds draw other groups


def test_a_taken_image_keeps_all_of_its_class_and_nothing_else(source):
    data = read_checked(source)
    for seed in range(6):
        subset = sample_k_shot(data, 2, seed, source='train.json')
        assert instance_counts(subset) == dict(a=2, b=2, c=2)
        assert subset['categories'] == data['categories']
        record = subset['info']['few_shot']
        assert (record['shots'], record['seed'], record['classes']) == (2, seed, ['a', 'b', 'c'])
        by_id = {ann['id']: ann for ann in data['annotations']}
        assert all(by_id[ann['id']] == ann for ann in subset['annotations'])  # unchanged
        cat_id = {cat['name']: cat['id'] for cat in data['categories']}
        for name, image_ids in record['images_per_class'].items():
            assert 6 not in image_ids  # the 20-pixel image is never trained on
            for image_id in image_ids:
                expected = [a['id'] for a in data['annotations']
                            if a['image_id'] == image_id and a['category_id'] == cat_id[name]]
                got = [a['id'] for a in subset['annotations']
                       if a['image_id'] == image_id and a['category_id'] == cat_id[name]]
                assert got == expected  # crowd regions and dropped boxes of the class too
        drawn = {(i, cat_id[n]) for n, ids in record['images_per_class'].items() for i in ids}
        assert {(a['image_id'], a['category_id']) for a in subset['annotations']} == drawn


def test_impossible_draws_name_the_class(source):
    data = read_checked(source)
    with pytest.raises(FewShotSamplingError, match=r"class 'c' \(category id 9\).*exactly 1 "
                       r'instances: after taking 0, every image left holds more'):
        sample_k_shot(data, 1, 0, source='train.json')  # c: two instances, in one image
    with pytest.raises(FewShotSamplingError, match=r"class 'b'.*exactly 7 instances: it has "
                       r'only 6'):
        sample_k_shot(data, 7, 0, classes=['b'], source='train.json')
    with pytest.raises(FewShotSamplingError, match=r"\['d'\] are not among"):
        sample_k_shot(data, 1, 0, classes=['d'], source='train.json')


def test_k_shot_file_trains_k_instances_per_class_in_the_checked_dataset(tiny_coco, tmp_path):
    """What MMDetection's data pipeline loads from the written file: K boxes of each class."""
    data = read_checked(osp.join(tiny_coco, 'annotations', 'instances_train2017.json'))
    path = str(tmp_path / 'five.json')
    dump_coco(sample_k_shot(data, 5, 3, source='instances_train2017.json'), path)
    dataset = DATASETS.build(dict(
        type='CheckedCocoDataset', data_root=tiny_coco, ann_file=path,
        data_prefix=dict(img='train2017/'), metainfo=dict(classes=('person', 'bicycle', 'car')),
        filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=[]))
    labels = [inst['bbox_label'] for i in range(len(dataset))
              for inst in dataset.get_data_info(i)['instances'] if not inst['ignore_flag']]
    assert sorted(labels) == [0] * 5 + [1] * 5 + [2] * 5


def test_published_voc_lists_read_k_of_the_listed_images(source, tmp_path):
    data = read_checked(source)
    lists = tmp_path / 'vocsplit' / 'seed1'
    lists.mkdir(parents=True)
    (lists / 'box_1shot_a_train.txt').write_text('datasets/VOC2007/JPEGImages/000002.jpg\n')
    (lists / 'box_1shot_b_train.txt').write_text('datasets/VOC2012/JPEGImages/2008_000005.jpg\n'
                                                 'datasets/VOC2007/JPEGImages/000004.jpg\n')
    drawn = set()
    for seed in range(8):
        subset, found = read_published_shots(data, str(lists), 1, seed=seed, classes=['a', 'b'],
                                             source='train.json')
        assert found == dict(a=1, b=1) and instance_counts(subset) == dict(a=1, b=1, c=0)
        a_ids = [ann['id'] for ann in subset['annotations'] if ann['category_id'] == 0]
        assert len(a_ids) == 1 and a_ids[0] in (1, 2)  # one of image 000002's two boxes
        drawn.add(tuple(ann['id'] for ann in subset['annotations']))
    assert len(drawn) > 1  # K of more drawn by the seed
    (lists / 'box_1shot_a_train.txt').write_text('\nVOC2007/JPEGImages/999999.jpg\n')
    with pytest.raises(FewShotSamplingError, match=r'box_1shot_a_train.txt, line 2: image'):
        read_published_shots(data, str(lists), 1, classes=['a'], source='train.json')
    with pytest.raises(FileNotFoundError, match=r"class 'c'.*box_1shot_c_train.txt"):
        read_published_shots(data, str(lists), 1, classes=['c'], source='train.json')


def test_published_coco_shot_files_keep_their_annotations(source, tmp_path):
    data = read_checked(source)
    shot = dict(images=[dict(id=3)], annotations=[dict(id=5, image_id=3, category_id=5)])
    (tmp_path / 'full_box_1shot_b_trainval.json').write_text(json.dumps(shot))
    subset, found = read_published_shots(data, str(tmp_path), 1, classes=['b'],
                                         source='train.json')
    assert found == dict(b=1) and [a['id'] for a in subset['annotations']] == [5]
    shot['annotations'][0]['id'] = 0  # category 'a' in the training file
    (tmp_path / 'full_box_1shot_b_trainval.json').write_text(json.dumps(shot))
    with pytest.raises(FewShotSamplingError, match=r"annotation id 0 is of category id 0"):
        read_published_shots(data, str(tmp_path), 1, classes=['b'], source='train.json')
