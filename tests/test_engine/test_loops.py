"""A run killed with SIGKILL mid-epoch and resumed ends with bit-identical weights.

The tiny Faster R-CNN, CPU, ``randomness.deterministic=True``: an uninterrupted run against a
run killed in epoch 2 after an iteration checkpoint, resumed with ``--resume``; one process and
two gloo processes; persistent data-loader workers with a random flip. Also the stock loop,
which is not exact, so that the test shows what the loop changes. A failing evaluation: the
epoch is saved, the error says where and how to go on, and the resumed run is exact.

MMEngine's toy model runs the same checks in this process, in seconds (an exception stands for
the kill there).
"""
import os.path as osp
import re
import signal
import time
import uuid

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.testing.runner_test_case import ToyDataset, ToyModel

from mmfrozen.engine.hooks.worker_rng_state_hook import CHECKPOINT_KEY as WORKER_KEY
from mmfrozen.engine.loops import EvaluationError
from mmfrozen.testing import (TINY_FASTER_RCNN, differing_tensors, last_checkpoint, state_dict,
                              write_config)
from mmfrozen.testing.faults import KILL_ENV, KILL_RANK_ENV, METRIC_RAISES_ENV


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


@pytest.mark.runs
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


def torchrun_train(run_dist_tool, config, work_dir, options, *extra, kill_at=None,
                   kill_rank=None):
    extra_env = {KILL_ENV: str(kill_at)} if kill_at else {}
    if kill_rank is not None:
        extra_env[KILL_RANK_ENV] = str(kill_rank)
    return run_dist_tool('dist_train.sh', [
        config, '2', '--work-dir', str(work_dir), *extra, '--cfg-options',
        'env_cfg.dist_cfg.backend=gloo', *options], **extra_env)


@pytest.fixture(scope='module')
def two_processes(tmp_path_factory, tiny_coco_options, run_dist_tool):
    """The exact-resume config and the final weights of its uninterrupted 2-process run."""
    tmp_path = tmp_path_factory.mktemp('two_processes')
    config = exact_resume_config(tmp_path)
    # 2 processes, batch 4 each: 3 iterations per epoch; checkpoints at 2, 4 and 6
    whole = torchrun_train(run_dist_tool, config, tmp_path / 'whole', tiny_coco_options)
    assert whole.returncode == 0, whole.stderr[-6000:]
    return config, state_dict(tmp_path / 'whole' / 'iter_6.pth')


@pytest.mark.dist
def test_two_processes_killed_mid_epoch_resume_bit_identical(tmp_path, tiny_coco_options,
                                                             run_dist_tool, two_processes):
    config, whole = two_processes
    killed = torchrun_train(run_dist_tool, config, tmp_path / 'killed', tiny_coco_options,
                            kill_at=5)
    assert killed.returncode != 0
    assert last_checkpoint(str(tmp_path / 'killed')).endswith('iter_4.pth')
    resumed = torchrun_train(run_dist_tool, config, tmp_path / 'killed', tiny_coco_options,
                             '--resume')
    assert resumed.returncode == 0, resumed.stderr[-6000:]
    assert 'Resuming epoch 2 at batch 2' in resumed.stdout + resumed.stderr
    assert differing_tensors(whole, state_dict(tmp_path / 'killed' / 'iter_6.pth')) == []


#: torchrun's summary of a failed job: the first failure, its rank and its exit code.
ROOT_CAUSE = re.compile(r'Root Cause \(first observed failure\):\n\[0\]:\n(?:.*\n){0,3}?'
                        r'\s*rank\s*: (\d+) \(local_rank: \d+\)\n\s*exitcode\s*: (-?\d+)')


@pytest.mark.dist
@pytest.mark.parametrize('rank', [1, 0])
def test_a_dead_rank_ends_the_job_naming_it_and_resume_is_exact(
        tmp_path, tiny_coco_options, run_dist_tool, two_processes, rank):
    # One rank SIGKILLed after iteration 5; the other waits for it in iteration 6.
    config, whole = two_processes
    work_dir = tmp_path / 'dead_rank'
    killed = torchrun_train(run_dist_tool, config, work_dir, tiny_coco_options, kill_at=5,
                            kill_rank=rank)
    ended = time.time()
    killed_at = re.search(r'KillAtIterHook: SIGKILL to rank (\d+) \(pid \d+\) at ([\d.]+)',
                          killed.stdout + killed.stderr)
    assert killed_at and int(killed_at.group(1)) == rank, killed.stdout[-3000:]
    assert killed.returncode != 0
    # torchrun stops the job within seconds (2.4 s measured), not at a collective's timeout
    assert ended - float(killed_at.group(2)) < 120
    root_cause = ROOT_CAUSE.search(killed.stderr)
    assert root_cause, killed.stderr[-3000:]
    assert (int(root_cause.group(1)), int(root_cause.group(2))) == (rank, -signal.SIGKILL)

    assert last_checkpoint(str(work_dir)).endswith('iter_4.pth')
    resumed = torchrun_train(run_dist_tool, config, work_dir, tiny_coco_options, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-6000:]
    assert 'Resuming epoch 2 at batch 2' in resumed.stdout + resumed.stderr
    assert differing_tensors(whole, state_dict(work_dir / 'iter_6.pth')) == []


# --------------------------------------------------------------------------------------------
# MMEngine's toy model in this process: 12 samples, batch 3, 4 iterations per epoch, 3 epochs
# --------------------------------------------------------------------------------------------
class NoisyToyDataset(ToyDataset):
    """MMEngine's toy data with a random transform: noise drawn from NumPy's global generator,
    in the data-loader worker, as MMDetection's random transforms draw."""

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        noise = torch.from_numpy(np.random.normal(scale=0.5, size=2).astype(np.float32))
        return dict(inputs=item['inputs'] + noise, data_samples=item['data_samples'])


class ToyMetric(BaseMetric):
    """A constant metric that raises ``ValueError`` while :attr:`raises` is set."""

    default_prefix = 'toy'

    def __init__(self, raises: str = '') -> None:
        super().__init__()
        self.raises = raises

    def process(self, data_batch, data_samples) -> None:
        self.results.append(0)

    def compute_metrics(self, results) -> dict:
        if self.raises:
            raise ValueError(self.raises)
        return dict(acc=1.0)


class Interrupt(Hook):
    """Raise after iteration ``at_iter`` or after epoch ``after_epoch`` (1-based), once it is
    saved: the in-process stand-in for a kill."""

    priority = 'LOWEST'

    def __init__(self, at_iter: int = 0, after_epoch: int = 0) -> None:
        self.at_iter, self.after_epoch = at_iter, after_epoch

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 == self.at_iter:
            raise KeyboardInterrupt(f'interrupted after iteration {self.at_iter}')

    def after_train_epoch(self, runner) -> None:
        if runner.epoch + 1 == self.after_epoch:
            raise KeyboardInterrupt(f'interrupted after epoch {self.after_epoch}')


def toy_train(work_dir, *, checkpoint: dict, workers: int = 0, metric=None, hooks=(),
              resume: bool = False) -> Runner:
    """Train the toy model with ExactResumeEpochBasedTrainLoop; the runner, after training."""
    loader = dict(dataset=NoisyToyDataset(), batch_size=3, num_workers=workers,
                  persistent_workers=workers > 0,
                  sampler=dict(type='DefaultSampler', shuffle=True))
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the same initial weights in every run
        model = ToyModel()
    runner = Runner(
        model=model, work_dir=str(work_dir), experiment_name=f'loops_{uuid.uuid4().hex}',
        train_dataloader=loader,
        val_dataloader={**loader, 'num_workers': 0, 'persistent_workers': False,
                        'sampler': dict(type='DefaultSampler', shuffle=False)},
        val_evaluator=[metric or ToyMetric()], val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(type='ExactResumeEpochBasedTrainLoop', max_epochs=3, val_interval=1),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook', **checkpoint)),
        custom_hooks=list(hooks), randomness=dict(seed=0, deterministic=True), resume=resume)
    try:
        runner.train()
    finally:
        # the persistent workers live as long as the data loader's iterator: end them now
        iterator = getattr(runner.train_dataloader, '_iterator', None)
        if iterator is not None:
            iterator._shutdown_workers()
    return runner


def final_weights(work_dir) -> dict:
    return state_dict(last_checkpoint(str(work_dir)))


@pytest.mark.parametrize('checkpoint, interrupt, resumed_at', [
    pytest.param(dict(by_epoch=False, interval=3), dict(at_iter=7),
                 'Resuming epoch 2 at batch 3', id='mid-epoch'),
    pytest.param(dict(by_epoch=True, interval=1), dict(after_epoch=2), None, id='epoch-end',
                 marks=pytest.mark.runs),
])
def test_persistent_workers_random_transform_resume_exactly(tmp_path, checkpoint, interrupt,
                                                            resumed_at, capfd):
    toy_train(tmp_path / 'whole', checkpoint=checkpoint, workers=2)
    with pytest.raises(KeyboardInterrupt):
        toy_train(tmp_path / 'stopped', checkpoint=checkpoint, workers=2,
                  hooks=[Interrupt(**interrupt)])
    saved = torch.load(last_checkpoint(str(tmp_path / 'stopped')), weights_only=True)
    # the workers' random streams have moved on from their seeds: fresh workers would differ
    assert sorted(saved[WORKER_KEY]['start'][0]) == [0, 1]
    assert saved[WORKER_KEY]['num_workers'] == 2

    capfd.readouterr()
    runner = toy_train(tmp_path / 'stopped', checkpoint=checkpoint, workers=2, resume=True)
    if resumed_at:
        assert resumed_at in capfd.readouterr().out
    assert runner.iter == 12
    assert differing_tensors(final_weights(tmp_path / 'whole'),
                             final_weights(tmp_path / 'stopped')) == []


@pytest.mark.runs
def test_persistent_workers_restarted_from_their_seeds_differ(tmp_path, capfd):
    # What the worker states in the checkpoint fix: the same resume without them.
    checkpoint = dict(by_epoch=False, interval=3)
    toy_train(tmp_path / 'whole', checkpoint=checkpoint, workers=2)
    with pytest.raises(KeyboardInterrupt):
        toy_train(tmp_path / 'stopped', checkpoint=checkpoint, workers=2,
                  hooks=[Interrupt(at_iter=7)])
    path = last_checkpoint(str(tmp_path / 'stopped'))
    saved = torch.load(path, weights_only=True)
    del saved[WORKER_KEY]
    torch.save(saved, path)
    capfd.readouterr()
    toy_train(tmp_path / 'stopped', checkpoint=checkpoint, workers=2, resume=True)
    assert 'The checkpoint holds no random states of persistent data-loader workers' \
        in capfd.readouterr().out
    assert differing_tensors(final_weights(tmp_path / 'whole'),
                             final_weights(tmp_path / 'stopped'))


def test_failing_evaluation_saves_the_epoch_and_says_how_to_go_on(tmp_path):
    # checkpoints every 2 epochs: the hook does not save epoch 1, the loop does when
    # validation fails
    checkpoint = dict(by_epoch=True, interval=2)
    toy_train(tmp_path / 'whole', checkpoint=checkpoint)
    work_dir = tmp_path / 'failed'
    with pytest.raises(EvaluationError) as error:
        toy_train(work_dir, checkpoint=checkpoint,
                  metric=ToyMetric(raises='no "annotations" in instances_val.json'))
    message = str(error.value)
    epoch_1 = str(work_dir / 'epoch_1.pth')
    assert message.startswith('Evaluation after epoch 1 (iteration 4) failed with ValueError: '
                              'no "annotations" in instances_val.json\n')
    assert f'The training up to here is saved in {epoch_1} (last_checkpoint names it).' \
        in message
    assert f'python tools/test.py CONFIG {epoch_1}' in message
    assert f'python tools/train.py CONFIG --work-dir {work_dir} --resume' in message
    assert isinstance(error.value.__cause__, ValueError)
    assert last_checkpoint(str(work_dir)) == epoch_1
    assert state_dict(epoch_1)

    # the cause fixed, --resume continues after epoch 1 as if nothing had happened
    runner = toy_train(work_dir, checkpoint=checkpoint, resume=True)
    assert runner.iter == 12
    assert differing_tensors(final_weights(tmp_path / 'whole'), final_weights(work_dir)) == []


# --------------------------------------------------------------------------------------------
# through tools/train.py
# --------------------------------------------------------------------------------------------
PERSISTENT_WORKERS_RANDOM_FLIP = [
    'train_pipeline = [dict(type="LoadImageFromFile"), '
    'dict(type="LoadAnnotations", with_bbox=True), '
    'dict(type="Resize", scale=(128, 128), keep_ratio=True), '
    'dict(type="RandomFlip", prob=0.5), dict(type="PackDetInputs")]',
    'train_dataloader = dict(num_workers=2, persistent_workers=True, '
    'dataset=dict(pipeline=train_pipeline))',
]


@pytest.mark.runs
def test_persistent_workers_random_flip_killed_mid_epoch_resume_bit_identical(
        tmp_path, tiny_coco_options, run_tool, tool_env):
    config = write_config(str(tmp_path / 'persistent.py'), TINY_FASTER_RCNN, [
        "train_cfg = dict(type='ExactResumeEpochBasedTrainLoop', val_interval=1)",
        'randomness = dict(seed=0, deterministic=True)',
        'default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2))',
        "custom_hooks = [dict(type='KillAtIterHook')]",
        *PERSISTENT_WORKERS_RANDOM_FLIP,
    ])
    whole = train(run_tool, tool_env, config, tmp_path / 'whole', tiny_coco_options)
    assert 'persistent data-loader workers' not in whole.stdout + whole.stderr
    killed, resumed = killed_and_resumed(run_tool, tool_env, config, tmp_path / 'killed',
                                         tiny_coco_options, kill_at=9)
    assert 'Resuming epoch 2 at batch 3' in resumed.stdout + resumed.stderr
    assert differing_tensors(state_dict(tmp_path / 'whole' / 'iter_12.pth'),
                             state_dict(tmp_path / 'killed' / 'iter_12.pth')) == []


@pytest.mark.runs
def test_failing_evaluation_through_tools_train_and_test(tmp_path, tiny_coco_options, run_tool,
                                                         tool_env):
    # validation after each epoch, checkpoints every 2 epochs, a metric that raises
    config = write_config(str(tmp_path / 'failing_eval.py'), TINY_FASTER_RCNN, [
        "train_cfg = dict(type='ExactResumeEpochBasedTrainLoop', val_interval=1)",
        'randomness = dict(seed=0, deterministic=True)',
        "default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=2))",
        "val_evaluator = dict(type='RaisingCocoMetric')",
    ])
    whole = train(run_tool, tool_env, config, tmp_path / 'whole', tiny_coco_options)
    assert whole.returncode == 0, whole.stderr[-3000:]

    work_dir = tmp_path / 'failed'
    extra_env = {METRIC_RAISES_ENV: 'ground truth image 3: no "annotations"'}
    failed = run_tool(['tools/train.py', config, '--work-dir', str(work_dir), '--cfg-options',
                       *tiny_coco_options], env=tool_env(**extra_env), check=False)
    assert failed.returncode != 0
    epoch_1 = str(work_dir / 'epoch_1.pth')
    assert ('EvaluationError: Evaluation after epoch 1 (iteration 6) failed with ValueError: '
            'ground truth image 3: no "annotations"') in failed.stderr
    assert f'The training up to here is saved in {epoch_1}' in failed.stderr
    assert f'python tools/test.py {config} {epoch_1}' in failed.stderr
    assert f'python tools/train.py {config} --work-dir {work_dir} --resume' in failed.stderr

    # what the message says works: the evaluation alone, then the training resumed
    tested = run_tool(['tools/test.py', config, epoch_1, '--work-dir', str(tmp_path / 'test'),
                       '--cfg-options', *tiny_coco_options], check=False)
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert 'coco/bbox_mAP' in tested.stdout + tested.stderr
    resumed = train(run_tool, tool_env, config, work_dir, tiny_coco_options, '--resume')
    assert 'resumed epoch: 1, iter: 6' in resumed.stdout + resumed.stderr
    assert differing_tensors(state_dict(tmp_path / 'whole' / 'epoch_2.pth'),
                             state_dict(work_dir / 'epoch_2.pth')) == []
