"""The mini world's generators: determinism, the classification set, the LVIS v1-format set."""
import json
import os.path as osp
from collections import defaultdict

import numpy as np
import pytest
from mmengine.config import Config

import mmfrozen  # noqa: F401  (lvis-api on NumPy 2)
from lvis import LVIS, LVISEval, LVISResults
from mmdet.registry import DATASETS
from mmfrozen.evaluation.annotation_stats import frequency_group
from projects.mini_world.mini_world.classification_data import (MiniWorldClassificationDataset,
                                                                write_classification_split)
from projects.mini_world.mini_world.lvis_data import (LongTailSpec, assign_categories,
                                                      write_mini_lvis)
from projects.mini_world.mini_world.pipeline import CONFIG_DIR, SCALES, MiniReproduction
from projects.mini_world.mini_world.world import (image_rng, render_object_image, render_scene,
                                                  world_classes)

SMALL_SPEC = LongTailSpec(num_frequent=1, num_common=2, num_rare=4, frequent_images=(101, 101),
                          common_images=(11, 40), val_images_per_category=4)


@pytest.fixture(scope='module')
def small_world():
    return world_classes(num_shapes=4, num_colours=2, num_textures=2)


@pytest.fixture(scope='module')
def mini_lvis(tmp_path_factory, small_world):
    root = str(tmp_path_factory.mktemp('mini_lvis'))
    return root, write_mini_lvis(root, small_world, SMALL_SPEC, seed=3)


def test_world_classes_are_distinct_combinations():
    classes = world_classes(num_shapes=8, num_colours=4, num_textures=2)
    assert len(classes) == 64
    assert len({c.name for c in classes}) == 64
    assert len({(c.shape, c.colour, c.texture) for c in classes}) == 64
    with pytest.raises(ValueError, match='shapes'):
        world_classes(num_shapes=99)


def test_rendering_is_deterministic(small_world):
    first = render_scene(image_rng(7, 1, 5), small_world, 128, [0, 3, 5], (20, 40))
    again = render_scene(image_rng(7, 1, 5), small_world, 128, [0, 3, 5], (20, 40))
    other = render_scene(image_rng(7, 1, 6), small_world, 128, [0, 3, 5], (20, 40))
    np.testing.assert_array_equal(first[0], again[0])
    assert [o.bbox for o in first[1]] == [o.bbox for o in again[1]]
    assert not np.array_equal(first[0], other[0])
    image = render_object_image(image_rng(0, 0, 0), small_world, 2, 64)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8


def test_scene_objects_are_inside_and_apart(small_world):
    for index in range(20):
        image, objects = render_scene(image_rng(1, 2, index), small_world, 128,
                                      [0, 1, 2, 3, 4], (20, 48), required=2)
        assert len(objects) >= 2
        for obj in objects:
            x, y, w, h = obj.bbox
            assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128 and w > 5 and h > 5
        for i, a in enumerate(objects):
            for b in objects[i + 1:]:
                ax, ay, aw, ah = a.bbox
                bx, by, bw, bh = b.bbox
                assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay


def test_classification_split_is_balanced_and_deterministic(tmp_path, small_world):
    first = write_classification_split(str(tmp_path / 'a.npz'), small_world, 3, 32, 0, 'train')
    again = write_classification_split(str(tmp_path / 'b.npz'), small_world, 3, 32, 0, 'train')
    val = write_classification_split(str(tmp_path / 'v.npz'), small_world, 3, 32, 0, 'val')
    a, b, v = (np.load(p) for p in (first, again, val))
    np.testing.assert_array_equal(a['images'], b['images'])
    assert not np.array_equal(a['images'], v['images'])
    assert np.bincount(a['labels']).tolist() == [3] * len(small_world)
    dataset = DATASETS.build(dict(type='MiniWorldClassificationDataset', data_file=first))
    assert isinstance(dataset, MiniWorldClassificationDataset)
    assert len(dataset) == 3 * len(small_world)
    item = dataset[5]
    assert tuple(item['inputs'].shape) == (3, 32, 32) and item['data_samples'] == 5 % 16
    assert dataset.metainfo['classes'][0] == small_world[0].name
    with pytest.raises(FileNotFoundError, match='data_file'):
        MiniWorldClassificationDataset(str(tmp_path / 'missing.npz'))


def test_frequency_groups_are_lvis():
    assert [frequency_group(n) for n in (1, 10, 11, 100, 101, 5000)] == \
        ['r', 'r', 'c', 'c', 'f', 'f']


def test_assign_categories_hits_targets():
    images = assign_categories(np.random.default_rng(0), [20, 12, 3, 1], 30, 3)
    counts = np.bincount([c for cats in images for c in cats], minlength=4)
    assert counts.tolist() == [20, 12, 3, 1]
    assert all(1 <= len(cats) <= 3 and len(set(cats)) == len(cats) for cats in images)
    with pytest.raises(ValueError, match='cannot place'):
        assign_categories(np.random.default_rng(0), [31, 1], 30, 3)


def test_mini_lvis_loads_in_lvis_api_with_consistent_counts(mini_lvis):
    root, paths = mini_lvis
    train, val = LVIS(paths['train']), LVIS(paths['val'])
    images_of, instances_of = defaultdict(set), defaultdict(int)
    for ann in train.dataset['annotations']:
        images_of[ann['category_id']].add(ann['image_id'])
        instances_of[ann['category_id']] += 1
    groups = defaultdict(list)
    for cat in train.dataset['categories']:
        assert cat['image_count'] == len(images_of[cat['id']])
        assert cat['instance_count'] == instances_of[cat['id']]
        assert cat['frequency'] == frequency_group(cat['image_count'])
        groups[cat['frequency']].append(cat)
    assert [len(groups[g]) for g in 'rcf'] == [4, 2, 1]
    assert all(1 <= cat['image_count'] <= 10 for cat in groups['r'])
    assert val.dataset['categories'] == train.dataset['categories']
    assert not set(train.get_img_ids()) & set(val.get_img_ids())

    # Every category, rare ones included, has validation instances to be measured on.
    val_images_of = defaultdict(set)
    for ann in val.dataset['annotations']:
        val_images_of[ann['category_id']].add(ann['image_id'])
    assert all(len(val_images_of[cat['id']]) >= 3 for cat in groups['r'])

    for lvis in (train, val):
        for img in lvis.dataset['images']:
            present = {a['category_id'] for a in lvis.img_ann_map[img['id']]}
            assert present, 'every image shows a vocabulary category'
            assert not present & set(img['neg_category_ids'])
            assert present | set(img['neg_category_ids']) == set(lvis.get_cat_ids())
            assert set(img['not_exhaustive_category_ids']) <= present
            path = osp.join(root, img['coco_url'].replace('http://images.cocodataset.org/', ''))
            assert osp.isfile(path)
    assert sum(len(img['not_exhaustive_category_ids']) for img in train.dataset['images'])


def test_mini_lvis_ground_truth_scores_perfect_ap(mini_lvis, tmp_path):
    """lvis-api, federated rules included, gives the annotations themselves AP 1."""
    _, paths = mini_lvis
    gt = LVIS(paths['val'])
    detections = [dict(image_id=a['image_id'], category_id=a['category_id'], bbox=a['bbox'],
                       score=1.0) for a in gt.dataset['annotations']]
    result_file = str(tmp_path / 'dets.json')
    with open(result_file, 'w') as handle:
        json.dump(detections, handle)
    evaluator = LVISEval(gt, LVISResults(gt, result_file), 'bbox')
    evaluator.run()
    results = evaluator.get_results()
    for key in ('AP', 'APr', 'APc', 'APf'):
        assert results[key] == pytest.approx(1.0), key


def test_mmdet_lvis_v1_dataset_reads_it(mini_lvis):
    root, paths = mini_lvis
    dataset = DATASETS.build(dict(
        type='LVISV1Dataset', data_root=root + '/', ann_file='annotations/lvis_v1_val.json',
        data_prefix=dict(img=''), test_mode=True,
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)]))
    gt = LVIS(paths['val'])
    assert len(dataset) == len(gt.get_img_ids())
    item = dataset[0]
    assert item['img'].shape == (128, 128, 3)
    assert len(item['gt_bboxes']) == len(gt.img_ann_map[item['img_id']])


def test_mini_configs_match_the_default_world():
    """The detector configs' defaults name the default scale's vocabulary, in id order."""
    reproduction = MiniReproduction('/nonexistent', SCALES['default'])
    for name in ('faster-rcnn_r18-finetune_fpn_mini-lvis.py',
                 'faster-rcnn_r18-frozen_fpn_mini-lvis.py',
                 'faster-rcnn_r18-frozen_wide-fpn_mini-lvis.py'):
        cfg = Config.fromfile(osp.join(CONFIG_DIR, name))
        assert list(cfg.val_dataloader.dataset.metainfo.classes) == reproduction.vocabulary
        assert cfg.model.roi_head.bbox_head.num_classes == len(reproduction.vocabulary)
        assert cfg.val_evaluator.type == 'LVISStratifiedMetric'
    classifier = Config.fromfile(osp.join(CONFIG_DIR,
                                          'classifier_r18-w16_8e_mini-world.py'))
    assert classifier.model.num_classes == len(reproduction.classes)


def test_steps_are_reused_unless_forced(tmp_path):
    """A finished step is skipped; ``force`` redoes it from scratch."""
    reproduction = MiniReproduction(str(tmp_path), SCALES['tiny'])
    reproduction.classification_data()
    done = osp.join(reproduction.classification_dir, 'done.json')
    stray = osp.join(reproduction.classification_dir, 'stray.txt')
    with open(done) as handle:
        first = json.load(handle)
    open(stray, 'w').close()
    again = MiniReproduction(str(tmp_path), SCALES['tiny'])
    again.classification_data()
    assert osp.isfile(stray) and 'classification-data' not in again.timing
    with open(done) as handle:
        assert json.load(handle) == first
    MiniReproduction(str(tmp_path), SCALES['tiny'], force=True).classification_data()
    assert not osp.exists(stray)
    data = np.load(osp.join(reproduction.classification_dir, 'train.npz'))
    assert len(data['labels']) == len(reproduction.classes) * 16
