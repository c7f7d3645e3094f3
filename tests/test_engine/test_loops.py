"""A run killed with SIGKILL mid-epoch and resumed ends with bit-identical weights.

The tiny Faster R-CNN, CPU, ``randomness.deterministic=True``: an uninterrupted run against a
run killed in epoch 2 after an iteration checkpoint, resumed with ``--resume``; one process and
two gloo processes. Also the stock loop, which is not exact, so that the test shows what the
loop changes.
"""
import os.path as osp
import signal

import pytest

from mmfrozen.testing import (TINY_FASTER_RCNN, differing_tensors, last_checkpoint, state_dict,
                              write_config)
from mmfrozen.testing.faults import KILL_ENV


def exact_resume_config(tmp_path, loop: str = 'ExactResumeEpochBasedTrainLoop') -> str:
    return write_config(str(tmp_path / f'{loop}.py'), TINY_FASTER_RCNN, [
        f"train_cfg = dict(type='{loop}', val_interval=1)",
        'randomness = dict(seed=0, deterministic=True)',
        'default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2))',
        "custom_hooks = [dict(type='KillAtIterHook')]",
    ])


def train(run_tool, tool_env, config, work_dir, options, *extra, kill_at=None, check=True):
    extra_env = {KILL_ENV: str(kill_at)} if kill_at else {}
    return run_tool(['tools/train.py', config, '--work-dir', str(work_dir), *extra,
                     '--cfg-options', *options], env=tool_env(**extra_env), check=check)


def killed_and_resumed(run_tool, tool_env, config, work_dir, options, kill_at):
    proc = train(run_tool, tool_env, config, work_dir, options, kill_at=kill_at, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    # killed after iteration 9: the last checkpoint is iter_8.pth, mid-epoch 2
    assert last_checkpoint(str(work_dir)).endswith('iter_8.pth')
    assert not osp.exists(osp.join(work_dir, 'iter_10.pth'))
    return proc, train(run_tool, tool_env, config, work_dir, options, '--resume')


def test_killed_mid_epoch_resumes_bit_identical(tmp_path, tiny_coco_options, run_tool, tool_env):
    config = exact_resume_config(tmp_path)
    # 24 images, batch 4: 6 iterations per epoch; checkpoints every 2 iterations
    train(run_tool, tool_env, config, tmp_path / 'whole', tiny_coco_options)
    killed, resumed = killed_and_resumed(run_tool, tool_env, config, tmp_path / 'killed',
                                         tiny_coco_options, kill_at=9)
    # resumed from iter_8.pth: epoch 2, batch 3 of 6
    assert 'resumed epoch: 1, iter: 8' in resumed.stdout + resumed.stderr
    assert 'Resuming epoch 2 at batch 3' in resumed.stdout + resumed.stderr
    whole = state_dict(tmp_path / 'whole' / 'iter_12.pth')
    again = state_dict(tmp_path / 'killed' / 'iter_12.pth')
    assert differing_tensors(whole, again) == []
    assert last_checkpoint(str(tmp_path / 'killed')).endswith('iter_12.pth')


@pytest.mark.runs
def test_stock_loop_does_not_resume_exactly(tmp_path, tiny_coco_options, run_tool, tool_env):
    # The same kill and resume with MMEngine's loop: what ExactResumeEpochBasedTrainLoop fixes.
    config = exact_resume_config(tmp_path, loop='EpochBasedTrainLoop')
    train(run_tool, tool_env, config, tmp_path / 'whole', tiny_coco_options)
    killed_and_resumed(run_tool, tool_env, config, tmp_path / 'killed', tiny_coco_options,
                       kill_at=9)
    whole = state_dict(tmp_path / 'whole' / 'epoch_2.pth' if osp.exists(
        tmp_path / 'whole' / 'epoch_2.pth') else tmp_path / 'whole' / 'iter_12.pth')
    again_dir = tmp_path / 'killed'
    again = state_dict(again_dir / last_checkpoint(str(again_dir)))
    assert differing_tensors(whole, again)


def torchrun_train(run_dist_tool, config, work_dir, options, *extra, kill_at=None):
    extra_env = {KILL_ENV: str(kill_at)} if kill_at else {}
    return run_dist_tool('dist_train.sh', [
        config, '2', '--work-dir', str(work_dir), *extra, '--cfg-options',
        'env_cfg.dist_cfg.backend=gloo', *options], **extra_env)


@pytest.mark.dist
def test_two_processes_killed_mid_epoch_resume_bit_identical(tmp_path, tiny_coco_options,
                                                             run_dist_tool):
    config = exact_resume_config(tmp_path)
    # 2 processes, batch 4 each: 3 iterations per epoch; checkpoints at 2 and 4
    whole = torchrun_train(run_dist_tool, config, tmp_path / 'whole', tiny_coco_options)
    assert whole.returncode == 0, whole.stderr[-6000:]
    killed = torchrun_train(run_dist_tool, config, tmp_path / 'killed', tiny_coco_options,
                            kill_at=5)
    assert killed.returncode != 0
    assert last_checkpoint(str(tmp_path / 'killed')).endswith('iter_4.pth')
    resumed = torchrun_train(run_dist_tool, config, tmp_path / 'killed', tiny_coco_options,
                             '--resume')
    assert resumed.returncode == 0, resumed.stderr[-6000:]
    assert 'Resuming epoch 2 at batch 2' in resumed.stdout + resumed.stderr
    assert differing_tensors(state_dict(tmp_path / 'whole' / 'iter_6.pth'),
                             state_dict(tmp_path / 'killed' / 'iter_6.pth')) == []
