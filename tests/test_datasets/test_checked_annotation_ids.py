"""The checked datasets and annotation ids: a file numbered from 0 is valid COCO and loads (one
log line), as MMDetection's datasets load it, and evaluates to the numbers of its renumbered
copy, whether the metric reads the file or the dataset's ground truth. Drawn files
(:mod:`mmfrozen.testing.eval_strategies`: any ids, crowd regions, LVIS's fields, boxes at the
border) load exactly as MMDetection's datasets load them; broken ones raise
:class:`~mmfrozen.datasets.AnnotationFileError` naming the file and the field (a few dozen
examples in the fast suite, a few hundred in the full one).
"""
import contextlib
import io
import json
import logging
import os.path as osp
import tempfile
from typing import Any, Dict, List

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from mmdet.datasets import CocoDataset, LVISV1Dataset
from mmdet.registry import METRICS
from mmengine.logging import MMLogger

import mmfrozen  # noqa: F401  registers the datasets and metrics
from mmfrozen.datasets import AnnotationFileError, CheckedCocoDataset, CheckedLVISV1Dataset
from mmfrozen.testing.eval_strategies import (DATASET_FAULTS, LVIS_FAULTS, EvalCase,
                                              broken_files, eval_cases)
from mmfrozen.testing.stratified import (coco_reference, make_predictions, make_val,
                                         reference_json, to_coco, write_numbered_from_zero,
                                         write_renumbered)

HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
FAST = settings(max_examples=30, deadline=None, database=None, derandomize=True,
                suppress_health_check=HEALTH)
FULL = settings(max_examples=300, deadline=None, database=None, suppress_health_check=HEALTH)


@contextlib.contextmanager
def logged() -> List[str]:
    """The messages the current MMLogger gets meanwhile."""
    records: List[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    messages: List[str] = []
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        messages.extend(r.getMessage() for r in records)


def build(kind, ann_file: str, classes) -> Any:
    # not serialized: mmengine's serialization runs gc.collect(), 0.2 s a dataset
    return kind(ann_file=ann_file, data_prefix=dict(img=''), metainfo=dict(classes=classes),
                pipeline=[], serialize_data=False)


def data_list(dataset) -> List[Dict[str, Any]]:
    return [dataset.get_data_info(i) for i in range(len(dataset))]


@pytest.fixture(scope='module')
def from_zero(tmp_path_factory):
    """The hand-made COCO set (a crowd box) numbered 1..N, and the same numbered from 0."""
    root = tmp_path_factory.mktemp('checked_ids')
    from_one = to_coco(make_val(str(root / 'lvis_val.json')), str(root / 'val.json'))
    return from_one, write_numbered_from_zero(from_one, str(root / 'val_from_0.json'))


def test_an_id_0_file_loads_as_mmdetection_loads_it_with_one_log_line(from_zero):
    from_one, path = from_zero
    with open(path) as f:
        data = json.load(f)
    classes = tuple(c['name'] for c in data['categories'])
    assert data['annotations'][0]['id'] == 0
    with logged() as messages:
        checked = build(CheckedCocoDataset, path, classes)
    lines = [m for m in messages if 'annotation id(s) of 0 or below' in m]
    assert len(lines) == 1 and path in lines[0] and 'CocoMetric' in lines[0]
    assert data_list(checked) == data_list(build(CocoDataset, path, classes))
    assert data_list(checked) == data_list(build(CocoDataset, from_one, classes))

    lvis = to_lvis(data)
    lvis_path = path.replace('.json', '_lvis.json')
    with open(lvis_path, 'w') as f:
        json.dump(lvis, f)
    with logged() as messages:
        checked = build(CheckedLVISV1Dataset, lvis_path, classes)
    assert len([m for m in messages if 'annotation id(s) of 0 or below' in m]) == 1
    assert data_list(checked) == data_list(build(LVISV1Dataset, lvis_path, classes))


def to_lvis(coco: Dict[str, Any]) -> Dict[str, Any]:
    lvis = json.loads(json.dumps(coco))
    for img in lvis['images']:
        img.update(coco_url=f'http://images.cocodataset.org/val2017/{img["file_name"]}',
                   neg_category_ids=[], not_exhaustive_category_ids=[])
    for cat in lvis['categories']:
        cat['frequency'] = 'f'
    for ann in lvis['annotations']:
        ann.pop('iscrowd')
    return lvis


def test_the_metric_sees_the_same_ids_from_the_file_and_from_the_dataset(from_zero, tmp_path):
    """From the file (ann_file) or converted from the dataset's ground truth (no ann_file):
    the numbers of pycocotools on the renumbered copy."""
    from_one, path = from_zero
    with open(path) as f:
        classes = tuple(c['name'] for c in json.load(f)['categories'])
    dataset = build(CheckedCocoDataset, path, classes)
    preds = make_predictions(from_one)
    samples = []
    for info in data_list(dataset):
        p = preds[info['img_id']]
        samples.append(dict(img_id=info['img_id'], ori_shape=(info['height'], info['width']),
                            instances=info['instances'],
                            pred_instances=dict(bboxes=torch.from_numpy(p['bboxes']),
                                                scores=torch.tensor(p['scores'],
                                                                    dtype=torch.float32),
                                                labels=torch.from_numpy(p['labels']))))
    results = {}
    for name, ann_file in (('file', path), ('dataset', None)):
        metric = METRICS.build(dict(type='CocoStratifiedMetric', ann_file=ann_file,
                                    out_dir=str(tmp_path / name), plot=False))
        metric.dataset_meta = dict(classes=classes)
        metric.process({}, samples)
        results[name] = metric.evaluate(len(samples))
    renumbered = write_renumbered(path, str(tmp_path / 'renumbered.json'))
    ref = coco_reference(renumbered, reference_json(preds, from_one, 'bbox'), 'bbox')
    for name, values in results.items():
        assert values['coco/bbox_AP_exact'] == pytest.approx(ref.stats[0], abs=1e-12), name
        assert values['coco/bbox_AP50_exact'] == pytest.approx(ref.stats[1], abs=1e-12), name
    assert 0 < ref.stats[0] < 1


def dump(data: Dict[str, Any], path: str) -> str:
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def check_loads_as_mmdetection(case: EvalCase) -> None:
    classes = tuple(c['name'] for c in case.gt['categories'])
    checked_kind, stock_kind = (CheckedLVISV1Dataset, LVISV1Dataset) if case.lvis else \
        (CheckedCocoDataset, CocoDataset)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        path = dump(case.gt, osp.join(tmp, 'ann.json'))
        assert data_list(build(checked_kind, path, classes)) == data_list(
            build(stock_kind, path, classes))


def check_refused(case: EvalCase, fault: str) -> None:
    classes = tuple(c['name'] for c in case.gt['categories'])
    kind = CheckedLVISV1Dataset if case.lvis else CheckedCocoDataset
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        path = dump(case.gt, osp.join(tmp, 'ann.json'))
        with pytest.raises(AnnotationFileError) as info:
            build(kind, path, classes)
    message = str(info.value)
    field = DATASET_FAULTS.get(fault) or LVIS_FAULTS[fault]
    assert f'Annotation file {path}' in message and field in message, (fault, message)


@FAST
@given(eval_cases(min_annotations=1))  # the checked datasets want ground truth
def test_drawn_coco_files_load_as_mmdetection_loads_them(case):
    check_loads_as_mmdetection(case)


@FAST
@given(eval_cases(lvis=True, min_annotations=1))
def test_drawn_lvis_files_load_as_mmdetection_loads_them(case):
    check_loads_as_mmdetection(case)


@FAST
@given(broken_files(DATASET_FAULTS))
def test_broken_coco_files_are_named(broken):
    check_refused(*broken)


@FAST
@given(broken_files(dict(DATASET_FAULTS, **LVIS_FAULTS), lvis=True))
def test_broken_lvis_files_are_named(broken):
    check_refused(*broken)


@pytest.mark.runs
@pytest.mark.parametrize('lvis', [False, True], ids=['coco', 'lvis'])
def test_many_drawn_files(lvis):
    faults = dict(DATASET_FAULTS, **LVIS_FAULTS) if lvis else DATASET_FAULTS

    @FULL
    @given(eval_cases(lvis=lvis, min_annotations=1))
    def valid(case):
        check_loads_as_mmdetection(case)

    @FULL
    @given(broken_files(faults, lvis=lvis))
    def broken(broken):
        check_refused(*broken)

    valid()
    broken()
