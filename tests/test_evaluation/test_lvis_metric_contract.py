"""LVISStratifiedMetric keeps LVISMetric's promises.

The scenarios of MMDetection's own tests of ``LVISMetric`` (one image, four boxes of two
classes, a file with frequencies but no instance counts; its init errors, bbox and segm,
metric_items, classwise, iou_thrs, proposal and proposal_fast, empty results, format_only),
ground truth from the data set (``ann_file=None``), then the hand-made 12-image set with
federated labels, each run through ``LVISMetric`` and ours on the same inputs: every key
LVISMetric returns is returned with its value (-1 included), the same errors are raised, the
same files are written. Where LVISMetric mislabels (classwise with categories listed out of id
order), the test says how.
"""
import json

import pytest
from mmdet.registry import METRICS

from mmfrozen.testing.stratified import (ONE_IMAGE_CLASSES, assert_drop_in, data_samples,
                                         evaluate_both, evaluate_metric, log_lines,
                                         make_categories, make_predictions, make_val,
                                         one_image_sample, same_value,
                                         write_numbered_from_zero, write_one_image_file)

BACKENDS = ['faster-coco-eval', 'lvis-api']


@pytest.fixture(scope='module')
def one_image(tmp_path_factory) -> str:
    return write_one_image_file(
        str(tmp_path_factory.mktemp('lvis_contract') / 'fake.json'), lvis=True)


def both(tmp_path, samples=None, backend='faster-coco-eval', classes=ONE_IMAGE_CLASSES,
         **kwargs):
    """LVISMetric and ours (with ``backend``) on ``samples`` (default: the one image, every
    box found)."""
    samples = [one_image_sample()] if samples is None else samples
    return evaluate_both('LVISMetric', 'LVISStratifiedMetric', samples, classes, str(tmp_path),
                         ours=dict(backend=backend), **kwargs)


def test_init_refuses_an_unknown_metric(one_image, tmp_path):
    for metric in ('unknown', ['invalid']):
        parent, ours = both(tmp_path / str(len(metric)), ann_file=one_image, metric=metric)
        assert isinstance(parent.error, KeyError)
        assert 'metric should be one of' in str(parent.error)
        assert_drop_in(parent, ours)


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('metric', ['bbox', ['bbox', 'segm']])
def test_evaluate(one_image, tmp_path, metric, backend):
    parent, ours = both(tmp_path, backend=backend, ann_file=one_image, metric=metric,
                        classwise=False, outfile_prefix='test')
    # no rare class: lvis-api's -1, kept
    assert parent.results['lvis/bbox_APr'] == -1.0 and parent.results['lvis/bbox_AP'] == 1.0
    assert set(parent.files) == {'test.bbox.json', 'test.segm.json'}
    assert_drop_in(parent, ours)
    # the file has no instance counts: no bins, and no error
    assert not [k for k in ours.results if '_AP_bin_' in k]
    assert 'the AP by bins of training annotations is left out' in ours.log


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('items', [['APm'], ['AP', 'APr', 'AR@300', 'ARl@300', 'unknown']])
def test_metric_items(one_image, tmp_path, items, backend):
    parent, ours = both(tmp_path, backend=backend, ann_file=one_image, metric_items=items)
    assert list(parent.results) == [f'lvis/bbox_{item}' for item in items if item != 'unknown']
    assert_drop_in(parent, ours)


@pytest.mark.parametrize('backend', BACKENDS)
def test_classwise(one_image, tmp_path, backend):
    parent, ours = both(tmp_path, backend=backend, ann_file=one_image, classwise=True)
    assert parent.results['lvis/bicycle_precision'] == 1.0
    assert_drop_in(parent, ours)


def test_manually_set_iou_thrs(one_image, tmp_path):
    """LVISMetric keeps them (lvis-api evaluates its own thresholds)."""
    ours = METRICS.build(dict(type='LVISStratifiedMetric', ann_file=one_image, iou_thrs=[0.3,
                                                                                         0.6]))
    assert ours.iou_thrs == [0.3, 0.6]
    parent, ours = both(tmp_path, ann_file=one_image, iou_thrs=[0.3, 0.6])
    assert_drop_in(parent, ours)


def test_proposal_fast(one_image, tmp_path):
    for proposal_nums in ((100, 300, 1000), (2, 4)):
        parent, ours = both(tmp_path / str(len(proposal_nums)), ann_file=one_image,
                            metric='proposal_fast', proposal_nums=proposal_nums)
        assert list(parent.results) == [f'lvis/AR@{n}' for n in proposal_nums]
        assert_drop_in(parent, ours)


@pytest.mark.parametrize('backend', BACKENDS)
def test_proposal(one_image, tmp_path, backend):
    parent, ours = both(tmp_path, backend=backend, ann_file=one_image, metric='proposal')
    assert list(parent.results) == ['lvis/AR@300', 'lvis/ARs@300', 'lvis/ARm@300',
                                    'lvis/ARl@300']
    assert_drop_in(parent, ours)


@pytest.mark.parametrize('backend', BACKENDS)
def test_empty_results(one_image, tmp_path, backend):
    """LVISMetric logs lvis-api's error and returns nothing; ours returns the zeros."""
    parent, ours = both(tmp_path, [one_image_sample(empty=True)], backend=backend,
                        ann_file=one_image, metric=['bbox', 'segm'])
    assert parent.results == {}
    assert_drop_in(parent, ours)
    assert ours.results['lvis/bbox_AP'] == ours.results['lvis/segm_AP'] == 0.0


def test_ground_truth_from_the_data_set(tmp_path):
    """Without ann_file: format_only and proposal_fast work as in LVISMetric (and write the
    same files); bbox raises LVISMetric's KeyError, with a message saying why."""
    samples = [one_image_sample(with_instances=True)]
    for case, kwargs in (('format_only', dict(format_only=True, outfile_prefix='test')),
                         ('proposal_fast', dict(metric='proposal_fast', outfile_prefix='test'))):
        parent, ours = both(tmp_path / case, samples, ann_file=None, **kwargs)
        assert parent.error is None and 'test.gt.json' in parent.files, parent.error
        assert_drop_in(parent, ours)
    parent, ours = both(tmp_path / 'bbox', samples, ann_file=None, metric='bbox')
    assert isinstance(parent.error, KeyError)
    assert_drop_in(parent, ours, same_message=False)
    assert 'need ann_file' in str(ours.error)


def test_format_only(one_image, tmp_path):
    parent, ours = both(tmp_path / 'no_prefix', ann_file=one_image, format_only=True,
                        outfile_prefix=None)
    assert isinstance(parent.error, AssertionError)
    assert_drop_in(parent, ours)
    parent, ours = both(tmp_path / 'prefix', ann_file=one_image, format_only=True,
                        outfile_prefix='test')
    assert parent.results == {} and 'test.bbox.json' in parent.files
    assert_drop_in(parent, ours)
    assert ours.results == {}


@pytest.fixture(scope='module')
def hand_made(tmp_path_factory):
    """The hand-made LVIS set, its categories listed by id (as LVIS v1's files list them) and
    as they are (out of id order)."""
    root = tmp_path_factory.mktemp('lvis_contract_hand_made')
    val = make_val(str(root / 'val.json'))
    with open(val) as f:
        data = json.load(f)
    data['categories'].sort(key=lambda c: c['id'])
    val_sorted = str(root / 'val_sorted.json')
    with open(val_sorted, 'w') as f:
        json.dump(data, f)
    return dict(sorted=val_sorted, as_listed=val)


def hand_made_run(tmp_path, val, backend, **kwargs):
    with open(val) as f:
        classes = [c['name'] for c in json.load(f)['categories']]
    samples = data_samples(make_predictions(val))
    return both(tmp_path, samples, backend=backend, classes=classes, ann_file=val, **kwargs)


@pytest.mark.parametrize('backend', BACKENDS)
def test_hand_made_set(hand_made, tmp_path, backend):
    """Values that are not all 1.0: misses, false positives, negative and not-exhaustive
    labels, every frequency group, 12 images."""
    parent, ours = hand_made_run(tmp_path, hand_made['sorted'], backend,
                                 metric=['bbox', 'segm', 'proposal'], classwise=True,
                                 outfile_prefix='results')
    assert parent.error is None, parent.error
    assert 0 < parent.results['lvis/bbox_AP'] < 1 and 0 < parent.results['lvis/segm_APr'] < 1
    assert_drop_in(parent, ours)
    assert 'lvis/bbox_AP_bin_11-100' in ours.results  # the file's instance counts


def test_classwise_with_categories_out_of_id_order(hand_made, tmp_path):
    """LVISMetric names lvis-api's k-th class (by sorted id) after the file's k-th category;
    ours names each class's AP after the class (the headline is the same)."""
    parent, ours = hand_made_run(tmp_path, hand_made['as_listed'], 'faster-coco-eval',
                                 classwise=True)
    per_class = {k for k in parent.results if k.endswith('_precision')}
    assert_drop_in(parent._replace(results={k: v for k, v in parent.results.items()
                                            if k not in per_class}), ours)
    listed = [c['id'] for c in make_categories()]
    assert listed != sorted(listed)
    for k, cat_id in enumerate(sorted(listed)):
        assert same_value(ours.results[f'lvis/class_{cat_id}_precision'],
                          parent.results[f'lvis/class_{listed[k]}_precision'])


@pytest.mark.parametrize('backend', BACKENDS)
def test_an_id_0_file_scores_as_the_parent_scores_it_renumbered(hand_made, tmp_path, backend):
    """The deliberate difference: annotations numbered from 0, which LVISMetric (lvis-api)
    scores with annotation 0 never matched. Ours returns what LVISMetric returns on the same
    file numbered from 1, with one log line."""
    from_one = hand_made['sorted']
    from_zero = write_numbered_from_zero(from_one, str(tmp_path / 'from_zero.json'))
    with open(from_one) as f:
        classes = [c['name'] for c in json.load(f)['categories']]
    samples = data_samples(make_predictions(from_one))
    cfg = dict(metric=['bbox', 'proposal'], classwise=True, outfile_prefix='results')
    parent = evaluate_metric(dict(type='LVISMetric', ann_file=from_one, **cfg), samples,
                             classes, str(tmp_path / 'parent'))
    parent_from_zero = evaluate_metric(dict(type='LVISMetric', ann_file=from_zero, **cfg),
                                       samples, classes, str(tmp_path / 'parent_from_zero'))
    ours = evaluate_metric(dict(type='LVISStratifiedMetric', ann_file=from_zero, backend=backend,
                                out_dir=str(tmp_path / 'report'), **cfg), samples, classes,
                           str(tmp_path / 'ours'))
    assert_drop_in(parent, ours)
    assert parent_from_zero.results['lvis/bbox_AP'] < parent.results['lvis/bbox_AP']
    assert len(log_lines(ours.log, 'annotation id(s) of 0 or below')) == 1
