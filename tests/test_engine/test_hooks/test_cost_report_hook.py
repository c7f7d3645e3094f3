"""CostReportHook in real training runs through tools/train.py: complete and interrupted."""
import json

import pytest
from mmfrozen.testing import TINY_FASTER_RCNN
# One epoch of 6 iterations (24 images, batch 4), no validation.
ONE_EPOCH = [
    'train_cfg.max_epochs=1', 'train_cfg.val_begin=2', 'default_hooks.checkpoint.interval=10'
]

RAISE_AT_ITER_3 = '''
from mmdet.registry import HOOKS
from mmengine.hooks import Hook


@HOOKS.register_module()
class RaiseAtIterHook(Hook):
    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter == 2:  # the third iteration
            raise RuntimeError('interrupted on purpose')
'''

# The frozen backbone as mmfrozen's runner trains it; the tiny backbone has no pretrained
# weights, so the freeze check is told to allow that.
FROZEN_RUNNER = ("runner_type = 'FrozenBackboneRunner'\n"
                 "model = dict(backbone=dict(frozen_stages=4, norm_eval=True))\n"
                 "frozen = dict(modules=['backbone'], check=True, allow_uninitialized=True)\n")


def logged_train_iters(work_dir) -> list:
    """The training iterations' records of MMEngine's ``vis_data/scalars.json``."""
    (scalars, ) = work_dir.glob('*/vis_data/scalars.json')
    records = [json.loads(line) for line in scalars.read_text().splitlines() if line.strip()]
    return [r for r in records if 'time' in r and 'loss' in r]


def write_config(tmp_path, hooks: str, imports: str = "'mmfrozen'", extra: str = '') -> str:
    path = tmp_path / 'cost_hook_config.py'
    path.write_text(f'_base_ = {TINY_FASTER_RCNN!r}\n'
                    f'custom_imports = dict(imports=[{imports}], allow_failed_imports=False)\n'
                    f'custom_hooks = [{hooks}]\n{extra}')
    return str(path)


@pytest.mark.runs
def test_cost_json_written_by_a_frozen_training_run(tmp_path, tiny_coco_options, run_tool):
    config = write_config(tmp_path, "dict(type='CostReportHook', interval=4)", extra=FROZEN_RUNNER)
    work_dir = tmp_path / 'work'
    # the log shows each iteration's own time, not a running mean
    run_tool([
        'tools/train.py', config, '--work-dir',
        str(work_dir), '--cfg-options', *tiny_coco_options, *ONE_EPOCH,
        'log_processor.window_size=1'
    ])

    cost = json.loads((work_dir / 'cost.json').read_text())
    assert cost['complete'] is True
    assert cost['config'] == config
    assert cost['world_size'] == 1
    assert cost['iters'] == 6
    params = cost['params']
    assert params['total'] == sum(params[p]['total'] for p in ('backbone', 'neck', 'heads'))
    assert params['backbone']['trainable'] == 0 < params['backbone']['total']
    assert params['trainable'] == params['neck']['total'] + params['heads']['total']
    assert cost['train_gflops_per_image'] > 0
    assert cost['train_gflops_per_image'] == (
        cost['train_gflops_forward_per_image'] + cost['train_gflops_backward_per_image'])
    assert cost['train_gflops_forward_per_image'] > 0 < cost['train_gflops_backward_per_image']
    assert cost['peak_memory_source'] == 'cpu_max_rss'
    assert cost['peak_memory_mb'] > 100  # a Python process with torch and mmdet loaded
    assert cost['peak_memory_mb_per_rank'] == [cost['peak_memory_mb']]
    assert cost['time_per_iter_s'] > cost['data_time_s'] > 0
    # MMEngine's own iteration and data times, as the log has them (logger interval 1, window
    # 1): the mean over iterations 3-6, after the warm-up iteration and the FLOP-counted one.
    logged = logged_train_iters(work_dir)
    assert [r['iter'] for r in logged] == [1, 2, 3, 4, 5, 6]
    for key, ours in (('time', 'time_per_iter_s'), ('data_time', 'data_time_s')):
        expected = sum(r[key] for r in logged[2:]) / 4
        assert cost[ours] == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert not list(work_dir.glob('*.tmp'))


@pytest.mark.runs
def test_interrupted_run_leaves_incomplete_cost_json(tmp_path, tiny_coco_options, run_tool,
                                                     tool_env):
    (tmp_path / 'raise_at_iter.py').write_text(RAISE_AT_ITER_3)
    config = write_config(
        tmp_path,
        "dict(type='CostReportHook', interval=100), dict(type='RaiseAtIterHook')",
        imports="'mmfrozen', 'raise_at_iter'")
    work_dir = tmp_path / 'work'
    env = tool_env()
    env['PYTHONPATH'] = f'{env["PYTHONPATH"]}:{tmp_path}'
    proc = run_tool([
        'tools/train.py', config, '--work-dir',
        str(work_dir), '--cfg-options', *tiny_coco_options, *ONE_EPOCH
    ],
                    env=env,
                    check=False)
    assert proc.returncode != 0
    assert 'interrupted on purpose' in proc.stderr

    cost = json.loads((work_dir / 'cost.json').read_text())
    assert cost['complete'] is False
    assert cost['iters'] == 2  # the hook raised inside the third iteration's after_train_iter
    assert cost['train_gflops_per_image'] > 0  # counted on the second iteration
    assert cost['peak_memory_mb'] > 0


@pytest.mark.dist
def test_two_processes_report_the_peak_over_ranks(tmp_path, tiny_coco_options, run_dist_tool):
    config = write_config(tmp_path, "dict(type='CostReportHook', interval=2)")
    work_dir = tmp_path / 'work'
    proc = run_dist_tool('dist_train.sh', [
        config, '2', '--work-dir', str(work_dir), '--cfg-options', *tiny_coco_options,
        *ONE_EPOCH, 'env_cfg.dist_cfg.backend=gloo'])
    assert proc.returncode == 0, proc.stderr[-6000:]

    cost = json.loads((work_dir / 'cost.json').read_text())
    assert cost['complete'] is True
    assert cost['world_size'] == 2
    assert cost['iters'] == 3  # 24 images, batch 4, two processes
    per_rank = cost['peak_memory_mb_per_rank']
    assert len(per_rank) == 2 and min(per_rank) > 100
    assert cost['peak_memory_mb'] == max(per_rank)


def test_peak_memory_is_read_before_the_logger_resets_it(tmp_path):
    """MMEngine's LogProcessor resets CUDA's peak memory stats each time LoggerHook logs; the
    hook keeps its running peak in ``after_train_iter``, so it must run between IterTimerHook
    (whose times it reads) and LoggerHook. Read after LoggerHook, a GPU run reported the peak of
    the last few iterations only (391 MB where MMEngine's log said 2876 MB, on an H100)."""
    from mmengine.config import Config
    from mmengine.hooks import IterTimerHook, LoggerHook
    from mmengine.runner import Runner

    import mmfrozen  # noqa: F401
    from mmfrozen.engine.hooks.cost_report_hook import CostReportHook

    cfg = Config.fromfile(write_config(tmp_path, "dict(type='CostReportHook')"))
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    kinds = [type(hook) for hook in runner.hooks]
    assert kinds.index(IterTimerHook) < kinds.index(CostReportHook) < kinds.index(LoggerHook)
