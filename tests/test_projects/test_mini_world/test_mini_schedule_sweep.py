"""The mini world's schedule sweep (``mini_schedule_sweep.py``): the cascade's options as
``tools/train.py`` parses them (fast), and end to end at tiny scale (``mini_world``): the plain
FPN pair and the Cascade + NAS-FPN pair at 1x and 2x the tiny schedule, one seed (the mean ±
std over seeds is the classifier sweep's, tested end to end with two), the real runner and
metric; the table, sweep.json and plot match the runs' own files.

It runs in the tiny mini reproduction's work dir, as a user runs it in theirs: the FPN pair's 1x
runs are the main job's, reused."""
import argparse
import json
import os.path as osp

import pytest
from mmengine.config import Config, DictAction

from projects.mini_world.mini_world.pipeline import SCALES, MiniReproduction, per_stage_options
from projects.mini_world.mini_world.schedule_sweep import (SCHEDULE_PAIRS, SchedulePoint,
                                                           ScheduleSweep)

SWEEP = ['projects/mini_world/tools/mini_schedule_sweep.py', '--scale', 'tiny', '--schedules',
         '2', '1', '--pairs', 'fpn', 'cascade-nasfpn', '--seeds', '1', '--threads', '1',
         '--jobs', '2']
CASCADE = SCHEDULE_PAIRS['cascade-nasfpn']
FPN = SCHEDULE_PAIRS['fpn']


def _name(config: str) -> str:
    return osp.splitext(osp.basename(config))[0]


def _json(path):
    with open(path) as handle:
        return json.load(handle)


def _train_py_options(args):
    """The ``--cfg-options`` of a job's arguments, parsed as MMDetection's train.py parses them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('--work-dir')
    parser.add_argument('--resume', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(args[1:]).cfg_options


def test_cascade_jobs_give_every_stage_the_vocabulary(tmp_path):
    point = SchedulePoint(str(tmp_path), SCALES['tiny'], 2, detector_configs=CASCADE)
    jobs = point.detector_jobs()
    assert [job.args[1] for job in jobs] == list(reversed(CASCADE))
    for job in jobs:
        cfg = Config.fromfile(job.args[1])
        cfg.merge_from_dict(_train_py_options(job.args))
        assert [head.num_classes for head in cfg.model.roi_head.bbox_head] == \
            [len(point.vocabulary)] * 3
        assert cfg.train_cfg.max_epochs == 2 * SCALES['tiny'].detector_epochs
        assert job.args[job.args.index('--work-dir') + 1] == osp.join(
            str(tmp_path), 'runs_schedule-2x', _name(job.args[1]), 'seed0')
    single = ['tools/train.py', 'x.py', 'model.roi_head.bbox_head.num_classes=6']
    assert per_stage_options(single, 0) == single


def test_the_main_job_gives_every_cascade_stage_the_vocabulary(tmp_path):
    """``mini_reproduction.py --extra-configs`` with a Cascade config: each of its box heads gets
    the vocabulary (a list's items take one option each)."""
    reproduction = MiniReproduction(str(tmp_path), SCALES['tiny'], detector_configs=CASCADE[:1])
    [job] = reproduction.detector_jobs()
    cfg = Config.fromfile(job.args[1])
    cfg.merge_from_dict(_train_py_options(job.args))
    assert [head.num_classes for head in cfg.model.roi_head.bbox_head] == \
        [len(reproduction.vocabulary)] * 3


def test_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match='schedules'):
        ScheduleSweep(str(tmp_path), SCALES['tiny'], schedules=[1, 1])
    with pytest.raises(ValueError, match='pairs'):
        ScheduleSweep(str(tmp_path), SCALES['tiny'], pairs=['fpn', 'bogus'])


@pytest.fixture(scope='module')
def tiny_sweep(tiny_mini_reproduction, run_tool):
    work_dir, _ = tiny_mini_reproduction
    proc = run_tool([*SWEEP, '--work-dir', work_dir], timeout=900)
    return work_dir, proc


def _run_dirs(work_dir, factor, config):
    root = 'runs' if factor == 1 else f'runs_schedule-{factor}x'
    return [osp.join(work_dir, root, _name(config), 'seed0')]


@pytest.mark.mini_world
def test_main_job_runs_reused_the_others_trained(tiny_sweep):
    _, proc = tiny_sweep
    lines = (proc.stdout + proc.stderr).splitlines()
    started = [line for line in lines if ': started (1 thread(s))' in line]
    # FPN pair at 2x, the cascade pair at 1x and 2x; one seed
    assert len(started) == 2 + 2 * 2
    assert not any('faster-rcnn' in line and '1x schedule' in line for line in started)
    # the two data sets, the classifier and export; the FPN pair's 1x runs of seed 0
    assert sum('reused' in line for line in lines) == 2 + 2 + 2


@pytest.mark.mini_world
def test_each_run_trained_its_schedule(tiny_sweep):
    work_dir, _ = tiny_sweep
    epochs = SCALES['tiny'].detector_epochs
    for factor in (1, 2):
        for config in (*FPN, *CASCADE):
            for run_dir in _run_dirs(work_dir, factor, config):
                assert osp.isfile(osp.join(run_dir, 'done.json')), run_dir
                assert osp.isfile(osp.join(run_dir, f'epoch_{factor * epochs}.pth'))
                assert not osp.isfile(osp.join(run_dir, f'epoch_{factor * epochs + 1}.pth'))
                dumped = Config.fromfile(osp.join(run_dir, f'{_name(config)}.py'))
                assert dumped.train_cfg.max_epochs == factor * epochs
                heads = dumped.model.roi_head.bbox_head
                heads = heads if isinstance(heads, list) else [heads]
                assert {head.num_classes for head in heads} == {
                    len(dumped.val_dataloader.dataset.metainfo.classes)}


@pytest.mark.mini_world
def test_sweep_json_is_the_runs_own_numbers(tiny_sweep):
    work_dir, _ = tiny_sweep
    sweep = _json(osp.join(work_dir, 'schedule_sweep', 'sweep.json'))
    assert [(r['pair'], r['factor']) for r in sweep['results']] == [
        ('fpn', 1), ('fpn', 2), ('cascade-nasfpn', 1), ('cascade-nasfpn', 2)]
    for result in sweep['results']:
        finetune, frozen = SCHEDULE_PAIRS[result['pair']]
        for arm, config in (('finetune', finetune), ('frozen', frozen)):
            assert result[arm]['config'] == _name(config) and result[arm]['arm'] == arm
            for metric in ('AP', 'APr', 'APc', 'APf'):
                expected = [100 * _json(osp.join(d, 'stratified_eval', 'summary.json'))['bbox']
                            [metric] for d in _run_dirs(work_dir, result['factor'], config)]
                assert result[arm]['values'][metric] == pytest.approx(expected)
    assert len(sweep['run_elapsed_s']) == 2 * 2 * 2
    assert all(seconds > 0 for seconds in sweep['run_elapsed_s'].values())


@pytest.mark.mini_world
def test_table_and_plot(tiny_sweep):
    work_dir, proc = tiny_sweep
    assert 'Schedule sweep (tiny scale, schedules [1, 2]x, pairs fpn, cascade-nasfpn, 1 seed(s))' \
        ' finished' in proc.stdout
    table = open(osp.join(work_dir, 'schedule_sweep', 'table.md')).read()
    assert table in proc.stdout
    rows = [line for line in table.splitlines() if line.startswith('| ') and '---' not in line]
    assert [row.split(' | ')[:2] for row in rows[1:]] == [
        ['| fpn', '1x'], ['| fpn', '2x'], ['| cascade-nasfpn', '1x'], ['| cascade-nasfpn', '2x']]
    # 4 metrics x (2 arms + difference), one seed's values (no spread)
    assert all(len(row.split(' | ')) == 3 + 12 and ' ± ' not in row for row in rows[1:])
    with open(osp.join(work_dir, 'schedule_sweep', 'gap.png'), 'rb') as handle:
        assert handle.read(8) == b'\x89PNG\r\n\x1a\n'


@pytest.mark.mini_world
def test_rerun_reuses_everything(tiny_sweep, run_tool):
    work_dir, first = tiny_sweep
    proc = run_tool([*SWEEP, '--work-dir', work_dir], timeout=300)
    output = proc.stdout + proc.stderr
    assert 'started' not in output
    # the two data sets, the classifier and export; 2 pairs x 2 configs x 2 lengths
    assert output.count('reused') == 2 + 2 + 2 * 2 * 2
    table = open(osp.join(work_dir, 'schedule_sweep', 'table.md')).read()
    assert table in first.stdout and table in proc.stdout
