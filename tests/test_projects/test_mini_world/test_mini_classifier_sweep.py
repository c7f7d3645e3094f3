"""The mini world's classifier sweep (``mini_classifier_sweep.py``) at tiny scale: two classifier
epoch counts, both detector arms, two seeds, the real runner and metric; the table, sweep.json
and plot match the runs' own files.

It runs in the tiny mini reproduction's work dir, as a user runs it in theirs: the point at the
scale's own epoch count (1 at tiny scale) is the main job's classifier and runs, reused."""
import json
import os.path as osp

import pytest

pytestmark = pytest.mark.mini_world
SWEEP = ['projects/mini_world/tools/mini_classifier_sweep.py', '--scale', 'tiny', '--epochs', '2',
         '1', '--seeds', '2', '--threads', '1', '--jobs', '2']


@pytest.fixture(scope='module')
def tiny_sweep(tiny_mini_reproduction, run_tool):
    work_dir, _ = tiny_mini_reproduction
    proc = run_tool([*SWEEP, '--work-dir', work_dir], timeout=600)
    return work_dir, proc


def _json(path):
    with open(path) as handle:
        return json.load(handle)


def _run_dirs(work_dir, epochs, config):
    # the tiny scale's own classifier trains 1 epoch: that point is the main job's layout
    root = 'runs' if epochs == 1 else f'runs_classifier-{epochs}e'
    return [osp.join(work_dir, root, config, f'seed{seed}') for seed in (0, 1)]


def test_main_point_reused_the_others_trained(tiny_sweep):
    _, proc = tiny_sweep
    lines = (proc.stdout + proc.stderr).splitlines()
    started = [line for line in lines if ': started (1 thread(s))' in line]
    # the 2-epoch classifier and its 2 configs x 2 seeds; nothing of the main job's point
    assert len(started) == 1 + 2 * 2
    assert all('2 epoch(s)' in line for line in started)
    # the two data sets; the main point's classifier and export; its 2 configs x 2 seeds
    assert sum('reused' in line for line in lines) == 2 + 2 + 2 * 2


def test_each_point_has_its_classifier_and_runs(tiny_sweep, mini_detectors):
    FINETUNE, FROZEN = mini_detectors[:2]
    work_dir, _ = tiny_sweep
    for epochs, folder in ((1, 'classifier'), (2, 'classifier_2e')):
        log = _json(osp.join(work_dir, folder, 'done.json'))
        assert 0 <= log['accuracy']['top1'] <= 100
        # the classifier trained the point's epochs, and its backbone was exported
        assert osp.isfile(osp.join(work_dir, folder, f'epoch_{epochs}.pth'))
        assert not osp.isfile(osp.join(work_dir, folder, f'epoch_{epochs + 1}.pth'))
        assert osp.isfile(osp.join(work_dir, folder, 'backbone_r18-w16.pth'))
        for config in (FINETUNE, FROZEN):
            for run_dir in _run_dirs(work_dir, epochs, config):
                assert osp.isfile(osp.join(run_dir, 'done.json')), run_dir
                dumped = open(osp.join(run_dir, f'{config}.py')).read()
                # the detector loaded this point's backbone, not another point's
                assert osp.join(work_dir, folder, 'backbone_r18-w16.pth') in dumped


def test_sweep_json_is_the_runs_own_numbers(tiny_sweep, mini_detectors):
    FINETUNE, FROZEN = mini_detectors[:2]
    work_dir, _ = tiny_sweep
    sweep = _json(osp.join(work_dir, 'classifier_sweep', 'sweep.json'))
    assert [p['epochs'] for p in sweep['points']] == [1, 2]
    for point in sweep['points']:
        folder = 'classifier' if point['epochs'] == 1 else f'classifier_{point["epochs"]}e'
        assert point['top1'] == _json(osp.join(work_dir, folder, 'done.json'))['accuracy']['top1']
        for arm, config in (('finetune', FINETUNE), ('frozen', FROZEN)):
            assert point[arm]['config'] == config and point[arm]['arm'] == arm
            for metric in ('AP', 'APr', 'APc', 'APf'):
                expected = [100 * _json(osp.join(d, 'stratified_eval', 'summary.json'))['bbox']
                            [metric] for d in _run_dirs(work_dir, point['epochs'], config)]
                assert point[arm]['values'][metric] == pytest.approx(expected)


def test_table_and_plot(tiny_sweep):
    work_dir, proc = tiny_sweep
    assert 'Classifier sweep (tiny scale, epochs [1, 2], 2 seed(s)) finished' in proc.stdout
    table = open(osp.join(work_dir, 'classifier_sweep', 'table.md')).read()
    assert table in proc.stdout
    rows = [line for line in table.splitlines() if line.startswith('| ') and '---' not in line]
    assert [row.split(' | ')[0] for row in rows[1:]] == ['| 1', '| 2']
    assert all(row.count(' ± ') == 12 for row in rows[1:])  # 4 metrics x (2 arms + gap)
    with open(osp.join(work_dir, 'classifier_sweep', 'sweep.png'), 'rb') as handle:
        assert handle.read(8) == b'\x89PNG\r\n\x1a\n'


def test_rerun_reuses_everything(tiny_sweep, run_tool):
    work_dir, first = tiny_sweep
    proc = run_tool([*SWEEP, '--work-dir', work_dir], timeout=300)
    output = proc.stdout + proc.stderr
    assert 'started' not in output
    # the two data sets; each point's classifier and export; 2 configs x 2 seeds x 2 points
    assert output.count('reused') == 2 + 2 * 2 + 2 * 2 * 2
    table = open(osp.join(work_dir, 'classifier_sweep', 'table.md')).read()
    assert table in first.stdout and table in proc.stdout
