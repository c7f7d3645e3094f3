"""Reliable by default: every shipped config, and the mini world's, runs with mmfrozen's
reliability features (docs/reliable_runs.md), from the shared bases, each turned off by one line.

The features, read from each resolved config and looked up in the registries (a subclass
counts), and the bases that turn them on:

* ``train_cfg``: ``ExactResumeEpochBasedTrainLoop`` (``_base_/schedules/``, ``_base_/common/``);
* ``default_hooks.checkpoint``: ``AtomicCheckpointHook`` (``_base_/default_runtime.py``,
  ``_base_/common/``);
* ``custom_hooks``: ``NonFiniteLossHook``, once (the same bases);
* every dataset of the train, val and test data loaders, the sets inside ``RepeatDataset``,
  ``ClassBalancedDataset`` and ``ConcatDataset`` included: a checked dataset
  (``_base_/datasets/``, ``_base_/common/``), except the formats no checked dataset reads yet
  (:data:`UNCHECKED`, each with its reason, and checked to have no checked twin).

Resolving a config takes 0.2-2 s here (mmengine reads MMDetection's metafiles for each
``mmdet::`` base), so the fast suite walks two representatives and turns one feature off; the
full suite (``configs``) walks every config and turns each feature off. The issue's "Done when"
runs (``runs``): a shipped frozen config, shrunk to a tiny model and data through
``--cfg-options`` only, SIGKILLed mid-epoch and resumed with ``--resume`` bit-identically, and
stopped by a NaN loss through MMDetection's own train.py; MMEngine's ``Runner.from_cfg`` builds
every feature from it.
"""
import argparse
import ast
import glob
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mmfrozen  # noqa: F401
from mmdet.registry import DATASETS, HOOKS, LOOPS
from mmfrozen.datasets.checked_datasets import CheckedCocoDataset, CheckedDatasetMixin
from mmfrozen.engine.hooks.atomic_checkpoint_hook import AtomicCheckpointHook
from mmfrozen.engine.hooks.nonfinite_loss_hook import NonFiniteLossHook
from mmfrozen.engine.loops import ExactResumeEpochBasedTrainLoop
from mmfrozen.mmdet_tools import mmdet_tool_path
from mmfrozen.shipped_configs import config_path, configs_dir, list_configs
from mmfrozen.testing import differing_tensors, last_checkpoint, state_dict, tool_env

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MINI_WORLD = sorted(glob.glob(osp.join(REPO, 'projects', 'mini_world', 'configs', '*.py')))
#: Every config a user runs: the shipped ones (by name) and the mini world's (by path).
CONFIGS = list_configs() + [osp.relpath(path, REPO) for path in MINI_WORLD]
FROZEN_R50 = 'faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py'
#: The fast suite's representatives: the config users start from, and the deepest one (data
#: inside RepeatDataset, its own custom_hooks over the base's).
FAST = (FROZEN_R50, 'lvis_stage2/cascade-rcnn_r50_nasfpn_stage2-cls-cbloss_6e_lvis-v1.py')
#: Dataset types no checked dataset reads yet, and why.
UNCHECKED = {
    'VOCDataset': 'Pascal VOC XML annotations: mmfrozen has checked COCO and LVIS datasets only '
                  '(VOC converted to COCO format is checked, by CheckedCocoDataset)',
    'MiniWorldClassificationDataset': "the mini world's classification arrays (.npz), no "
                                      'annotation file',
}
#: The documented line that turns each feature off, and the field whose check it fails.
OFF_LINES = {
    'exact-resume loop': ("train_cfg = dict(type='EpochBasedTrainLoop')", 'train_cfg.type'),
    'atomic checkpoints': ("default_hooks = dict(checkpoint=dict(type='CheckpointHook'))",
                           'default_hooks.checkpoint.type'),
    'NaN stop': ('custom_hooks = []', 'custom_hooks'),
    'checked train data': ("train_dataloader = dict(dataset=dict(type='CocoDataset'))",
                           'train_dataloader.dataset.type'),
    'checked val data': ("val_dataloader = dict(dataset=dict(type='CocoDataset'))",
                         'val_dataloader.dataset.type'),
    'checked test data': ("test_dataloader = dict(dataset=dict(type='CocoDataset'))",
                          'test_dataloader.dataset.type'),
}
#: The same from the command line (``--cfg-options``, parsed as MMDetection's train.py does).
OFF_OPTIONS = {'train_cfg.type=EpochBasedTrainLoop': 'train_cfg.type',
               'custom_hooks=[]': 'custom_hooks'}
#: How a config adds hooks and keeps the base's (docs/reliable_runs.md).
ADD_HOOKS_LINE = "custom_hooks = [*_base_.custom_hooks, dict(type='CostReportHook')]"
#: The NaN stop alone turned off in a config with other hooks, and the checked set told to drop
#: invalid annotations instead of failing (docs/reliable_runs.md).
NAN_STOP_OFF_LINE = ('custom_hooks = [h for h in _base_.custom_hooks '
                     "if h.type != 'NonFiniteLossHook']")
SKIP_INVALID_LINE = 'train_dataloader = dict(dataset=dict(skip_invalid=True))'
FEATURE_NAMES = ('ExactResumeEpochBasedTrainLoop', 'AtomicCheckpointHook', 'NonFiniteLossHook',
                 'CheckedCocoDataset', 'CheckedLVISV1Dataset')
ABSENT = '<absent>'


def config_file(name: str) -> str:
    """The file of a shipped config's name, or of a repository-relative path."""
    return osp.join(REPO, name) if name.startswith('projects/') else config_path(name)


def leaf_datasets(dataset: Dict[str, Any], path: str) -> Iterator[Tuple[str, Dict[str, Any]]]:
    """The datasets a dataset config reads, through its wrappers: ``(field path, config)``."""
    if 'datasets' in dataset:  # ConcatDataset
        for index, inner in enumerate(dataset['datasets']):
            yield from leaf_datasets(inner, f'{path}.datasets.{index}')
    elif 'dataset' in dataset:  # RepeatDataset, ClassBalancedDataset, MultiImageMixDataset
        yield from leaf_datasets(dataset['dataset'], f'{path}.dataset')
    else:
        yield path, dataset


def _registered_as(registry, name: Any, cls: type) -> bool:
    found = registry.get(name) if isinstance(name, str) else name
    return isinstance(found, type) and issubclass(found, cls)


def reliability_problems(cfg: Dict[str, Any]) -> List[str]:
    """What of the reliability features a resolved config lacks, one line each, starting with
    the field (empty: all on)."""
    problems = []
    loop = cfg.get('train_cfg', {}).get('type')
    if not _registered_as(LOOPS, loop, ExactResumeEpochBasedTrainLoop):
        problems.append(f'train_cfg.type: {loop!r} is not ExactResumeEpochBasedTrainLoop')
    checkpoint = (cfg.get('default_hooks', {}).get('checkpoint') or {}).get('type')
    if not _registered_as(HOOKS, checkpoint, AtomicCheckpointHook):
        problems.append(f'default_hooks.checkpoint.type: {checkpoint!r} is not '
                        'AtomicCheckpointHook')
    guards = [hook for hook in cfg.get('custom_hooks', [])
              if _registered_as(HOOKS, hook.get('type'), NonFiniteLossHook)]
    if len(guards) != 1:
        problems.append(f'custom_hooks: {len(guards)} NonFiniteLossHook, not one')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for path, dataset in leaf_datasets(cfg[loader]['dataset'], f'{loader}.dataset'):
            kind = dataset.get('type')
            if kind not in UNCHECKED and not _registered_as(DATASETS, kind, CheckedDatasetMixin):
                problems.append(f'{path}.type: {kind!r} is not a checked dataset')
    return problems


def leaf_changes(config: Any, base: Any, prefix: str = '') -> Dict[str, Any]:
    """The leaves where ``config`` differs from ``base``, by dotted path (lists as leaves)."""
    if isinstance(config, dict) and isinstance(base, dict):
        changes: Dict[str, Any] = {}
        for key in set(config) | set(base):
            changes.update(leaf_changes(config.get(key, ABSENT), base.get(key, ABSENT),
                                        f'{prefix}.{key}' if prefix else key))
        return changes
    return {} if type(config) is type(base) and config == base else {prefix: config}


def strings_in(path: str) -> set:
    """The string constants a config file writes (comments left out)."""
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def resolve(path: str) -> Dict[str, Any]:
    return Config.fromfile(path).to_dict()


def child_config(tmp_path, base: str, *lines: str) -> str:
    """A user's config: ``_base_`` one of ours, plus ``lines``."""
    path = tmp_path / 'user_config.py'
    path.write_text(f'_base_ = {base!r}\n' + '\n'.join(lines) + '\n')
    return str(path)


# ------------------------------------------------------------------------------------------
# every config, its resolved fields
# ------------------------------------------------------------------------------------------
def test_every_config_is_walked():
    # the shipped configs are found (the wheel's listing), and the mini world's by their folder
    assert len(list_configs()) >= 115 and len(MINI_WORLD) >= 5
    assert len(CONFIGS) == len(set(CONFIGS)) == len(list_configs()) + len(MINI_WORLD)
    assert set(FAST) <= set(CONFIGS)


@pytest.mark.parametrize(
    'name', [n if n in FAST else pytest.param(n, marks=pytest.mark.configs) for n in CONFIGS])
def test_config_runs_reliably_by_default(name):
    cfg = resolve(config_file(name))
    assert reliability_problems(cfg) == [], name
    leaves = [dataset['type'] for loader in ('train_dataloader', 'val_dataloader',
                                             'test_dataloader')
              for _, dataset in leaf_datasets(cfg[loader]['dataset'], loader)]
    unchecked = {kind for kind in leaves if kind in UNCHECKED}
    # only Pascal VOC and the mini world's classifier read what no checked dataset reads
    assert unchecked <= ({'VOCDataset'} if 'voc0712' in name else
                         {'MiniWorldClassificationDataset'} if 'classifier_' in name else set())


def test_formats_left_unchecked_have_no_checked_dataset_yet():
    """When mmfrozen gains a checked twin of one of them, the configs must use it."""
    for kind, why in UNCHECKED.items():
        assert why and DATASETS.get(f'Checked{kind}') is None, f'use Checked{kind}'


def test_the_walk_reaches_every_inner_dataset():
    cfg = dict(
        train_cfg=dict(type='ExactResumeEpochBasedTrainLoop'),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook')),
        custom_hooks=[dict(type='NonFiniteLossHook'), dict(type='CostReportHook')],
        train_dataloader=dict(dataset=dict(type='RepeatDataset', dataset=dict(
            type='ClassBalancedDataset', dataset=dict(type='LVISV1Dataset')))),
        val_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
            dict(type='CheckedCocoDataset'), dict(type='CocoDataset')])),
        test_dataloader=dict(dataset=dict(type='CheckedLVISV1Dataset')))
    assert reliability_problems(cfg) == [
        "train_dataloader.dataset.dataset.dataset.type: 'LVISV1Dataset' is not a checked "
        'dataset',
        "val_dataloader.dataset.datasets.1.type: 'CocoDataset' is not a checked dataset"]
    cfg['custom_hooks'] *= 2
    assert reliability_problems(cfg)[0] == 'custom_hooks: 2 NonFiniteLossHook, not one'


def test_features_come_from_the_shared_bases():
    """No shipped config outside ``_base_/`` names a feature: each comes from a base, so that
    one base changes it for every config (the mini world writes its own schedule's loop)."""
    naming = {name: strings_in(config_path(name)) & set(FEATURE_NAMES)
              for name in list_configs()}
    assert {name: named for name, named in naming.items() if named} == {}
    in_bases = set().union(*(strings_in(config_path(name))
                             for name in list_configs(include_bases=True)
                             if name.startswith('_base_/')))
    assert set(FEATURE_NAMES) <= in_bases
    assert osp.isdir(osp.join(configs_dir(), '_base_', 'common'))


# ------------------------------------------------------------------------------------------
# one line turns each off; a user's own hooks keep ours
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def frozen_r50() -> Dict[str, Any]:
    return resolve(config_path(FROZEN_R50))


@pytest.mark.parametrize('feature', [
    feature if feature == 'exact-resume loop' else pytest.param(feature, marks=pytest.mark.configs)
    for feature in OFF_LINES
])
def test_one_documented_line_turns_a_feature_off(feature, tmp_path, frozen_r50):
    line, field = OFF_LINES[feature]
    with open(osp.join(REPO, 'docs', 'reliable_runs.md')) as f:
        assert line in f.read(), f'docs/reliable_runs.md does not give {line!r}'
    cfg = resolve(child_config(tmp_path, config_path(FROZEN_R50), line))
    problems = reliability_problems(cfg)
    assert len(problems) == 1 and problems[0].startswith(f'{field}:'), problems
    changed = leaf_changes(cfg, frozen_r50)
    assert set(changed) == {field}, changed  # the rest of the config as it was


@pytest.mark.parametrize('name, line', [
    pytest.param('faster_rcnn/faster-rcnn_r50-frozen_fpn_sample1e-3_ms-1x_lvis-v1.py',
                 "train_dataloader = dict(dataset=dict(dataset=dict(type='LVISV1Dataset')))",
                 marks=pytest.mark.configs, id='lvis'),
    pytest.param('nas_fpn/faster-rcnn_r50-frozen_nasfpn_sample1e-3_lsj-100e_lvis-v1.py',
                 'train_dataloader = dict(dataset=dict(dataset=dict(dataset=dict('
                 "type='LVISV1Dataset'))))", marks=pytest.mark.configs, id='lvis-lsj'),
    pytest.param('nas_fpn/faster-rcnn_r50-frozen_nasfpn_lsj-100e_coco.py',
                 "train_dataloader = dict(dataset=dict(dataset=dict(type='CocoDataset')))",
                 marks=pytest.mark.configs, id='coco-lsj'),
])
def test_the_train_set_inside_its_wrappers_is_turned_off_by_one_line(name, line, tmp_path):
    with open(osp.join(REPO, 'docs', 'reliable_runs.md')) as f:
        assert line in f.read(), f'docs/reliable_runs.md does not give {line!r}'
    cfg = resolve(child_config(tmp_path, config_path(name), line))
    problems = reliability_problems(cfg)
    assert len(problems) == 1 and problems[0].startswith('train_dataloader.dataset.dataset'), \
        problems
    assert set(leaf_changes(cfg, resolve(config_path(name)))) == {problems[0].split(':')[0]}


@pytest.mark.configs
@pytest.mark.parametrize('option', list(OFF_OPTIONS))
def test_one_cfg_option_turns_a_feature_off(option, frozen_r50):
    with open(osp.join(REPO, 'docs', 'reliable_runs.md')) as f:
        assert option in f.read(), f'docs/reliable_runs.md does not give {option!r}'
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    cfg = Config.fromfile(config_path(FROZEN_R50))
    cfg.merge_from_dict(parser.parse_args(['--cfg-options', option]).cfg_options)
    problems = reliability_problems(cfg.to_dict())
    field = OFF_OPTIONS[option]
    assert len(problems) == 1 and problems[0].startswith(f'{field}:'), problems
    assert set(leaf_changes(cfg.to_dict(), frozen_r50)) == {field}


@pytest.mark.configs
def test_the_nan_stop_alone_is_turned_off_in_a_config_with_other_hooks(tmp_path):
    with open(osp.join(REPO, 'docs', 'reliable_runs.md')) as f:
        assert NAN_STOP_OFF_LINE in f.read()
    name = FAST[1]  # its own ClassBalancedLossHook after the base's NonFiniteLossHook
    base = resolve(config_path(name))
    cfg = resolve(child_config(tmp_path, config_path(name), NAN_STOP_OFF_LINE))
    assert reliability_problems(cfg) == ['custom_hooks: 0 NonFiniteLossHook, not one']
    others = [hook for hook in base['custom_hooks'] if hook['type'] != 'NonFiniteLossHook']
    assert cfg['custom_hooks'] == others and len(others) == 1
    assert set(leaf_changes(cfg, base)) == {'custom_hooks'}


@pytest.mark.configs
def test_skip_invalid_keeps_the_checked_set(tmp_path, frozen_r50):
    with open(osp.join(REPO, 'docs', 'reliable_runs.md')) as f:
        assert SKIP_INVALID_LINE in f.read()
    cfg = resolve(child_config(tmp_path, config_path(FROZEN_R50), SKIP_INVALID_LINE))
    assert reliability_problems(cfg) == []
    assert leaf_changes(cfg, frozen_r50) == {'train_dataloader.dataset.skip_invalid': True}


def test_a_users_hooks_keep_ours_when_added_after_the_base_s(tmp_path):
    with open(osp.join(REPO, 'docs', 'reliable_runs.md')) as f:
        assert ADD_HOOKS_LINE in f.read()
    cfg = resolve(child_config(tmp_path, config_path(FROZEN_R50), ADD_HOOKS_LINE))
    assert reliability_problems(cfg) == []
    assert [hook['type'] for hook in cfg['custom_hooks']] == ['NonFiniteLossHook',
                                                              'CostReportHook']
    # the pitfall the docs warn of: a list in a child config replaces its base's
    replaced = resolve(child_config(tmp_path, config_path(FROZEN_R50),
                                    "custom_hooks = [dict(type='CostReportHook')]"))
    assert reliability_problems(replaced) == ['custom_hooks: 0 NonFiniteLossHook, not one']


# ------------------------------------------------------------------------------------------
# the "Done when" runs: a shipped frozen config, shrunk through --cfg-options only
# ------------------------------------------------------------------------------------------
def _seeded_resnet18(path: str) -> Dict[str, torch.Tensor]:
    """A ResNet-18 checkpoint standing in for a classifier: BN statistics and affine parameters
    drawn too, as a trained classifier's are (the freeze check refuses tensors left at their
    initial values, as never loaded), from another seed than the runs' (randomness.seed=0
    would draw the same convolutions)."""
    from mmdet.models.backbones import ResNet
    torch.manual_seed(1234)
    resnet = ResNet(depth=18)
    with torch.no_grad():
        for module in resnet.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    state = resnet.state_dict()
    torch.save(dict(state_dict=state), path)
    return state


def shrunk(tmp_path, coco_cfg: Dict[str, str], **extra: Any) -> Dict[str, Any]:
    """Options that shrink FROZEN_R50 to a ResNet-18, a narrower box head sampling fewer RoIs
    (its 12544x1024 layer over 512 RoIs an image dominates a CPU step), 128x128 images and the
    tiny COCO data (dotted keys, as ``--cfg-options``); the stock data loaders (2 persistent
    workers, RandomFlip), evaluation and checkpoints kept."""
    checkpoint = str(tmp_path / 'classifier_r18.pth')
    if not osp.isfile(checkpoint):
        _seeded_resnet18(checkpoint)
    return {**coco_cfg, 'model.backbone.depth': 18,
            'model.neck.in_channels': [64, 128, 256, 512],
            'model.backbone.init_cfg.checkpoint': checkpoint,
            'model.roi_head.bbox_head.fc_out_channels': 128,
            'model.train_cfg.rcnn.sampler.num': 64,
            'train_dataloader.dataset.pipeline.2.scale': (128, 128),
            'val_dataloader.dataset.pipeline.1.scale': (128, 128),
            'test_dataloader.dataset.pipeline.1.scale': (128, 128),
            'train_cfg.max_epochs': 2, 'randomness.seed': 0, 'randomness.deterministic': True,
            'default_hooks.logger.interval': 1, **extra}


def cfg_options(options: Dict[str, Any]) -> List[str]:
    """``options`` as ``--cfg-options`` arguments."""
    return [f'{key}={value}'.replace(' ', '') for key, value in options.items()]


@pytest.mark.runs
def test_runner_from_cfg_runs_every_feature(tmp_path, tiny_coco_cfg):
    """MMEngine's own ``Runner.from_cfg`` (a plain Runner) builds the features from the
    config alone: the loop, both hooks, the checked train and val sets."""
    cfg = Config.fromfile(config_path(FROZEN_R50))
    options = shrunk(tmp_path, tiny_coco_cfg, work_dir=str(tmp_path / 'work'), launcher='none')
    del options['randomness.deterministic']  # torch's global switch, in this test process
    cfg.merge_from_dict(options)
    runner = Runner.from_cfg(cfg)
    assert type(runner) is Runner
    assert isinstance(runner.train_loop, ExactResumeEpochBasedTrainLoop)
    hooks = [type(hook) for hook in runner.hooks]
    assert AtomicCheckpointHook in hooks and NonFiniteLossHook in hooks
    assert isinstance(runner.train_loop.dataloader.dataset, CheckedCocoDataset)
    assert isinstance(runner.val_loop.dataloader.dataset, CheckedCocoDataset)


def train_args(work_dir, options: Dict[str, Any], tool: str = 'tools/train.py') -> List[str]:
    """``tools/train.py FROZEN_R50`` (or another train.py) with ``options``."""
    return [tool, config_path(FROZEN_R50), '--work-dir', str(work_dir), '--cfg-options',
            *cfg_options(options)]


@pytest.mark.runs
def test_shipped_frozen_config_killed_mid_epoch_resumes_bit_identically(
        tmp_path, tiny_coco_cfg, run_tool):
    """No line added to the config: the test SIGKILLs the training process (and its data-loader
    workers) once its first checkpoint is complete, mid-epoch 1, and resumes it with --resume;
    its last checkpoint equals the uninterrupted run's, bit for bit."""
    options = shrunk(tmp_path, tiny_coco_cfg, **{'default_hooks.checkpoint.by_epoch': False,
                                                 'default_hooks.checkpoint.interval': 3})
    whole, killed = tmp_path / 'whole', tmp_path / 'killed'
    run_tool(train_args(whole, options))
    log_file = tmp_path / 'killed.log'
    with open(log_file, 'w') as output:
        proc = subprocess.Popen([sys.executable, *train_args(killed, options)], cwd=REPO,
                                env=tool_env(REPO), stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.time() + 600
            while not osp.isfile(killed / 'last_checkpoint') and proc.poll() is None \
                    and time.time() < deadline:
                time.sleep(0.02)
            assert proc.poll() is None, 'the run ended before its first checkpoint'
            os.killpg(proc.pid, signal.SIGKILL)  # the run and its data-loader workers
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, log_file.read_text()[-3000:]
    assert not osp.isfile(killed / 'iter_24.pth')
    resumed = run_tool(train_args(killed, options) + ['--resume'])
    log = resumed.stdout + resumed.stderr
    epoch, batch = map(int, re.search(r'Resuming epoch (\d+) at batch (\d+)', log).groups())
    assert epoch == 1 and batch > 1, log[-3000:]  # mid-epoch: 12 batches an epoch
    assert last_checkpoint(killed).endswith('iter_24.pth')
    assert last_checkpoint(whole).endswith('iter_24.pth')
    assert differing_tensors(state_dict(last_checkpoint(killed)),
                             state_dict(last_checkpoint(whole))) == []


@pytest.mark.runs
def test_shipped_frozen_config_stops_on_a_nan_loss_with_mmdetections_train_py(
        tmp_path, tiny_coco_cfg, run_tool):
    """``optim_wrapper.optimizer.lr=1e10`` through MMDetection's own tools/train.py: the run
    exits non-zero with NonFiniteLossError and writes no checkpoint."""
    work_dir = tmp_path / 'nan'
    options = shrunk(tmp_path, tiny_coco_cfg, **{'optim_wrapper.optimizer.lr': 1e10,
                                                 'train_cfg.max_epochs': 1})
    proc = run_tool(train_args(work_dir, options, mmdet_tool_path('train.py')), check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert re.search(r'NonFiniteLossError: (Non-finite loss at|Training stopped at) iteration '
                     r'\d+ \(epoch 1, batch \d+\)', log), log[-3000:]
    assert glob.glob(str(work_dir / '*.pth')) == []
    assert not osp.exists(work_dir / 'last_checkpoint')
