"""The evaluation loop both stratified metrics share: no detections, format_only, a missing
mask, the log."""
import json
import os
import os.path as osp
import re

import pytest
from mmengine.logging import MMLogger

import mmfrozen  # noqa: F401  registers the metrics
from mmfrozen.testing.stratified import (build_metric, data_samples, make_predictions, make_train,
                                         make_val, run_metric, to_coco)


@pytest.fixture(scope='module')
def ann_files(tmp_path_factory):
    """``{metric type: (val, train)}``: the same hand-made set in LVIS and COCO format."""
    root = tmp_path_factory.mktemp('loop')
    lvis = (make_val(str(root / 'lvis_val.json')), make_train(str(root / 'lvis_train.json')))
    coco = tuple(to_coco(path, str(root / f'coco_{osp.basename(path)}')) for path in lvis)
    return dict(LVISStratifiedMetric=lvis, CocoStratifiedMetric=coco)


def build(metric_type, files, metric, **kwargs):
    val_path, train_path = files[metric_type]
    return (build_metric(metric_type, val_path, train_path, metric,
                         **kwargs), make_predictions(val_path))


METRIC_TYPES = ['LVISStratifiedMetric', 'CocoStratifiedMetric']
REFERENCE = dict(LVISStratifiedMetric='lvis-api', CocoStratifiedMetric='pycocotools')


@pytest.mark.parametrize('reference', [False, True])
@pytest.mark.parametrize('metric_type, keys', [('LVISStratifiedMetric', [
    'lvis/bbox_AP', 'lvis/bbox_AP50', 'lvis/bbox_APr', 'lvis/bbox_APc', 'lvis/bbox_APf'
]), ('CocoStratifiedMetric', ['coco/bbox_mAP', 'coco/bbox_mAP_50'])])
def test_no_detections_give_zeros(ann_files, tmp_path, metric_type, keys, reference):
    val_path, train_path = ann_files[metric_type]
    preds = make_predictions(val_path)
    for p in preds.values():
        p.update(
            bboxes=p['bboxes'][:0],
            labels=p['labels'][:0],
            scores=p['scores'][:0],
            masks=p['masks'][:0])
    backend = REFERENCE[metric_type] if reference else 'faster-coco-eval'
    results, summary = run_metric(
        val_path,
        train_path,
        preds,
        str(tmp_path),
        metric=('bbox', ),
        metric_type=metric_type,
        backend=backend)
    assert [results[key] for key in keys] == [0.0] * len(keys)
    assert all(v['AP'] == 0.0 for v in summary['bbox']['bins'].values())


@pytest.mark.parametrize('metric_type', METRIC_TYPES)
def test_format_only_keeps_the_result_files_and_evaluates_nothing(ann_files, tmp_path, metric_type):
    prefix = str(tmp_path / 'preds' / 'results')
    os.makedirs(osp.dirname(prefix))
    metric_obj, preds = build(
        metric_type,
        ann_files, ['bbox', 'segm'],
        format_only=True,
        outfile_prefix=prefix,
        out_dir=str(tmp_path / 'report'))
    samples = data_samples(preds)
    metric_obj.process({}, samples)
    assert metric_obj.evaluate(len(samples)) == {}
    for iou_type in ('bbox', 'segm'):
        with open(f'{prefix}.{iou_type}.json') as f:
            written = json.load(f)
        assert {r['image_id'] for r in written} == set(preds)
        assert len(written) == sum(len(p['scores']) for p in preds.values())
    assert not osp.exists(tmp_path / 'report'), 'format_only wrote a report'


@pytest.mark.parametrize('metric_type', METRIC_TYPES)
def test_segm_without_masks_names_the_metric_and_the_missing_field(ann_files, metric_type):
    metric_obj, preds = build(metric_type, ann_files, ['segm'])
    samples = data_samples(preds)
    for sample in samples:
        del sample['pred_instances']['masks']
    metric_obj.process({}, samples)
    with pytest.raises(ValueError, match=f'{metric_type}: metric "segm" .* no "masks"'):
        metric_obj.evaluate(len(samples))


@pytest.mark.parametrize('reference', [False, True])
@pytest.mark.parametrize('metric_type', METRIC_TYPES)
def test_the_summary_time_and_memory_go_to_the_log(ann_files, tmp_path, metric_type, reference):
    backend = REFERENCE[metric_type] if reference else 'faster-coco-eval'
    log_file = str(tmp_path / 'run.log')
    MMLogger.get_instance(f'loop-{metric_type}-{backend}', log_file=log_file)
    metric_obj, preds = build(
        metric_type, ann_files, ['bbox'], out_dir=str(tmp_path), backend=backend)
    samples = data_samples(preds)
    metric_obj.process({}, samples)
    metric_obj.evaluate(len(samples))
    with open(log_file) as f:
        log = f.read()
    # the line both lvis-api and pycocotools print first in their summaries
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all' in log
    num_dets = sum(len(p['labels']) for p in preds.values())
    assert re.search(
        rf'{metric_type} bbox \({backend}\): {len(preds)} images, {num_dets} '
        r'detections: \d+\.\d s, peak memory \d+\.\d\d GiB', log), log


@pytest.mark.parametrize('metric_type', METRIC_TYPES)
def test_a_progress_bar_from_enough_images(ann_files, tmp_path, metric_type, capsys, monkeypatch):
    """mmengine's progress bar, counting detections, from PROGRESS_MIN_IMAGES images on
    (2,000; lowered here to the hand-made set's 12)."""
    from mmfrozen.evaluation import stratified_metric_base
    metric_obj, preds = build(metric_type, ann_files, ['bbox'], out_dir=str(tmp_path))
    samples = data_samples(preds)
    metric_obj.process({}, samples)
    metric_obj.evaluate(len(samples))
    assert 'task/s' not in capsys.readouterr().out  # 12 images: no bar

    monkeypatch.setattr(stratified_metric_base, 'PROGRESS_MIN_IMAGES', len(preds))
    metric_obj.process({}, samples)
    metric_obj.evaluate(len(samples))
    out = capsys.readouterr().out
    assert re.search(r'\[>+\] (\d+)/\1, .*task/s', out), repr(out[-3000:])
