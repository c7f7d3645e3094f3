"""The mini reproduction (``mini_reproduction.py``) end to end at tiny scale: every step, real
runner, real outputs."""
import json
import math
import os.path as osp

import pytest

pytestmark = pytest.mark.mini_world


@pytest.fixture(scope='module')
def tiny_run(tiny_mini_reproduction):
    return tiny_mini_reproduction


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_every_step_finished(tiny_run, mini_detectors):
    DETECTORS = mini_detectors
    work_dir, _ = tiny_run
    for folder in ('data/classification', 'data/mini_lvis', 'classifier', 'classifier/export',
                   *(f'runs/{name}/seed{seed}' for name in DETECTORS for seed in (0, 1))):
        with open(osp.join(work_dir, folder, 'done.json')) as handle:
            assert _is_number(json.load(handle)['elapsed_s']), folder
    assert osp.isfile(osp.join(work_dir, 'data', 'classification', 'world_classes.png'))
    with open(osp.join(work_dir, 'classifier', 'done.json')) as handle:
        accuracy = json.load(handle)['accuracy']
    assert 0 <= accuracy['top1'] <= 100 and 0 <= accuracy['top5'] <= 100
    assert osp.isfile(osp.join(work_dir, 'classifier', 'backbone_r18-w16.pth'))
    with open(osp.join(work_dir, 'timing.json')) as handle:
        assert _is_number(json.load(handle)['timing_s']['total'])


def test_each_detector_was_evaluated_and_costed(tiny_run, mini_detectors):
    DETECTORS = mini_detectors
    work_dir, _ = tiny_run
    for name in DETECTORS:
        run_dir = osp.join(work_dir, 'runs', name, 'seed0')
        with open(osp.join(run_dir, 'stratified_eval', 'summary.json')) as handle:
            summary = json.load(handle)
        text = json.dumps(summary)
        assert 'APr' in text and 'APf' in text, name
        with open(osp.join(run_dir, 'cost.json')) as handle:
            cost = json.load(handle)
        assert cost['complete'] and cost['params']['trainable'] > 0, name
    frozen = osp.join(work_dir, 'runs', DETECTORS[1], 'seed0', 'cost.json')
    finetune = osp.join(work_dir, 'runs', DETECTORS[0], 'seed0', 'cost.json')
    with open(frozen) as f, open(finetune) as g:
        frozen_cost, finetune_cost = json.load(f), json.load(g)
    assert frozen_cost['params']['backbone']['trainable'] == 0
    assert finetune_cost['params']['backbone']['trainable'] > 0


def test_table_printed_and_saved_with_plots(tiny_run, mini_detectors):
    DETECTORS = mini_detectors
    work_dir, proc = tiny_run
    assert 'Mini reproduction (tiny scale, 2 seed(s)) finished' in proc.stdout
    for name in DETECTORS:
        assert name in proc.stdout
    with open(osp.join(work_dir, 'compare', 'table.json')) as handle:
        rows = json.load(handle)
    rows = rows['rows'] if isinstance(rows, dict) else rows
    assert [row['config'] for row in rows] == list(DETECTORS)
    assert all(_is_number(row['AP']) for row in rows)
    # two seeds per detector: one row each, with the spread over the seeds
    assert all(row['runs'] == 2 and _is_number(row['AP_std']) for row in rows)
    assert osp.isfile(osp.join(work_dir, 'compare', 'metrics.png'))


def test_rerun_reuses_finished_steps(tiny_run, mini_detectors, mini_extra, run_tool):
    DETECTORS = mini_detectors
    work_dir, first = tiny_run
    proc = run_tool(['projects/mini_world/tools/mini_reproduction.py', '--scale', 'tiny',
                     '--work-dir', work_dir, '--seeds', '2', *mini_extra], timeout=300)
    lines = (proc.stdout + proc.stderr).splitlines()
    for step in ('classification-data', 'detection-data', 'classifier', 'export', *DETECTORS):
        assert any(step in line and 'reused' in line for line in lines), step
    text = '\n'.join(lines)
    assert 'started' not in text
    table = first.stdout[first.stdout.index('| config'):]
    assert proc.stdout[proc.stdout.index('| config'):] == table


def test_single_seed_run_prints_the_seed_spread_note(tiny_run, mini_detectors, mini_extra,
                                                     run_tool):
    DETECTORS = mini_detectors
    from projects.mini_world.mini_world.seed_spread import SEED_STD, single_seed_note

    work_dir, first = tiny_run
    assert single_seed_note(2) == '' and 'not evidence' not in first.stdout
    # seed 0 of every detector is done: this run only compares, and prints its 1-seed table
    proc = run_tool(['projects/mini_world/tools/mini_reproduction.py', '--scale', 'tiny',
                     '--work-dir', work_dir, '--seeds', '1', *mini_extra], timeout=300)
    note = single_seed_note(1)
    for metric, std in SEED_STD.items():
        assert f'{metric} {2 * std:.1f}' in note
    last_row = proc.stdout.rindex(f'| {DETECTORS[-1]} | finetune | 1 |')
    assert proc.stdout.index(note) > last_row
