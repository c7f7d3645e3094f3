"""A NaN or infinite loss stops the run (or skips the step), and never reaches a checkpoint."""
import glob
import os.path as osp

import pytest
import torch

from mmfrozen.testing import TINY_FASTER_RCNN, last_checkpoint, state_dict, write_config


def train(run_tool, tmp_path, options, lines):
    config = write_config(str(tmp_path / 'nonfinite.py'), TINY_FASTER_RCNN, [
        'default_hooks = dict(checkpoint=dict(by_epoch=False, interval=1))',
        'train_cfg = dict(max_epochs=1)',
        *lines,
    ])
    work_dir = tmp_path / 'work'
    proc = run_tool(['tools/train.py', config, '--work-dir', str(work_dir), '--cfg-options',
                     *options], check=False)
    return proc, str(work_dir)


def all_finite(checkpoint: str) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in state_dict(checkpoint).values()
               if t.is_floating_point())


def test_nan_loss_stops_the_run_naming_iteration_and_terms(tmp_path, tiny_coco_options, run_tool):
    proc, work_dir = train(run_tool, tmp_path, tiny_coco_options, [
        "custom_hooks = [dict(type='NonFiniteLossHook'), dict(type='NaNFeaturesHook', "
        'iters=[3])]'])
    assert proc.returncode != 0
    assert 'NonFiniteLossError: Non-finite loss at iteration 3 (epoch 1, batch 3)' in proc.stderr
    for term in ('loss_rpn_cls=nan', 'loss_rpn_bbox=nan', 'loss_cls=nan', 'loss_bbox=nan'):
        assert term in proc.stderr
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth'))) == [
        'iter_1.pth', 'iter_2.pth']
    assert last_checkpoint(work_dir).endswith('iter_2.pth')
    assert all_finite(last_checkpoint(work_dir))


@pytest.mark.runs
def test_nan_loss_skip_counts_and_trains_on(tmp_path, tiny_coco_options, run_tool):
    proc, work_dir = train(run_tool, tmp_path, tiny_coco_options, [
        "custom_hooks = [dict(type='NonFiniteLossHook', action='skip'), "
        "dict(type='NaNFeaturesHook', iters=[3, 5])]"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    assert 'Skipped the optimizer step at iteration 3' in log
    assert '(2 skipped so far)' in log
    assert 'NonFiniteLossHook skipped 2 optimizer step(s)' in log
    assert last_checkpoint(work_dir).endswith('iter_6.pth')
    assert all_finite(last_checkpoint(work_dir))
    # the skipped step changed nothing: iteration 3's weights are iteration 2's
    before, skipped = state_dict(osp.join(work_dir, 'iter_2.pth')), state_dict(
        osp.join(work_dir, 'iter_3.pth'))
    assert all(torch.equal(before[k], skipped[k]) for k in before)


@pytest.mark.runs
def test_diverging_learning_rate_stops_without_a_nan_checkpoint(tmp_path, tiny_coco_options,
                                                                run_tool):
    # The reproduction: lr=1e10 gives a NaN loss from iteration 2 and, unguarded, a run
    # that ends with exit code 0 and NaN checkpoints.
    proc, work_dir = train(run_tool, tmp_path,
                           [*tiny_coco_options, 'optim_wrapper.optimizer.lr=1e10'],
                           ["custom_hooks = [dict(type='NonFiniteLossHook')]"])
    assert proc.returncode != 0
    assert 'NonFiniteLossError' in proc.stderr
    checkpoints = glob.glob(osp.join(work_dir, '*.pth'))
    assert all(all_finite(c) for c in checkpoints)
    if checkpoints:
        assert osp.exists(last_checkpoint(work_dir))
