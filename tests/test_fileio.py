"""No input file runs code: results pickles are read restrictedly; bad checkpoints are named."""
import json
import os
import os.path as osp
import pickle

import pytest
import torch

from mmfrozen.testing import TINY_FASTER_RCNN
from mmfrozen.testing.runs import write_config
from mmfrozen.fileio import UnsafeResultsError, load_results


class _RunsCode:
    """A pickle that runs a shell command when loaded with plain pickle."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class _StorageRunsCode:
    """A pickle that names torch's own storage loader, with a payload that runs code."""

    def __init__(self, marker: str) -> None:
        self.payload = pickle.dumps(_RunsCode(marker))

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.payload, ))


@pytest.fixture(scope='module')
def test_results(trained_tiny, tiny_coco_options, tmp_path_factory, run_tool):
    """tools/test.py --out of the tiny detector: the file the restricted reader must accept."""
    out = str(tmp_path_factory.mktemp('results') / 'results.pkl')
    run_tool(['tools/test.py', TINY_FASTER_RCNN, osp.join(trained_tiny, 'epoch_2.pth'),
              '--work-dir', osp.dirname(out), '--out', out, '--cfg-options',
              *tiny_coco_options])
    return out


@pytest.mark.parametrize('evil', [_RunsCode,
                                  pytest.param(_StorageRunsCode, marks=pytest.mark.runs)])
def test_stratified_eval_refuses_a_pickle_that_runs_code(tmp_path, tiny_coco, evil, run_tool):
    marker = tmp_path / 'ran'
    evil_pkl = tmp_path / 'evil.pkl'
    evil_pkl.write_bytes(pickle.dumps([evil(str(marker))]))
    ann = osp.join(tiny_coco, 'annotations', 'instances_val2017.json')
    proc = run_tool(['tools/analysis/stratified_eval.py', str(evil_pkl), ann, '--train-ann',
                     ann, '--no-plot'], check=False)
    assert proc.returncode != 0
    assert not marker.exists(), 'the pickle ran its command'
    assert f'Refused to read results file {str(evil_pkl)!r}' in proc.stderr


@pytest.mark.runs
def test_restricted_reader_reads_what_test_py_writes(test_results):
    with open(test_results, 'rb') as f:
        reference = pickle.load(f)  # our own file, written by tools/test.py just now
    restricted = load_results(test_results)
    assert len(restricted) == len(reference) == 15
    for ours, theirs in zip(restricted, reference):
        assert ours.keys() == theirs.keys()
        for key in ours['pred_instances']:
            assert torch.equal(ours['pred_instances'][key], theirs['pred_instances'][key])
        assert {k: v for k, v in ours.items() if k != 'pred_instances'} == \
            {k: v for k, v in theirs.items() if k != 'pred_instances'}


@pytest.mark.runs
def test_stratified_eval_reads_json_results_as_the_pickle(test_results, tiny_coco, tmp_path,
                                                          run_tool):
    items = load_results(test_results)
    as_json = [dict({k: v for k, v in item.items() if k != 'pred_instances'},
                    pred_instances={k: v.tolist() for k, v in item['pred_instances'].items()})
               for item in items]
    json_file = tmp_path / 'results.json'
    json_file.write_text(json.dumps(as_json))
    ann = osp.join(tiny_coco, 'annotations', 'instances_val2017.json')
    train_ann = osp.join(tiny_coco, 'annotations', 'instances_train2017.json')
    summaries = []
    for i, results in enumerate((test_results, str(json_file))):
        out_dir = tmp_path / f'report_{i}'
        run_tool(['tools/analysis/stratified_eval.py', results, ann, '--train-ann', train_ann,
                  '--no-plot', '--out-dir', str(out_dir)])
        with open(out_dir / 'summary.json') as f:
            summaries.append(json.load(f))
    assert summaries[0] == summaries[1]


def test_other_results_formats_are_refused(tmp_path):
    path = tmp_path / 'results.yaml'
    path.write_text('!!python/object/apply:os.system ["true"]\n')
    with pytest.raises(ValueError, match='read only as .pkl'):
        load_results(str(path))
    empty = tmp_path / 'empty.pkl'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='is empty'):
        load_results(str(empty))
    truncated = tmp_path / 'truncated.pkl'
    truncated.write_bytes(pickle.dumps([{'a': torch.ones(3)}])[:40])
    with pytest.raises(ValueError, match='truncated'):
        load_results(str(truncated))
    assert not isinstance(UnsafeResultsError('x'), ValueError)


@pytest.mark.runs
def test_a_truncated_checkpoint_is_named_in_the_error(tmp_path, trained_tiny, tiny_coco_options,
                                                      run_tool):
    with open(osp.join(trained_tiny, 'epoch_1.pth'), 'rb') as f:
        data = f.read()
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(data[:len(data) // 2])
    proc = run_tool(['tools/test.py', TINY_FASTER_RCNN, str(truncated), '--work-dir',
                     str(tmp_path / 'work'), '--cfg-options', *tiny_coco_options], check=False)
    assert proc.returncode != 0
    assert f'Could not read checkpoint {str(truncated)!r} (truncated' in proc.stderr


@pytest.mark.runs
@pytest.mark.parametrize('path', ['load_from', 'resume', 'init_cfg', 'test.py'])
def test_a_checkpoint_that_runs_code_is_refused_on_every_path(tmp_path, tiny_coco_options, path,
                                                              run_tool):
    marker = tmp_path / 'ran'
    hostile = tmp_path / 'hostile.pth'
    torch.save({'state_dict': {}, 'meta': _RunsCode(str(marker))}, hostile)
    config = write_config(str(tmp_path / 'cfg.py'), TINY_FASTER_RCNN, [
        'model = dict(backbone=dict(init_cfg=dict(_delete_=True, type="Pretrained", '
        f'checkpoint="{hostile}")))' if path == 'init_cfg' else ''])
    work = ['--work-dir', str(tmp_path / 'work')]
    args = {
        'load_from': ['tools/train.py', config, *work, '--cfg-options', f'load_from={hostile}'],
        'resume': ['tools/train.py', config, *work, '--resume', str(hostile), '--cfg-options'],
        'init_cfg': ['tools/train.py', config, *work, '--cfg-options'],
        'test.py': ['tools/test.py', config, str(hostile), *work, '--cfg-options'],
    }[path]
    proc = run_tool([*args, *tiny_coco_options], check=False)
    assert proc.returncode != 0
    assert f'Refused to load checkpoint {str(hostile)!r}' in proc.stderr
    assert not marker.exists(), 'the checkpoint ran its command'
