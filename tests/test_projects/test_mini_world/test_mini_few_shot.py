"""Few-shot detection in the mini world (``mini_few_shot.py``, ``mini_world/few_shot.py``).

Fast: the pieces on small hand-written LVIS v1-format sets -- the base-only files read by
MMDetection's own ``LVISV1Dataset`` (labels by name), the K-shot files (exactly K counted
instances of every class), the K-shot stage's jobs (each arm from its base detector, every K the
same iterations), the table and plot. Full suite (``mini_world``): the tool at tiny scale, the
real runner: base detectors on the base classes, K-shot runs whose frozen parts are bit-identical
to the checkpoint they started from, results equal to the runs' own metric files.
"""
import ast
import json
import os
import os.path as osp
import statistics

import pytest
import torch
from mmdet.datasets import LVISV1Dataset

from mmfrozen.datasets.few_shot_sampler import instance_counts, read_checked
from projects.mini_world.mini_world.few_shot import (ARM_BASE, ARMS, BASE_CONFIGS,
                                                     FEW_SHOT_SCALES, KSHOT_CONFIGS, METRICS,
                                                     MiniFewShot, base_only, few_shot_table,
                                                     repeat_times)
from projects.mini_world.mini_world.few_shot_plot import plot_few_shot
from projects.mini_world.mini_world.pipeline import SCALES, mark_done


def _assignments(path):
    """The literal top-level assignments of a config file (no mmengine: it stays fast)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, AttributeError):
                pass
    return out


def _lvis_set(names, per_class, image_size=128):
    """An LVIS v1-format dict: category ``c`` (id c + 1) in ``per_class[c]`` images, one
    instance each, plus one image holding two instances of the first class and one of the
    last."""
    images, annotations = [], []

    def add_image(boxes):
        image_id = len(images) + 1
        present = {cat for cat, _ in boxes}
        images.append(dict(id=image_id, width=image_size, height=image_size,
                           coco_url=f'http://images.cocodataset.org/train2017/{image_id:012d}.png',
                           neg_category_ids=[c for c in range(1, len(names) + 1)
                                             if c not in present],
                           not_exhaustive_category_ids=[]))
        for cat, x in boxes:
            annotations.append(dict(id=len(annotations) + 1, image_id=image_id, category_id=cat,
                                    bbox=[x, 10.0, 20.0, 20.0], area=400.0,
                                    segmentation=[[x, 10, x + 20, 10, x + 20, 30, x, 30]]))

    for cat, count in enumerate(per_class, start=1):
        for _ in range(count):
            add_image([(cat, 10.0)])
    add_image([(1, 10.0), (1, 50.0), (len(names), 90.0)])
    categories = [{'id': c + 1, 'name': name, 'synset': name, 'synonyms': [name], 'def': name,
                   'frequency': 'f', 'image_count': per_class[c],
                   'instance_count': per_class[c]} for c, name in enumerate(names)]
    return dict(info={}, licenses=[], images=images, annotations=annotations,
                categories=categories)


def _tiny_experiment(tmp_path, groups=2):
    """A tiny-scale experiment whose full training and val files are hand-written."""
    experiment = MiniFewShot(str(tmp_path), SCALES['tiny'], FEW_SHOT_SCALES['tiny'],
                             groups=groups)
    names = experiment.base_classes + experiment.novel_classes
    data = _lvis_set(names, [6] * len(names))
    for split in ('train', 'val'):
        path = experiment.annotation_file(f'lvis_v1_{split}.json')
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            json.dump(data, f)
    return experiment, data


def test_the_configs_defaults_are_the_tools_classes():
    """The few-shot configs name the default scale's base (frequent and common tiers) and
    novel (rare tier) classes, in category id order, as the tool passes them."""
    experiment = MiniFewShot('unused', SCALES['default'], FEW_SHOT_SCALES['default'])
    spec = SCALES['default'].detection
    assert len(experiment.base_classes) == spec.num_frequent + spec.num_common
    assert len(experiment.novel_classes) == spec.num_rare
    assert experiment.base_classes + experiment.novel_classes == experiment.vocabulary
    base = _assignments(BASE_CONFIGS['finetune'])
    kshot = _assignments(KSHOT_CONFIGS['finetune'])
    assert list(base['base_classes']) == experiment.base_classes
    assert list(kshot['classes']) == experiment.vocabulary
    assert list(kshot['novel_classes']) == experiment.novel_classes
    # the main job's data and the few-shot set share the vocabulary; only the rare tier's
    # image counts differ
    assert experiment.scale.detection.rare_images == FEW_SHOT_SCALES['default'].novel_images
    assert experiment.scale.detection.frequent_images == spec.frequent_images


def test_base_only_files_label_the_base_classes_by_name(tmp_path):
    names = ['a', 'b', 'c', 'd']
    data = _lvis_set(names, [3, 2, 2, 4])
    out = base_only(data, ['a', 'b'], 'full.json')
    assert [cat['name'] for cat in out['categories']] == ['a', 'b']
    assert {ann['category_id'] for ann in out['annotations']} == {1, 2}
    assert len(out['images']) == len(data['images'])  # novel objects stay, unlabelled
    assert all(set(img['neg_category_ids']) <= {1, 2} for img in out['images'])
    assert out['info']['few_shot_base']['base_classes'] == ['a', 'b']
    path = tmp_path / 'base.json'
    path.write_text(json.dumps(out))
    # MMDetection's own LVIS dataset numbers the labels as the base detector's classes
    dataset = LVISV1Dataset(ann_file=str(path), metainfo=dict(classes=('a', 'b')),
                            data_root=str(tmp_path), data_prefix=dict(img=''), pipeline=[])
    by_id = {ann['id']: ann['category_id'] for ann in out['annotations']}
    labels = [inst['bbox_label'] for i in range(len(dataset))
              for inst in dataset.get_data_info(i)['instances']]
    assert sorted(labels) == sorted(cid - 1 for cid in by_id.values())
    assert len(labels) == 3 + 2 + 2  # every base instance, no novel one


def test_base_only_refuses_classes_out_of_id_order():
    data = _lvis_set(['a', 'b', 'c'], [1, 1, 1])
    with pytest.raises(ValueError, match=r'full.json: field "categories".*category id order'):
        base_only(data, ['b', 'a'], 'full.json')


def test_few_shot_files_hold_exactly_k_of_every_class(tmp_path):
    experiment, data = _tiny_experiment(tmp_path)
    experiment.few_shot_data()
    base = read_checked(experiment.annotation_file('lvis_v1_train_base.json'))
    assert [cat['name'] for cat in base['categories']] == experiment.base_classes
    for group in range(2):
        for shots in FEW_SHOT_SCALES['tiny'].shots:
            path = experiment.kshot_file(shots, group)
            assert set(instance_counts(read_checked(path)).values()) == {shots}, path
    # the same seeds give the same bytes
    first = open(experiment.kshot_file(2, 1), 'rb').read()
    experiment.few_shot_data()
    assert open(experiment.kshot_file(2, 1), 'rb').read() == first


def _option(job, key):
    args = job.args[job.args.index('--cfg-options') + 1:]
    return dict(arg.split('=', 1) for arg in args)[key]


def test_each_arm_starts_from_its_base_and_fills_its_epochs(tmp_path):
    experiment, _ = _tiny_experiment(tmp_path)
    experiment.few_shot_data()
    jobs = experiment.kshot_jobs()
    scale = FEW_SHOT_SCALES['tiny']
    assert len(jobs) == 2 * len(scale.shots) * len(ARMS)
    for job in jobs:
        shots, arm = int(job.name.split('-')[0]), job.name.split()[1].rstrip(',')
        group = int(job.name.split()[-1])
        assert job.args[1] == KSHOT_CONFIGS[arm]
        assert _option(job, 'load_from') == experiment.surgery_file(ARM_BASE[arm], group)
        assert _option(job, 'train_dataloader.dataset.dataset.ann_file') == \
            experiment.kshot_file(shots, group)
        assert _option(job, 'randomness.seed') == str(group)
        assert _option(job, 'val_evaluator.class_groups.novel') == \
            '[' + ','.join(experiment.novel_classes) + ']'
        images = len(read_checked(experiment.kshot_file(shots, group))['images'])
        times = int(_option(job, 'train_dataloader.dataset.times'))
        assert times * images >= scale.kshot_iters_per_epoch * scale.batch_size
    # lastlayers starts from the fine-tuned base, as TFA's; frozen from the frozen one
    assert ARM_BASE == {'frozen': 'frozen', 'finetune': 'finetune', 'lastlayers': 'finetune'}


@pytest.mark.parametrize('images, iters, batch', [(30, 40, 8), (300, 40, 8), (7, 1, 8)])
def test_repeat_times_fills_the_epoch_and_no_more(images, iters, batch):
    times = repeat_times(images, iters, batch)
    assert times * images >= iters * batch
    assert times == 1 or (times - 1) * images < iters * batch


def test_unknown_arm_or_no_group_is_refused():
    with pytest.raises(ValueError, match='arms'):
        MiniFewShot('unused', SCALES['tiny'], FEW_SHOT_SCALES['tiny'], arms=['frozen', 'x'])
    with pytest.raises(ValueError, match='groups'):
        MiniFewShot('unused', SCALES['tiny'], FEW_SHOT_SCALES['tiny'], groups=0)


def _finished_run(folder, novel, base, overall):
    """A run folder as a finished training leaves it: done.json and the metric's summary."""
    os.makedirs(osp.join(folder, 'stratified_eval'))
    groups = dict(novel=dict(AP=novel, AP50=2 * novel), base=dict(AP=base, AP50=2 * base))
    with open(osp.join(folder, 'stratified_eval', 'summary.json'), 'w') as f:
        json.dump(dict(bbox=dict(AP=overall, class_groups=groups)), f)
    mark_done(folder, 'run', 12.5)


def test_a_cut_short_run_reports_the_groups_that_finished(tmp_path):
    experiment = MiniFewShot(str(tmp_path), SCALES['tiny'], FEW_SHOT_SCALES['tiny'], groups=3)
    for arm in ('frozen', 'finetune'):
        _finished_run(experiment.base_dir(arm), 0.3, 0.3, 0.3)
    for arm in ARMS:
        for shots in FEW_SHOT_SCALES['tiny'].shots:
            for group in range(3):
                if arm == 'lastlayers' and shots == 2 and group == 2:
                    os.makedirs(experiment.kshot_dir(arm, shots, group))  # cut short
                    continue
                _finished_run(experiment.kshot_dir(arm, shots, group), 0.1 * (group + 1),
                              0.2, 0.15)
    table = experiment.run(train=False)
    results = json.load(open(osp.join(experiment.out_dir, 'results.json')))
    assert results['groups_done']['lastlayers']['2'] == [0, 1]
    assert results['kshot']['lastlayers']['2']['nAP'] == pytest.approx([10.0, 20.0])
    assert results['kshot']['frozen']['2']['nAP'] == pytest.approx([10.0, 20.0, 30.0])
    assert results['run_times_s']['kshot']['lastlayers']['2'] == [12.5, 12.5]
    assert '| 2 | lastlayers | finetune base | 2 | 15.0 ± 7.1 |' in table
    assert osp.isfile(osp.join(experiment.out_dir, 'few_shot_nap.png'))


def _results():
    values = {'frozen': [10.0, 12.0, 14.0], 'finetune': [5.0, 6.0, 10.0],
              'lastlayers': [8.0, 8.5, 9.0]}
    return dict(
        shots=[1, 5], groups=3, arms=list(ARMS), arm_base=ARM_BASE,
        base_classes=['a', 'b'], novel_classes=['c'], base_AP={'frozen': 30.0, 'finetune': 35.0},
        kshot={arm: {str(k): {m: [v + k for v in values[arm]] for m in METRICS}
                     for k in (1, 5)} for arm in ARMS})


def test_table_shows_mean_and_std_over_groups():
    results = _results()
    lines = few_shot_table(results).splitlines()
    row = next(line for line in lines if line.startswith('| 5 | finetune |'))
    values = results['kshot']['finetune']['5']['nAP']
    assert f'{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}' in row
    assert 'finetune base' in row
    assert len([line for line in lines if line.startswith('| ')]) == 1 + 2 * 3


def test_plot_is_written(tmp_path):
    path = plot_few_shot(_results(), str(tmp_path / 'plots' / 'nap.png'))
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


# ------------------------------------------------------------------------------------------
# the tool at tiny scale, the real runner (full suite)
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny_few_shot(tmp_path_factory, run_tool):
    work_dir = str(tmp_path_factory.mktemp('mini_few_shot'))
    proc = run_tool(['projects/mini_world/tools/mini_few_shot.py', '--scale', 'tiny',
                     '--work-dir', work_dir, '--groups', '2', '--shots', '2', '--threads', '1',
                     '--jobs', '2'], timeout=900)
    experiment = MiniFewShot(work_dir, SCALES['tiny'], FEW_SHOT_SCALES['tiny'], groups=2)
    return experiment, proc


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def _last_checkpoint(run_dir):
    with open(osp.join(run_dir, 'last_checkpoint')) as f:
        return f.read().strip()


@pytest.mark.mini_world
def test_tiny_run_results_are_the_runs_own(tiny_few_shot):
    experiment, proc = tiny_few_shot
    results = json.load(open(osp.join(experiment.out_dir, 'results.json')))
    assert results['shots'] == [2] and results['groups'] == 2
    for arm in ARMS:
        for group in range(2):
            summary = json.load(open(osp.join(experiment.kshot_dir(arm, 2, group),
                                              'stratified_eval', 'summary.json')))['bbox']
            row = results['kshot'][arm]['2']
            assert row['nAP'][group] == pytest.approx(
                100 * summary['class_groups']['novel']['AP'])
            assert row['bAP'][group] == pytest.approx(100 * summary['class_groups']['base']['AP'])
    table = open(osp.join(experiment.out_dir, 'table.md')).read()
    assert table in proc.stdout
    assert osp.isfile(osp.join(experiment.out_dir, 'few_shot_nap.png'))


@pytest.mark.mini_world
def test_tiny_run_base_detectors_know_only_the_base_classes(tiny_few_shot):
    experiment, _ = tiny_few_shot
    for arm in ('frozen', 'finetune'):
        checkpoint = torch.load(_last_checkpoint(experiment.base_dir(arm)), map_location='cpu',
                                weights_only=False)
        assert list(checkpoint['meta']['dataset_meta']['classes']) == experiment.base_classes
        num_base = len(experiment.base_classes)
        assert checkpoint['state_dict']['roi_head.bbox_head.fc_cls.weight'].shape[0] == \
            num_base + 1


@pytest.mark.mini_world
@pytest.mark.parametrize('arm', ARMS)
def test_tiny_run_arms_train_what_they_say(tiny_few_shot, arm):
    """Against the surgery checkpoint each K-shot run started from: lastlayers changed only
    fc_cls and fc_reg, frozen nothing of the backbone, finetune its backbone too."""
    experiment, _ = tiny_few_shot
    start = _state(experiment.surgery_file(ARM_BASE[arm], 0))
    end = _state(_last_checkpoint(experiment.kshot_dir(arm, 2, 0)))
    changed = {key for key in start if not torch.equal(start[key], end[key])}
    backbone = {key for key in changed if key.startswith('backbone.')}
    if arm == 'lastlayers':
        assert changed and all(key.split('.')[-2] in ('fc_cls', 'fc_reg') for key in changed)
    elif arm == 'frozen':
        assert not backbone and any(key.startswith('neck.') for key in changed)
    else:
        assert any(key.endswith('conv1.weight') for key in backbone)
    # the novel rows the surgery drew, trained from there: the base rows came from the base
    base_end = _state(_last_checkpoint(experiment.base_dir(ARM_BASE[arm])))
    num_base = len(experiment.base_classes)
    assert torch.equal(start['roi_head.bbox_head.fc_cls.weight'][:num_base],
                       base_end['roi_head.bbox_head.fc_cls.weight'][:num_base])
