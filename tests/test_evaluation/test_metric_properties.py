"""Property-based tests of the stratified metrics: on drawn COCO and LVIS ground truth and
detections (:mod:`mmfrozen.testing.eval_strategies`: any ids, 0 and negative ones included,
empty images, crowd regions, tied scores, more detections than the reference keeps, boxes at
the image border, boxes and masks), each backend of ours equals the reference run on the file
as the metrics document they evaluate it (annotation ids 0 or below renumbered 1..N, only the
evaluated images): the ``*_exact`` keys and every class's AP equal pycocotools' ``COCOeval`` /
lvis-api's ``LVISEval``, and, where every image is evaluated, the parent-named keys equal
MMDetection's ``CocoMetric`` / ``LVISMetric`` on the renumbered file. Broken files raise an
error naming the file and the field.

Each property runs twice: a few dozen examples in the fast suite (derandomized: the same
examples each run), a few hundred, freshly drawn, in the full suite (``runs``), where the
examples are also checked to cover each feature the strategy promises.
"""
import contextlib
import io
import json
import os.path as osp
import tempfile
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from mmdet.registry import METRICS

import mmfrozen  # noqa: F401  registers the metrics
from mmfrozen.testing.eval_strategies import (FILE_FAULTS, LVIS_FAULTS, EvalCase, broken_files,
                                              data_samples, eval_cases, results_json)
from mmfrozen.testing.stratified import (close, coco_per_class_ap, coco_reference,
                                         lvis_reference, reference_per_class_ap, renumbered,
                                         same_value)

COCO_KEYS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')
LVIS_KEYS = COCO_KEYS + ('APr', 'APc', 'APf')
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
FAST = settings(max_examples=30, deadline=None, database=None, derandomize=True,
                suppress_health_check=HEALTH)
FULL = settings(max_examples=300, deadline=None, database=None, suppress_health_check=HEALTH)
FEATURES = ('annotation id <= 0', 'image or category id <= 0', 'empty image', 'tied scores',
            'over the detection limit', 'box at the border', 'segm', 'part of the images',
            'area other than the box')


def dump(data: Dict[str, Any], path: str) -> str:
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def evaluate(metric_type: str, ann_file: str, case: EvalCase, **kwargs) -> Dict[str, float]:
    """Build the metric on ``ann_file`` and evaluate it on the case's detections."""
    metric = METRICS.build(dict(type=metric_type, ann_file=ann_file,
                                metric=list(case.iou_types), **kwargs))
    metric.dataset_meta = dict(classes=[c['name'] for c in case.gt['categories']])
    samples = data_samples(case)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it goes
        metric.process({}, samples)
        return metric.evaluate(len(samples))


def check_against_references(case: EvalCase) -> None:
    """Ours, with each backend, on the case's own file; the references on the renumbered one."""
    lvis = case.lvis
    prefix, keys = ('lvis', LVIS_KEYS) if lvis else ('coco', COCO_KEYS)
    with tempfile.TemporaryDirectory() as tmp:
        ann_file = dump(case.gt, osp.join(tmp, 'gt.json'))
        fixed = dump(renumbered(case.gt), osp.join(tmp, 'renumbered.json'))
        # the parents score every image of the file: their keys are ours on the whole file
        parent = evaluate('LVISMetric' if lvis else 'CocoMetric', fixed, case) \
            if case.every_image else {}
        refs = {}
        for iou_type in case.iou_types:
            preds = results_json(case, iou_type)
            with contextlib.redirect_stdout(io.StringIO()):
                ref = (lvis_reference if lvis else coco_reference)(fixed, preds, iou_type,
                                                                   img_ids=case.evaluated)
            values = ref.results if lvis else dict(zip(COCO_KEYS, ref.stats))
            per_class = reference_per_class_ap(ref) if lvis else coco_per_class_ap(ref)
            refs[iou_type] = values, per_class
        for backend in ('faster-coco-eval', 'lvis-api' if lvis else 'pycocotools'):
            out_dir = osp.join(tmp, backend)
            ours = evaluate(f'{"LVIS" if lvis else "Coco"}StratifiedMetric', ann_file, case,
                            backend=backend, out_dir=out_dir, plot=False)
            different = {k: (v, ours.get(k)) for k, v in parent.items()
                         if not same_value(v, ours.get(k))}
            assert not different, f'{backend}: (parent, ours) differ: {different}'
            for iou_type, (values, per_class) in refs.items():
                for key in keys:
                    got = ours.get(f'{prefix}/{iou_type}_{key}_exact')
                    assert close(got, values[key]), (backend, iou_type, key, got, values[key])
                with open(osp.join(out_dir, f'{iou_type}_per_class.json')) as f:
                    rows = {row['category_id']: row['AP'] for row in json.load(f)}
                assert set(rows) == set(per_class)
                wrong = {c: (rows[c], ap) for c, ap in per_class.items() if not close(rows[c], ap)}
                assert not wrong, (backend, iou_type, wrong)


def check_broken(case: EvalCase, fault: str) -> None:
    """The broken file is refused with an error naming the file and the field, by each backend."""
    lvis = case.lvis
    with tempfile.TemporaryDirectory() as tmp:
        ann_file = dump(case.gt, osp.join(tmp, 'broken.json'))
        for backend in ('faster-coco-eval', 'lvis-api' if lvis else 'pycocotools'):
            with pytest.raises((ValueError, KeyError)) as info:
                evaluate(f'{"LVIS" if lvis else "Coco"}StratifiedMetric', ann_file, case,
                         backend=backend, out_dir=osp.join(tmp, backend), plot=False)
            message = str(info.value.args[0])  # a KeyError's str() quotes its message
            assert ann_file in message and FILE_FAULTS.get(fault, LVIS_FAULTS.get(fault)) \
                in message, (fault, message)


def check_coverage(cases: List[EvalCase]) -> None:
    seen = {feature for case in cases for feature in case.features()}
    missing = [f for f in FEATURES + (() if cases[0].lvis else ('crowd', )) if f not in seen]
    assert not missing, f'{len(cases)} examples never had: {missing}'


@FAST
@given(eval_cases())
def test_coco_metric_equals_pycocotools(case):
    check_against_references(case)


@FAST
@given(eval_cases(lvis=True))
def test_lvis_metric_equals_lvis_api(case):
    check_against_references(case)


def mis_scored_as_given(case: EvalCase) -> bool:
    """Whether pycocotools scores the file as given (what MMDetection's CocoMetric runs)
    otherwise than the renumbered file."""
    preds = results_json(case, 'bbox')
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        as_given = coco_reference(dump(case.gt, osp.join(tmp, 'gt.json')), preds, 'bbox')
        fixed = coco_reference(dump(renumbered(case.gt), osp.join(tmp, 'fixed.json')), preds,
                               'bbox')
    return list(as_given.stats) != list(fixed.stats)


def test_the_strategy_finds_the_id_0_problem_by_itself():
    """Without the renumbering the property fails, on a file with an annotation id 0."""
    case = find(eval_cases(), mis_scored_as_given,
                settings=settings(FAST, max_examples=300, phases=[Phase.generate]))
    assert 0 in [a['id'] for a in case.gt['annotations']]


@pytest.mark.runs
def test_the_id_0_counterexample_shrinks_to_one_annotation_with_id_0():
    case = find(eval_cases(), mis_scored_as_given, settings=settings(FULL, max_examples=300))
    assert [a['id'] for a in case.gt['annotations']] == [0]


@FAST
@given(broken_files(FILE_FAULTS))
def test_broken_coco_files_are_named(broken):
    check_broken(*broken)


@FAST
@given(broken_files(dict(FILE_FAULTS, **LVIS_FAULTS), lvis=True))
def test_broken_lvis_files_are_named(broken):
    check_broken(*broken)


@pytest.mark.runs
@pytest.mark.parametrize('lvis', [False, True], ids=['coco', 'lvis'])
def test_many_drawn_evaluations_equal_the_references(lvis):
    cases = []

    @FULL
    @given(eval_cases(lvis=lvis))
    def run(case):
        cases.append(case)
        check_against_references(case)

    run()
    check_coverage(cases)


@pytest.mark.runs
@pytest.mark.parametrize('lvis', [False, True], ids=['coco', 'lvis'])
def test_many_broken_files_are_named(lvis):
    faults = dict(FILE_FAULTS, **LVIS_FAULTS) if lvis else FILE_FAULTS

    @FULL
    @given(broken_files(faults, lvis=lvis))
    def run(broken):
        check_broken(*broken)

    run()
