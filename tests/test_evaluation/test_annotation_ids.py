"""Annotation ids 0 and below, by the one rule of ``mmfrozen.evaluation.annotation_ids``: a
file numbered from 0 (as MMDetection's VOC converter numbers it) scores as the same file
numbered from 1, every key, bin and class, with each backend; ids that no evaluator can score
are an error naming the file and the field. (Against MMDetection's metrics:
``test_*_metric_contract.py``; drawn files: ``test_metric_properties.py``.)"""
import json

import pytest

from mmfrozen.evaluation.annotation_ids import AnnotationIdError, renumber_annotation_ids
from mmfrozen.testing.stratified import (make_predictions, make_train, make_val, run_metric,
                                         to_coco, write_numbered_from_zero)


def annotations(ids):
    return [dict(id=i, image_id=1, category_id=1, bbox=[0, 0, 1, 1]) for i in ids]


def test_positive_ids_are_left_alone():
    anns = annotations([7, 3, 12])
    assert renumber_annotation_ids(anns, 'a.json', 'Owner') is None
    assert [a['id'] for a in anns] == [7, 3, 12]


def test_an_id_0_or_below_renumbers_every_annotation_in_file_order():
    anns = annotations([5, 0, -2, 9])
    line = renumber_annotation_ids(anns, 'a.json', 'Owner')
    assert [a['id'] for a in anns] == [1, 2, 3, 4]
    assert line.startswith('Owner: annotation file a.json has 2 annotation id(s) of 0 or below')
    assert 'renumbered 1..4 in file order' in line


@pytest.mark.parametrize('ids, problem', [
    ([1, 2, 1], 'not unique: 1 repeated id(s), e.g. [1]'),
    ([1, '2'], 'not an integer'),
    ([1, 2.0], 'not an integer'),
    ([1, True], 'not an integer'),
    ([1, None], 'not an integer'),
])
def test_ids_no_evaluator_can_score_name_the_file_and_field(ids, problem):
    with pytest.raises(AnnotationIdError, match='Annotation file a.json: ') as info:
        renumber_annotation_ids(annotations(ids), 'a.json', 'Owner')
    assert problem in str(info.value) and '"id"' in str(info.value)


def test_an_annotation_without_id_is_named():
    anns = annotations([1, 2])
    del anns[1]['id']
    with pytest.raises(AnnotationIdError, match=r'no field "id" \(positions in "annotations": '
                       r'\[1\]\)'):
        renumber_annotation_ids(anns, 'a.json', 'Owner')


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """The hand-made LVIS and COCO sets (annotations numbered 1..N in file order), the same
    numbered from 0, and the training files."""
    root = tmp_path_factory.mktemp('annotation_ids')
    lvis = make_val(str(root / 'lvis_val.json'))
    lvis_train = make_train(str(root / 'lvis_train.json'))
    coco = to_coco(lvis, str(root / 'coco_val.json'))
    out = {}
    for name, val, train in (('LVISStratifiedMetric', lvis, lvis_train),
                             ('CocoStratifiedMetric', coco,
                              to_coco(lvis_train, str(root / 'coco_train.json')))):
        with open(val) as f:
            ids = [a['id'] for a in json.load(f)['annotations']]
        assert ids == list(range(1, len(ids) + 1))
        out[name] = (val, write_numbered_from_zero(val, str(root / f'{name}_from_0.json')),
                     train)
    return out


@pytest.mark.parametrize('backend', ['faster-coco-eval', 'reference'])
@pytest.mark.parametrize('metric_type', ['CocoStratifiedMetric', 'LVISStratifiedMetric'])
def test_a_file_numbered_from_0_scores_as_numbered_from_1(files, tmp_path, metric_type, backend):
    from_one, from_zero, train = files[metric_type]
    if backend == 'reference':
        backend = 'lvis-api' if metric_type.startswith('LVIS') else 'pycocotools'
    preds = make_predictions(from_one)
    runs = {}
    for name, val in (('from_one', from_one), ('from_zero', from_zero)):
        out = tmp_path / name
        results, summary = run_metric(val, train, preds, str(out), metric=('bbox', ),
                                      metric_type=metric_type, backend=backend, plot=False)
        rows = json.loads((out / 'bbox_per_class.json').read_text())
        runs[name] = results, summary, rows
    assert runs['from_zero'][0] == runs['from_one'][0]
    assert runs['from_zero'][1]['bbox'] == runs['from_one'][1]['bbox']
    assert runs['from_zero'][2] == runs['from_one'][2]
    assert 0 < runs['from_one'][1]['bbox']['AP'] < 1
