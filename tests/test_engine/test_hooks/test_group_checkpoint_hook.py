"""A DetectorGroup run through tools/train.py: each detector's checkpoints (loaded by its own
config as if trained alone), its metrics, its random stream in the group's checkpoint; the same
weights as each detector trained alone; exact resume; a NaN in one detector names it."""
import glob
import json
import os.path as osp
import signal

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmfrozen  # noqa: F401
from mmfrozen.engine.hooks.group_checkpoint_hook import GROUP_INDEX, STREAMS_KEY
from mmfrozen.testing import (differing_tensors, find_metrics_json, last_checkpoint, state_dict,
                              write_config)
from mmfrozen.testing.detector_group import (GROUP_TINY, GROUP_TINY_FASTER, GROUP_TINY_RETINA,
                                             group_cfg_options, write_tiny_backbone)
from mmfrozen.testing.faults import KILL_ENV

MEMBERS = {'faster': GROUP_TINY_FASTER, 'retina': GROUP_TINY_RETINA}


@pytest.fixture(scope='module')
def backbone(tmp_path_factory) -> str:
    return write_tiny_backbone(str(tmp_path_factory.mktemp('group_backbone') / 'backbone.pth'))


#: One epoch (6 iterations) for the group and, as it must be the same, for each detector.
ONE_EPOCH = ['train_cfg.max_epochs=1']
ONE_EPOCH_GROUP = ONE_EPOCH + ['model.cfg_options.train_cfg.max_epochs=1']


@pytest.fixture(scope='module')
def group_run(tmp_path_factory, tiny_coco, backbone, run_tool):
    """Work dir and process of the tiny group trained for 1 epoch (6 iterations), validated."""
    work_dir = str(tmp_path_factory.mktemp('group_run'))
    proc = run_tool(['tools/train.py', GROUP_TINY, '--work-dir', work_dir, '--cfg-options',
                     *group_cfg_options(tiny_coco, backbone), *ONE_EPOCH_GROUP])
    return work_dir, proc


def _val_scalars(work_dir: str) -> dict:
    path = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))[-1]
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if any('bbox_mAP' in k for k in r)][-1]


def test_group_run_writes_each_detector(group_run, backbone):
    work_dir, proc = group_run
    log = proc.stdout + proc.stderr
    # the freeze check covers the shared trunk
    assert 'Frozen modules backbone unchanged at the end of training' in log
    with open(osp.join(work_dir, GROUP_INDEX)) as f:
        assert json.load(f) == dict(detectors=dict(faster='group_tiny_faster.py',
                                                   retina='group_tiny_retina.py'))
    group_ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), weights_only=True)
    assert set(group_ckpt[STREAMS_KEY]['streams']) == set(MEMBERS)
    logged = _val_scalars(work_dir)
    init_default_scope('mmdet')
    for name, config in MEMBERS.items():
        folder = osp.join(work_dir, name)
        assert last_checkpoint(folder) == osp.join(folder, 'epoch_1.pth')
        cfg = Config.fromfile(osp.join(folder, osp.basename(config)))
        model = MODELS.build(cfg.model)
        # strict: every key of the detector's own model, and nothing else
        model.load_state_dict(state_dict(osp.join(folder, 'epoch_1.pth')), strict=True)
        with open(osp.join(folder, 'metrics', 'val_00000006.json')) as f:
            own = json.load(f)
        assert own['coco/bbox_mAP_50'] == logged[f'{name}/coco/bbox_mAP_50']
        assert own['epoch'] == 1
    # a detector's weights in the group checkpoint are those of its own checkpoint
    faster = state_dict(osp.join(work_dir, 'faster', 'epoch_1.pth'))
    assert torch.equal(faster['backbone.conv1.weight'],
                       group_ckpt['state_dict']['backbone.conv1.weight'])
    key = 'roi_head.bbox_head.fc_cls.weight'
    assert torch.equal(faster[key], group_ckpt['state_dict'][f'detectors.faster.{key}'])


@pytest.mark.runs
@pytest.mark.parametrize('name', list(MEMBERS))
def test_same_weights_as_alone(group_run, tmp_path, tiny_coco, backbone, run_tool, name):
    """Bit for bit, both detectors (the second one draws from its own stream)."""
    work_dir, _ = group_run
    run_tool(['tools/train.py', MEMBERS[name], '--work-dir', str(tmp_path), '--cfg-options',
              *group_cfg_options(tiny_coco, backbone, group=False), *ONE_EPOCH])
    alone = state_dict(str(tmp_path / 'epoch_1.pth'))
    grouped = state_dict(osp.join(work_dir, name, 'epoch_1.pth'))
    assert differing_tensors(alone, grouped) == []


@pytest.mark.runs
@pytest.mark.parametrize('name', list(MEMBERS))
def test_detector_checkpoint_tests_as_in_the_group(group_run, tmp_path, tiny_coco, backbone,
                                                   run_tool, name):
    work_dir, _ = group_run
    run_tool(['tools/test.py', MEMBERS[name], osp.join(work_dir, name, 'epoch_1.pth'),
              '--work-dir', str(tmp_path), '--cfg-options',
              *group_cfg_options(tiny_coco, backbone, group=False)])
    alone = find_metrics_json(str(tmp_path))
    logged = _val_scalars(work_dir)
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'):
        assert alone[key] == logged[f'{name}/{key}'], key


def _kill_config(tmp_path) -> str:
    return write_config(str(tmp_path / 'group_kill.py'), GROUP_TINY, [
        'default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2))',
        "custom_hooks = [*_base_.custom_hooks, dict(type='KillAtIterHook')]",
    ])


@pytest.mark.runs
def test_killed_mid_epoch_resumes_bit_identical(tmp_path, tiny_coco, backbone, run_tool,
                                                tool_env):
    config = _kill_config(tmp_path)
    options = group_cfg_options(tiny_coco, backbone)
    run_tool(['tools/train.py', config, '--work-dir', str(tmp_path / 'whole'),
              '--cfg-options', *options])
    killed = tmp_path / 'killed'
    proc = run_tool(['tools/train.py', config, '--work-dir', str(killed), '--cfg-options',
                     *options], env=tool_env(**{KILL_ENV: '9'}), check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert last_checkpoint(str(killed)).endswith('iter_8.pth')
    resumed = run_tool(['tools/train.py', config, '--work-dir', str(killed), '--resume',
                        '--cfg-options', *options])
    assert 'Resuming epoch 2 at batch 3' in resumed.stdout + resumed.stderr
    assert 'drawn outside the detectors' not in resumed.stdout + resumed.stderr
    assert differing_tensors(state_dict(str(tmp_path / 'whole' / 'iter_12.pth')),
                             state_dict(str(killed / 'iter_12.pth'))) == []
    for name in MEMBERS:
        assert last_checkpoint(str(killed / name)).endswith('iter_12.pth')


@pytest.mark.runs
def test_nan_in_one_detector_stops_naming_it(tmp_path, tiny_coco, backbone, run_tool):
    config = write_config(str(tmp_path / 'group_nan.py'), GROUP_TINY, [
        "model = dict(detectors=[dict(name='faster', config=_base_.model.detectors[0].config),",
        "    dict(name='retina', config=_base_.model.detectors[1].config,",
        "         cfg_options={'model.bbox_head.loss_cls.loss_weight': float('nan')})])",
    ])
    proc = run_tool(['tools/train.py', config, '--work-dir', str(tmp_path / 'run'),
                     '--cfg-options', *group_cfg_options(tiny_coco, backbone)], check=False)
    assert proc.returncode != 0
    assert ("NonFiniteLossError: Non-finite loss at iteration 1 (epoch 1, batch 1): detector "
            "'retina': retina/loss=nan, retina/loss_cls=nan") in proc.stderr
    assert 'faster/loss' not in proc.stderr.split('NonFiniteLossError')[-1]
    assert not osp.exists(tmp_path / 'run' / 'epoch_1.pth')


def test_compare_reads_a_group_run_as_its_detectors(group_run, repo_root, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location('compare_tool',
                                                  osp.join(repo_root, 'tools', 'compare.py'))
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    work_dir, _ = group_run
    assert compare.expand([work_dir]) == [osp.join(work_dir, name) for name in MEMBERS]
    assert compare.expand([repo_root]) == [repo_root]  # any other work dir: itself
    assert compare.main([work_dir, '--format', 'json']) == 0
    rows = json.loads(capsys.readouterr().out)['rows']
    logged = _val_scalars(work_dir)
    assert [row['config'] for row in rows] == ['group_tiny_faster', 'group_tiny_retina']
    for row, name in zip(rows, MEMBERS):
        assert row['work_dirs'] == [osp.join(work_dir, name)]
        assert row['AP50'] == logged[f'{name}/coco/bbox_mAP_50']


@pytest.mark.runs
def test_nan_in_one_detector_drops_it(group_run, tmp_path, tiny_coco, backbone, run_tool):
    """action='drop': the others train on, bit-identical to the group run without the NaN."""
    config = write_config(str(tmp_path / 'group_drop.py'), GROUP_TINY, [
        "model = dict(detectors=[dict(name='faster', config=_base_.model.detectors[0].config),",
        "    dict(name='retina', config=_base_.model.detectors[1].config,",
        "         cfg_options={'model.bbox_head.loss_cls.loss_weight': float('nan')})])",
        "custom_hooks = [dict(type='DetectorGroupHook'),",
        "                dict(type='DetectorGroupNonFiniteLossHook', action='drop')]",
    ])
    proc = run_tool(['tools/train.py', config, '--work-dir', str(tmp_path / 'run'),
                     '--cfg-options', *group_cfg_options(tiny_coco, backbone), *ONE_EPOCH_GROUP])
    assert "Dropped detector(s) retina at iteration 1 (epoch 1, batch 1)" in proc.stdout
    work_dir, _ = group_run
    assert differing_tensors(state_dict(osp.join(work_dir, 'faster', 'epoch_1.pth')),
                             state_dict(str(tmp_path / 'run' / 'faster' / 'epoch_1.pth'))) == []
    assert osp.isfile(tmp_path / 'run' / 'retina' / 'epoch_1.pth')


@pytest.mark.runs
def test_group_config_tests_its_checkpoint(group_run, tmp_path, tiny_coco, backbone, run_tool):
    """tools/test.py on the group config: every detector's metrics, as validated in training."""
    work_dir, _ = group_run
    run_tool(['tools/test.py', GROUP_TINY, osp.join(work_dir, 'epoch_1.pth'), '--work-dir',
              str(tmp_path), '--cfg-options', *group_cfg_options(tiny_coco, backbone),
              *ONE_EPOCH_GROUP])
    tested = find_metrics_json(str(tmp_path))
    logged = _val_scalars(work_dir)
    for name in MEMBERS:
        for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50'):
            assert tested[f'{name}/{key}'] == logged[f'{name}/{key}']
