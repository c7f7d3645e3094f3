"""The stratified metrics on 2 gloo ranks: exactly the 1-rank numbers, and rank 0 holding one
copy of the collected results (not its own part twice, as MMEngine's CPU collection does)."""
import json

import pytest

from mmfrozen.testing import free_port
from mmfrozen.testing.stratified import make_predictions, make_train, make_val, run_metric, to_coco

SUBSET = set(range(1, 12))
pytestmark = pytest.mark.dist


@pytest.fixture(scope='module')
def two_ranks(tmp_path_factory, run_tool):
    root = tmp_path_factory.mktemp('dist_eval')
    lvis_val = make_val(str(root / 'lvis_val.json'))
    coco_val = to_coco(lvis_val, str(root / 'coco_val.json'))
    coco_train = to_coco(make_train(str(root / 'lvis_train.json')), str(root / 'coco_train.json'))
    out = root / 'out.json'
    run_tool(['-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port',
              str(free_port()), 'tests/test_evaluation/dist_eval_script.py', lvis_val, coco_val,
              coco_train, str(out), str(root / 'work')], timeout=600)
    with open(out) as f:
        return dict(json.load(f), lvis_val=lvis_val, coco_val=coco_val, coco_train=coco_train)


@pytest.mark.parametrize('metric_type, backend', [('LVISStratifiedMetric', 'faster-coco-eval'),
                                                  ('LVISStratifiedMetric', 'lvis-api'),
                                                  ('CocoStratifiedMetric', 'faster-coco-eval')])
def test_two_ranks_give_the_one_rank_numbers(two_ranks, tmp_path, metric_type, backend):
    lvis = metric_type == 'LVISStratifiedMetric'
    val_path = two_ranks['lvis_val'] if lvis else two_ranks['coco_val']
    preds = make_predictions(val_path, img_ids=SUBSET)
    one_rank, _ = run_metric(
        val_path,
        None if lvis else two_ranks['coco_train'],
        preds,
        str(tmp_path),
        metric_type=metric_type,
        backend=backend)
    assert two_ranks['metrics'][f'{metric_type}-{backend}'] == one_rank


def test_rank0_holds_one_copy_while_collecting(two_ranks):
    ours, mmengine = two_ranks['ours'], two_ranks['mmengine']
    # rank 0 keeps its own part (the same objects) and loads only the other rank's half (plus
    # the objects' and the unpickler's overhead)
    assert ours['own_items_kept']
    assert ours['peak'] <= 0.75 * ours['total'], (ours, mmengine)
    # the measure tells the difference: MMEngine's collection loads rank 0's part again
    assert mmengine['peak'] >= 1.0 * mmengine['total'], (ours, mmengine)
