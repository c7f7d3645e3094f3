"""AtomicCheckpointHook: CheckpointHook's behaviour, and no broken checkpoint after a failed write.

The contract: for each of CheckpointHook's arguments, a run with AtomicCheckpointHook leaves the
same files, the same ``last_checkpoint`` and the same bookkeeping in its checkpoints as a run with
MMEngine's CheckpointHook (the reference). The faults: a checkpoint write that stops half-way,
with ENOSPC (in a toy run here, and through tools/train.py) or SIGKILL (through tools/train.py),
leaves no partial checkpoint, ``last_checkpoint`` names a complete one, and ``--resume`` from it
ends with the weights of an uninterrupted run.
"""
import errno
import glob
import os
import os.path as osp
import re
import signal
import uuid

import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner
from mmengine.testing.runner_test_case import ToyDataset, ToyModel

from mmfrozen.engine.hooks import AtomicCheckpointHook, CheckpointWriteError
from mmfrozen.engine.hooks.atomic_checkpoint_hook import writes_local_files
from mmfrozen.testing import (TINY_FASTER_RCNN, differing_tensors, last_checkpoint, state_dict,
                              write_config)
from mmfrozen.testing.faults import FAIL_SAVE_ENV, FAIL_SAVE_WITH_ENV, FailCheckpointWriteHook


class RisingThenFallingMetric(BaseMetric):
    """acc 0.5, 0.9, 0.7, ...: the best checkpoint changes, then stays."""

    default_prefix = 'toy'

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def process(self, data_batch, data_samples) -> None:
        self.results.append(0)

    def compute_metrics(self, results) -> dict:
        self.calls += 1
        return dict(acc=[0.5, 0.9, 0.7, 0.6][min(self.calls, 4) - 1], loss=1.0 / self.calls)


def toy_runner(work_dir, checkpoint, *, custom_hooks=(), resume=False, max_epochs=3):
    """MMEngine's toy model, 4 iterations per epoch, our exact-resume loop, a checkpoint hook."""
    loader = dict(dataset=ToyDataset(), sampler=dict(type='DefaultSampler', shuffle=True),
                  batch_size=3, num_workers=0)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the same initial weights in every run
        model = ToyModel()
    return Runner(
        model=model, work_dir=str(work_dir), experiment_name=f'atomic_{uuid.uuid4().hex}',
        train_dataloader=loader, val_dataloader={**loader, 'sampler': dict(
            type='DefaultSampler', shuffle=False)}, val_evaluator=[RisingThenFallingMetric()],
        val_cfg=dict(), optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        param_scheduler=dict(type='MultiStepLR', milestones=[2], by_epoch=True),
        train_cfg=dict(type='ExactResumeEpochBasedTrainLoop', max_epochs=max_epochs,
                       val_interval=1),
        default_hooks=dict(checkpoint=checkpoint), custom_hooks=list(custom_hooks),
        randomness=dict(seed=0, deterministic=True), resume=resume)


def relative(value, work_dir: str):
    """Paths under a work dir made relative, so that two runs' records compare."""
    if isinstance(value, str):
        return value.replace(work_dir, '<work_dir>')
    if isinstance(value, (list, tuple)):
        return [relative(v, work_dir) for v in value]
    return value


def run_record(work_dir: str, out_dir: str) -> dict:
    """What a run left: files, last_checkpoint, and each checkpoint's keys and bookkeeping."""
    record = {}
    for folder in {work_dir, out_dir}:
        for name in sorted(os.listdir(folder)):
            path = osp.join(folder, name)
            if not osp.isfile(path) or re.fullmatch(r'\d{8}_\d{6}\.py', name):
                continue  # folders, and the config dumped under the run's time stamp
            key = re.sub(r'-[0-9a-f]{8}\.pth$', '-SHA.pth', relative(path, folder))
            if name == 'last_checkpoint':
                record[key] = relative(last_checkpoint(folder), out_dir)
            elif name.endswith('.pth'):
                checkpoint = torch.load(path, map_location='cpu', weights_only=True)
                info = checkpoint.get('message_hub', {}).get('runtime_info', {})
                record[key] = dict(
                    keys=sorted(checkpoint), meta={k: checkpoint['meta'].get(k)
                                                   for k in ('epoch', 'iter')},
                    info={k: relative(info.get(k), out_dir) for k in (
                        'last_ckpt', 'keep_ckpt_ids', 'best_ckpt', 'best_score',
                        'best_ckpt_toy/acc', 'best_score_toy/loss')})
            else:
                record[key] = 'file'
    return record


CONTRACT = {
    'every epoch': dict(interval=1),
    'interval 2, no save_last': dict(interval=2, save_last=False),
    'by iteration, keep 2': dict(interval=3, by_epoch=False, max_keep_ckpts=2),
    'keep 1, best acc': dict(interval=1, max_keep_ckpts=1, save_best='toy/acc'),
    'best of two, rules': dict(interval=2, save_best=['toy/acc', 'toy/loss'],
                               rule=['greater', 'less']),
    'best with greater_keys': dict(interval=1, save_best='toy/loss', greater_keys=['loss']),
    'best with less_keys': dict(interval=1, save_best='toy/acc', less_keys=['acc'],
                                by_epoch=False),
    'no optimizer, no scheduler': dict(interval=1, save_optimizer=False,
                                       save_param_scheduler=False),
    'filename_tmpl, save_begin': dict(interval=1, filename_tmpl='ckpt_{}.pth', save_begin=2),
    'published keys': dict(interval=1, published_keys=['meta', 'state_dict']),
    'out_dir, backend_args': dict(interval=1, out_dir='OUT', backend_args=dict(
        backend='local')),
    'file_client_args': dict(interval=2, file_client_args=dict(backend='disk')),
}


#: The contract cases the fast suite runs; the full suite runs them all.
FAST_CONTRACT = ('every epoch', 'by iteration, keep 2', 'keep 1, best acc')


@pytest.mark.parametrize('args', [
    pytest.param(args, id=name, marks=() if name in FAST_CONTRACT else pytest.mark.runs)
    for name, args in CONTRACT.items()])
def test_same_files_and_bookkeeping_as_checkpoint_hook(tmp_path, args):
    records = []
    for hook_type in (CheckpointHook, AtomicCheckpointHook):
        work_dir = tmp_path / hook_type.__name__
        hook_args = dict(args)
        if hook_args.get('out_dir') == 'OUT':
            hook_args['out_dir'] = str(tmp_path / f'out_{hook_type.__name__}')
        hook = hook_type(**hook_args)
        toy_runner(work_dir, hook).train()
        records.append(run_record(str(work_dir), hook.out_dir))
    stock, atomic = records
    assert atomic == stock
    assert any(name.endswith('.pth') for name in atomic)


def test_only_local_files_are_written_through_a_temporary_file(tmp_path):
    assert writes_local_files(str(tmp_path))
    assert writes_local_files(str(tmp_path), file_client_args=dict(backend='disk'))
    # an object store writes an object in one request: CheckpointHook's way
    assert not writes_local_files('http://example.org/checkpoints')


def fail_write_at(monkeypatch, iteration: int, how: str = 'enospc') -> FailCheckpointWriteHook:
    monkeypatch.setenv(FAIL_SAVE_ENV, str(iteration))
    monkeypatch.setenv(FAIL_SAVE_WITH_ENV, how)
    monkeypatch.setattr(LocalBackend, 'put', LocalBackend.put)  # put back after the test
    return FailCheckpointWriteHook()


def loads(path: str) -> bool:
    try:
        torch.load(path, map_location='cpu', weights_only=True)
    except Exception:
        return False
    return True


def test_a_full_disk_mid_write_leaves_the_last_complete_checkpoint(tmp_path, monkeypatch):
    # by iteration, keeping one checkpoint: MMEngine deletes iter_3.pth before writing iter_4
    hook_args = dict(interval=1, by_epoch=False, max_keep_ckpts=1)
    whole = tmp_path / 'whole'
    toy_runner(whole, AtomicCheckpointHook(**hook_args)).train()

    work_dir = tmp_path / 'full_disk'
    runner = toy_runner(work_dir, AtomicCheckpointHook(**hook_args),
                        custom_hooks=[fail_write_at(monkeypatch, 4)])
    with pytest.raises(CheckpointWriteError) as error:
        runner.train()
    assert error.value.errno == errno.ENOSPC
    message = str(error.value)
    assert f'Could not write checkpoint {work_dir / "iter_4.pth"}: No space left on device' \
        in message
    assert f'{work_dir / "last_checkpoint"} still names {work_dir / "iter_3.pth"}' in message
    assert '--resume' in message
    assert not glob.glob(str(work_dir / 'iter_4.pth*'))
    assert last_checkpoint(str(work_dir)) == str(work_dir / 'iter_3.pth')
    assert loads(str(work_dir / 'iter_3.pth'))

    monkeypatch.delenv(FAIL_SAVE_ENV)
    toy_runner(work_dir, AtomicCheckpointHook(**hook_args), resume=True).train()
    assert last_checkpoint(str(work_dir)) == str(work_dir / 'iter_12.pth')
    assert differing_tensors(state_dict(str(whole / 'iter_12.pth')),
                             state_dict(str(work_dir / 'iter_12.pth'))) == []


def test_checkpoint_hook_leaves_a_broken_checkpoint_on_a_full_disk(tmp_path, monkeypatch):
    # The reference, what AtomicCheckpointHook fixes: a truncated iter_4.pth, and
    # last_checkpoint naming iter_3.pth, deleted before the write.
    work_dir = tmp_path / 'full_disk'
    runner = toy_runner(work_dir, CheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=1),
                        custom_hooks=[fail_write_at(monkeypatch, 4)])
    with pytest.raises(OSError):
        runner.train()
    assert not loads(str(work_dir / 'iter_4.pth'))
    assert last_checkpoint(str(work_dir)) == str(work_dir / 'iter_3.pth')
    assert not osp.exists(work_dir / 'iter_3.pth')


# --------------------------------------------------------------------------------------------
# through tools/train.py: the tiny Faster R-CNN, killed or out of disk space while writing
# --------------------------------------------------------------------------------------------
def tiny_config(tmp_path, checkpoint_type: str) -> str:
    return write_config(str(tmp_path / f'{checkpoint_type}.py'), TINY_FASTER_RCNN, [
        "train_cfg = dict(type='ExactResumeEpochBasedTrainLoop', val_interval=1)",
        'randomness = dict(seed=0, deterministic=True)',
        f"default_hooks = dict(checkpoint=dict(type='{checkpoint_type}', by_epoch=False, "
        'interval=2, max_keep_ckpts=1))',
        "custom_hooks = [dict(type='FailCheckpointWriteHook')]",
    ])


def train(run_tool, tool_env, config, work_dir, options, *extra, **env):
    return run_tool(['tools/train.py', config, '--work-dir', str(work_dir), *extra,
                     '--cfg-options', *options], env=tool_env(**env), check=False)


@pytest.fixture(scope='module')
def uninterrupted(tmp_path_factory, tiny_coco_options, run_tool, tool_env) -> str:
    """The final checkpoint of the tiny config trained without a fault."""
    tmp_path = tmp_path_factory.mktemp('uninterrupted')
    config = tiny_config(tmp_path, 'AtomicCheckpointHook')
    whole = train(run_tool, tool_env, config, tmp_path / 'whole', tiny_coco_options)
    assert whole.returncode == 0, whole.stderr[-3000:]
    return str(tmp_path / 'whole' / 'iter_12.pth')


@pytest.mark.runs
@pytest.mark.parametrize('how', ['sigkill', 'enospc'])
def test_killed_or_out_of_space_while_saving_then_resumed(
        tmp_path, tiny_coco_options, run_tool, tool_env, uninterrupted, how):
    config = tiny_config(tmp_path, 'AtomicCheckpointHook')
    work_dir = tmp_path / how
    failed = train(run_tool, tool_env, config, work_dir, tiny_coco_options,
                   **{FAIL_SAVE_ENV: '8', FAIL_SAVE_WITH_ENV: how})
    if how == 'sigkill':
        assert failed.returncode == -signal.SIGKILL
        # what the killed process left: the partial write, under its temporary name only
        assert osp.getsize(work_dir / 'iter_8.pth.tmp') > 0
    else:
        assert failed.returncode != 0
        assert (f'CheckpointWriteError: [Errno 28] Could not write checkpoint '
                f'{work_dir / "iter_8.pth"}: No space left on device') in failed.stderr
        assert not osp.exists(work_dir / 'iter_8.pth.tmp')
    assert not osp.exists(work_dir / 'iter_8.pth')
    assert last_checkpoint(str(work_dir)) == str(work_dir / 'iter_6.pth')
    assert loads(str(work_dir / 'iter_6.pth'))

    resumed = train(run_tool, tool_env, config, work_dir, tiny_coco_options, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # iter_6.pth, written at epoch 1's last iteration: its batches are drawn again, unused
    assert 'Resuming epoch 1 at batch 7' in resumed.stdout + resumed.stderr
    assert not glob.glob(str(work_dir / '*.tmp'))
    assert differing_tensors(state_dict(uninterrupted),
                             state_dict(str(work_dir / 'iter_12.pth'))) == []


@pytest.mark.runs
def test_checkpoint_hook_killed_while_saving_leaves_a_truncated_file(
        tmp_path, tiny_coco_options, run_tool, tool_env):
    # The reference through tools/train.py: MMEngine's hook, killed mid-write.
    config = tiny_config(tmp_path, 'CheckpointHook')
    work_dir = tmp_path / 'stock'
    failed = train(run_tool, tool_env, config, work_dir, tiny_coco_options,
                   **{FAIL_SAVE_ENV: '8', FAIL_SAVE_WITH_ENV: 'sigkill'})
    assert failed.returncode == -signal.SIGKILL
    assert not loads(str(work_dir / 'iter_8.pth'))
    assert last_checkpoint(str(work_dir)) == str(work_dir / 'iter_6.pth')
    assert not osp.exists(work_dir / 'iter_6.pth')
