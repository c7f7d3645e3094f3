"""CocoStratifiedMetric keeps CocoMetric's promises.

The scenarios of MMDetection's own tests of ``CocoMetric`` (one image, four boxes of two
classes; its init errors, bbox and segm, metric_items, classwise, iou_thrs, proposal and
proposal_fast, empty results, ground truth without json, format_only), then the hand-made
12-image set with misses and a crowd box, each run through ``CocoMetric`` and ours on the same
inputs: every key CocoMetric returns is returned with its value, the same errors are raised,
the same files are written, the same ``mAP_copypaste`` lines are logged. Where CocoMetric
mislabels (classwise with categories listed out of id order), the test says how.
"""
import json

import numpy as np
import pytest
from mmdet.registry import METRICS

from mmfrozen.testing.stratified import (ONE_IMAGE_CLASSES, assert_drop_in, data_samples,
                                         evaluate_both, evaluate_metric, log_lines,
                                         make_categories, make_predictions, make_train,
                                         make_val, one_image_sample, same_value, to_coco,
                                         write_numbered_from_zero, write_one_image_file)

BACKENDS = ['faster-coco-eval', 'pycocotools']


@pytest.fixture(scope='module')
def one_image(tmp_path_factory) -> str:
    return write_one_image_file(str(tmp_path_factory.mktemp('coco_contract') / 'fake.json'))


def both(tmp_path, samples=None, backend='faster-coco-eval', classes=ONE_IMAGE_CLASSES,
         train=None, **kwargs):
    """CocoMetric and ours (with ``backend`` and ``train_ann_file=train``) on ``samples``
    (default: the one image, every box found)."""
    samples = [one_image_sample()] if samples is None else samples
    return evaluate_both('CocoMetric', 'CocoStratifiedMetric', samples, classes, str(tmp_path),
                         ours=dict(backend=backend, train_ann_file=train), **kwargs)


def test_init_refuses_an_unknown_metric(one_image, tmp_path):
    parent, ours = both(tmp_path, ann_file=one_image, metric='unknown')
    assert isinstance(parent.error, KeyError) and 'metric should be one of' in str(parent.error)
    assert_drop_in(parent, ours)


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('metric', ['bbox', ['bbox', 'segm']])
def test_evaluate(one_image, tmp_path, metric, backend):
    parent, ours = both(tmp_path, backend=backend, ann_file=one_image, metric=metric,
                        classwise=False, outfile_prefix='test')
    assert parent.results['coco/bbox_mAP'] == 1.0 and set(parent.files) == {
        'test.bbox.json', 'test.segm.json'}
    assert_drop_in(parent, ours)
    assert log_lines(ours.log, '_mAP_copypaste') == log_lines(parent.log, '_mAP_copypaste')


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('items', [['mAP_m'], ['mAP', 'AR@100', 'AR@1000', 'AR_l@1000']])
def test_metric_items(one_image, tmp_path, items, backend):
    parent, ours = both(tmp_path, backend=backend, ann_file=one_image, metric_items=items)
    assert list(parent.results) == [f'coco/bbox_{item}' for item in items]
    assert_drop_in(parent, ours)


def test_an_unknown_metric_item_raises_the_same_error(one_image, tmp_path):
    parent, ours = both(tmp_path, ann_file=one_image, metric_items=['invalid'])
    assert isinstance(parent.error, KeyError)
    assert_drop_in(parent, ours)


@pytest.mark.parametrize('backend', BACKENDS)
def test_classwise(one_image, tmp_path, backend):
    parent, ours = both(tmp_path, backend=backend, ann_file=one_image, classwise=True)
    assert parent.results['coco/car_precision'] == 1.0
    assert_drop_in(parent, ours)


@pytest.mark.parametrize('backend', BACKENDS)
def test_manually_set_iou_thrs(one_image, tmp_path, backend):
    ours = METRICS.build(dict(type='CocoStratifiedMetric', ann_file=one_image, iou_thrs=[0.3,
                                                                                         0.6]))
    assert ours.iou_thrs == [0.3, 0.6]
    # evaluated with them: an array (0.5 among them), and a list (pycocotools looks 0.5 up
    # with ==, which NumPy refuses on a list: both raise)
    for iou_thrs in (np.array([0.3, 0.5, 0.6]), [0.3, 0.6]):
        parent, ours = both(tmp_path / str(len(iou_thrs)), backend=backend, ann_file=one_image,
                            iou_thrs=iou_thrs, metric_items=['mAP', 'mAP_50', 'mAP_75'])
        assert_drop_in(parent, ours)


def test_proposal_fast(one_image, tmp_path):
    for proposal_nums in ((100, 300, 1000), (2, 4)):
        parent, ours = both(tmp_path / str(len(proposal_nums)), ann_file=one_image,
                            metric='proposal_fast', proposal_nums=proposal_nums)
        assert list(parent.results) == [f'coco/AR@{n}' for n in proposal_nums]
        assert_drop_in(parent, ours)


def test_proposal(one_image, tmp_path):
    parent, ours = both(tmp_path, ann_file=one_image, metric='proposal')
    assert parent.results['coco/AR_l@1000'] == 1.0
    assert_drop_in(parent, ours)


@pytest.mark.parametrize('backend', BACKENDS)
def test_empty_results(one_image, tmp_path, backend):
    """CocoMetric logs pycocotools' error and returns nothing; ours returns the zeros."""
    parent, ours = both(tmp_path, [one_image_sample(empty=True)], backend=backend,
                        ann_file=one_image, metric=['bbox', 'segm'])
    assert parent.results == {}
    assert_drop_in(parent, ours)
    assert ours.results['coco/bbox_mAP'] == ours.results['coco/segm_mAP'] == 0.0


@pytest.mark.parametrize('backend', BACKENDS)
def test_evaluate_without_json(tmp_path, backend):
    parent, ours = both(tmp_path, [one_image_sample(with_instances=True)], backend=backend,
                        ann_file=None, metric=['bbox', 'segm'], outfile_prefix='test')
    assert set(parent.files) == {'test.bbox.json', 'test.segm.json', 'test.gt.json'}
    assert parent.results['coco/segm_mAP'] == 1.0
    assert_drop_in(parent, ours)


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
    """The hand-made set in COCO format (a crowd box), its categories listed by id (as COCO's
    own files list them) and as they are (out of id order); the training file."""
    root = tmp_path_factory.mktemp('coco_contract_hand_made')
    val = to_coco(make_val(str(root / 'lvis_val.json')), str(root / 'val.json'))
    train = to_coco(make_train(str(root / 'lvis_train.json')), str(root / 'train.json'))
    with open(val) as f:
        data = json.load(f)
    data['categories'].sort(key=lambda c: c['id'])
    val_sorted = str(root / 'val_sorted.json')
    with open(val_sorted, 'w') as f:
        json.dump(data, f)
    return dict(sorted=val_sorted, as_listed=val, train=train)


def hand_made_run(tmp_path, val, train, backend, **kwargs):
    with open(val) as f:
        classes = [c['name'] for c in json.load(f)['categories']]
    samples = data_samples(make_predictions(val))
    return both(tmp_path, samples, backend=backend, classes=classes, train=train, ann_file=val,
                **kwargs)


CUSTOM = dict(
    iou_thrs=np.array([0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8]),
    proposal_nums=(10, 100, 3),
    metric_items=['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100', 'AR@300',
                  'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000'])


# CocoMetric's parameters reach every number (CUSTOM): IoU thresholds other than the defaults,
# detection limits below the predictions per image and out of order (pycocotools keeps the
# last one), every item
@pytest.mark.parametrize('backend, setting', [('faster-coco-eval', {}),
                                              ('faster-coco-eval', CUSTOM),
                                              ('pycocotools', CUSTOM)],
                         ids=['defaults-faster-coco-eval', 'custom-faster-coco-eval',
                              'custom-pycocotools'])
def test_hand_made_set(hand_made, tmp_path, backend, setting):
    """Values that are not all 1.0: misses, false positives, a crowd box, 12 images."""
    parent, ours = hand_made_run(tmp_path, hand_made['sorted'], hand_made['train'], backend,
                                 metric=['bbox', 'segm', 'proposal'], classwise=True,
                                 outfile_prefix='results', **setting)
    assert parent.error is None, parent.error
    assert 0 < parent.results['coco/bbox_mAP'] < 1 and 0 < parent.results['coco/segm_mAP'] < 1
    assert_drop_in(parent, ours)
    assert log_lines(ours.log, '_mAP_copypaste') == log_lines(parent.log, '_mAP_copypaste')
    assert 'coco/bbox_AP_bin_11-100' in ours.results


def test_classwise_with_categories_out_of_id_order(hand_made, tmp_path):
    """CocoMetric names pycocotools' k-th class (by sorted id) after the file's k-th category;
    ours names each class's AP after the class (the headline is the same)."""
    parent, ours = hand_made_run(tmp_path, hand_made['as_listed'], None, 'faster-coco-eval',
                                 classwise=True)
    per_class = {k for k in parent.results if k.endswith('_precision')}
    assert_drop_in(parent._replace(results={k: v for k, v in parent.results.items()
                                            if k not in per_class}), ours)
    listed = [c['id'] for c in make_categories()]
    assert listed != sorted(listed)
    for k, cat_id in enumerate(sorted(listed)):
        assert same_value(ours.results[f'coco/class_{cat_id}_precision'],
                          parent.results[f'coco/class_{listed[k]}_precision'])


@pytest.mark.parametrize('backend', BACKENDS)
def test_an_id_0_file_scores_as_the_parent_scores_it_renumbered(hand_made, tmp_path, backend):
    """The deliberate difference: annotations numbered from 0 (as mmdet's VOC converter numbers
    them), which CocoMetric scores with annotation 0 never matched. Ours returns what CocoMetric
    returns on the same file numbered from 1, with one log line."""
    from_one = hand_made['sorted']
    from_zero = write_numbered_from_zero(from_one, str(tmp_path / 'from_zero.json'))
    with open(from_one) as f:
        classes = [c['name'] for c in json.load(f)['categories']]
    samples = data_samples(make_predictions(from_one))
    cfg = dict(metric=['bbox', 'segm', 'proposal'], classwise=True, outfile_prefix='results')
    parent = evaluate_metric(dict(type='CocoMetric', ann_file=from_one, **cfg), samples,
                             classes, str(tmp_path / 'parent'))
    parent_from_zero = evaluate_metric(dict(type='CocoMetric', ann_file=from_zero, **cfg),
                                       samples, classes, str(tmp_path / 'parent_from_zero'))
    ours = evaluate_metric(dict(type='CocoStratifiedMetric', ann_file=from_zero, backend=backend,
                                out_dir=str(tmp_path / 'report'), **cfg), samples, classes,
                           str(tmp_path / 'ours'))
    assert_drop_in(parent, ours)
    assert parent_from_zero.results['coco/bbox_mAP'] < parent.results['coco/bbox_mAP']
    assert len(log_lines(ours.log, 'annotation id(s) of 0 or below')) == 1
