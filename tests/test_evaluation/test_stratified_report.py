"""End to end: tools/test.py on a tiny LVIS-format set with LVISStratifiedMetric, then the
re-evaluation tool on the saved predictions and the two-run difference plot."""
import csv
import json
import os.path as osp

import pytest

import mmfrozen  # noqa: F401  stack fixes (mmdet:: bases), registries
from mmfrozen.testing import TINY_FASTER_RCNN
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import save_checkpoint

from mmfrozen.evaluation.annotation_stats import frequency_group

NUM_CLASSES = 3


def lvis_from_coco(coco_path: str, lvis_path: str, train_path: str) -> str:
    """An LVIS v1-format copy of a tiny_coco split: federated fields, frequencies, coco_url."""
    with open(coco_path) as f:
        data = json.load(f)
    with open(train_path) as f:
        train = json.load(f)
    images = {c['id']: set() for c in data['categories']}
    instances = {c['id']: 0 for c in data['categories']}
    for ann in train['annotations']:
        images[ann['category_id']].add(ann['image_id'])
        instances[ann['category_id']] += 1
    for cat in data['categories']:
        cat.update(image_count=len(images[cat['id']]), instance_count=instances[cat['id']],
                   frequency=frequency_group(len(images[cat['id']])),
                   synset=f'{cat["name"]}.n.01')
    present = {}
    for ann in data['annotations']:
        present.setdefault(ann['image_id'], set()).add(ann['category_id'])
    for img in data['images']:
        img['coco_url'] = f'http://images.cocodataset.org/{img["file_name"]}'
        absent = sorted({c['id'] for c in data['categories']} - present.get(img['id'], set()))
        img['neg_category_ids'] = absent[:1]
        img['not_exhaustive_category_ids'] = []
    with open(lvis_path, 'w') as f:
        json.dump(data, f)
    return lvis_path


@pytest.fixture(scope='module')
def tiny_lvis(tiny_coco):
    ann = osp.join(tiny_coco, 'annotations')
    train_coco = osp.join(ann, 'instances_train2017.json')
    train = lvis_from_coco(train_coco, osp.join(ann, 'lvis_v1_train.json'), train_coco)
    val = lvis_from_coco(osp.join(ann, 'instances_val2017.json'),
                         osp.join(ann, 'lvis_v1_val.json'), train_coco)
    return tiny_coco, train, val


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    """The tiny Faster R-CNN, randomly initialised, for 3 classes."""
    register_all_modules()
    cfg = Config.fromfile(TINY_FASTER_RCNN)
    cfg.model.roi_head.bbox_head.num_classes = NUM_CLASSES
    model = MODELS.build(cfg.model)
    model.init_weights()
    path = str(tmp_path_factory.mktemp('ckpt') / 'random_init.pth')
    save_checkpoint(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


@pytest.mark.runs
def test_tools_test_writes_the_stratified_report(tiny_lvis, checkpoint, tmp_path, run_tool):
    root, train, val = tiny_lvis
    work_dir = tmp_path / 'work'
    options = [
        f'model.roi_head.bbox_head.num_classes={NUM_CLASSES}',
        'test_dataloader.dataset.type=LVISV1Dataset',
        f'test_dataloader.dataset.data_root={root}/',
        f'test_dataloader.dataset.ann_file={val}',
        'test_dataloader.dataset.metainfo.classes=[person,bicycle,car]',
        'test_evaluator.type=LVISStratifiedMetric',
        f'test_evaluator.ann_file={val}',
        f'test_evaluator.train_ann_file={train}',
    ]
    proc = run_tool(['tools/test.py', TINY_FASTER_RCNN, checkpoint, '--work-dir',
                     str(work_dir), '--out', str(tmp_path / 'results.pkl'),
                     '--cfg-options', *options])
    out = work_dir / 'stratified_eval'
    for name in ('summary.json', 'bbox_per_class.csv', 'bbox_per_class.json',
                 'bbox_per_class_ap.png'):
        assert (out / name).is_file(), name
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['dataset'] == 'lvis' and summary['num_images'] == 15
    for key in ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf', 'bins'):
        assert key in summary['bbox']
    assert set(summary['bbox']['bins']) == {'1-10', '11-100', '101-1000', '>1000', '0'}
    assert sum(b['num_classes'] for b in summary['bbox']['bins'].values()) == NUM_CLASSES
    with open(out / 'bbox_per_class.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['name'] for r in rows] == ['person', 'bicycle', 'car']
    assert all(int(r['train_instances']) > 0 for r in rows)
    output = proc.stdout + proc.stderr
    assert 'training instances' in output  # the printed table
    assert 'lvis/bbox_AP:' in output and 'lvis/bbox_AP_bin_' in output  # logged scalars

    # Re-evaluate the saved predictions without the model: the same numbers.
    re_dir = tmp_path / 're_eval'
    proc = run_tool(['tools/analysis/stratified_eval.py', str(tmp_path / 'results.pkl'), val,
                     '--train-ann', train, '--out-dir', str(re_dir)])
    assert 'training instances' in proc.stdout
    again = json.loads((re_dir / 'summary.json').read_text())
    assert again == summary

    # The two-run difference plot (here a run against itself).
    per_class = str(out / 'bbox_per_class.json')
    run_tool(['tools/analysis/per_class_delta.py', per_class, per_class, '--out',
              str(tmp_path / 'delta.png'), '--labels', 'fine-tuned', 'frozen'])
    assert (tmp_path / 'delta.png').stat().st_size > 0


def test_delta_plot_matches_classes_by_id(tmp_path):
    from mmfrozen.evaluation.plots import plot_per_class_delta
    rows_a = [dict(category_id=i, name=f'c{i}', frequency='r', train_images=i,
                   train_instances=10 * i, AP=0.1 * i / 10, AP50=None) for i in range(10)]
    rows_b = [dict(r, AP=r['AP'] + (0.05 if r['train_instances'] < 50 else 0.0))
              for r in rows_a]
    rows_b[3]['AP'] = None  # no ground truth in run B: left out
    a, b = tmp_path / 'a.json', tmp_path / 'b.json'
    a.write_text(json.dumps(rows_a))
    b.write_text(json.dumps(rows_b))
    out = plot_per_class_delta(str(a), str(b), str(tmp_path / 'delta.png'))
    assert osp.getsize(out) > 0
    other = tmp_path / 'other.json'
    other.write_text(json.dumps([dict(rows_a[0], category_id=99)]))
    with pytest.raises(ValueError, match='category_id'):
        plot_per_class_delta(str(a), str(other), str(tmp_path / 'none.png'))
