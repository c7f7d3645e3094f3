"""tools/train.py, tools/test.py and tools/dist_*.sh on the real stack, on the CPU."""
import glob
import os.path as osp
import pickle
import textwrap

import pytest

import torch
from mmfrozen.testing import TINY_FASTER_RCNN, find_metrics_json
from mmengine.config import Config
from mmengine.runner import Runner

import mmfrozen  # noqa: F401
from mmfrozen.mmdet_tools import run_main_script


def assert_same_tree(a, b, where='optimizer'):
    """Two nested dict/list structures of tensors and numbers are equal, leaf by leaf."""
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            assert_same_tree(a[key], b[key], f'{where}.{key}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f'{where}[{i}]')
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def test_train_saves_checkpoints(trained_tiny):
    for epoch, iters in ((1, 6), (2, 12)):
        meta = torch.load(osp.join(trained_tiny, f'epoch_{epoch}.pth'), weights_only=True)['meta']
        assert (meta['epoch'], meta['iter']) == (epoch, iters)
    # the runner dumps the config it ran, with mmfrozen imported
    assert osp.isfile(osp.join(trained_tiny, osp.basename(TINY_FASTER_RCNN)))


def test_resume_restores_iteration_and_optimizer(trained_tiny, tiny_coco_cfg, tmp_path):
    ckpt = osp.join(trained_tiny, 'epoch_1.pth')
    cfg = Config.fromfile(TINY_FASTER_RCNN)
    cfg.merge_from_dict(tiny_coco_cfg)
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    # in the order Runner.train() builds them before it resumes
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.param_schedulers = runner.build_param_scheduler(runner.param_schedulers)
    runner.resume(ckpt)
    assert (runner.epoch, runner.iter) == (1, 6)
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert_same_tree(runner.optim_wrapper.state_dict(), saved['optimizer'])
    assert saved['optimizer']['state'], 'the checkpoint holds no momentum: nothing was tested'


@pytest.mark.runs
def test_train_resume_continues_to_the_end(trained_tiny, tiny_coco_options, tmp_path, run_tool):
    proc = run_tool(['tools/train.py', TINY_FASTER_RCNN, '--work-dir', str(tmp_path),
                     '--resume', osp.join(trained_tiny, 'epoch_1.pth'),
                     '--cfg-options', *tiny_coco_options])
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1, iter: 6' in log
    assert not osp.exists(tmp_path / 'epoch_1.pth'), 'resumed run retrained epoch 1'
    meta = torch.load(tmp_path / 'epoch_2.pth', weights_only=True)['meta']
    assert (meta['epoch'], meta['iter']) == (2, 12)


def test_test_tool_evaluates_and_dumps(trained_tiny, tiny_coco_options, tmp_path, run_tool):
    out = tmp_path / 'results.pkl'
    run_tool(['tools/test.py', TINY_FASTER_RCNN, osp.join(trained_tiny, 'epoch_2.pth'),
              '--work-dir', str(tmp_path), '--out', str(out),
              '--cfg-options', *tiny_coco_options])
    metrics = find_metrics_json(str(tmp_path))
    assert 'coco/bbox_mAP' in metrics and 0.0 <= metrics['coco/bbox_mAP'] <= 1.0
    with open(out, 'rb') as f:
        results = pickle.load(f)
    assert sorted(r['img_id'] for r in results) == list(range(1, 16))


@pytest.mark.dist
def test_two_processes_train_and_score_every_image_once(tiny_coco_options, tmp_path, run_tool,
                                                        run_dist_tool):
    gloo = ['env_cfg.dist_cfg.backend=gloo']
    train_dir = tmp_path / 'train'
    proc = run_dist_tool('dist_train.sh',
                         [TINY_FASTER_RCNN, '2', '--work-dir', str(train_dir), '--cfg-options',
                          'train_cfg.max_epochs=1', *gloo, *tiny_coco_options])
    assert proc.returncode == 0, proc.stderr[-6000:]
    ckpt = train_dir / 'epoch_1.pth'
    # 24 images, 2 processes, batch 4: 3 iterations per epoch
    assert torch.load(ckpt, weights_only=True)['meta']['iter'] == 3

    one, two = tmp_path / 'test1', tmp_path / 'test2'
    run_tool(['tools/test.py', TINY_FASTER_RCNN, str(ckpt), '--work-dir', str(one),
              '--out', str(one / 'r.pkl'), '--cfg-options', *tiny_coco_options])
    proc = run_dist_tool('dist_test.sh',
                         [TINY_FASTER_RCNN, str(ckpt), '2', '--work-dir', str(two),
                          '--out', str(two / 'r.pkl'), '--cfg-options', *gloo, *tiny_coco_options])
    assert proc.returncode == 0, proc.stderr[-6000:]
    m1, m2 = find_metrics_json(str(one)), find_metrics_json(str(two))
    coco_keys = [k for k in m1 if k.startswith('coco/')]
    assert coco_keys and {k: m1[k] for k in coco_keys} == {k: m2[k] for k in coco_keys}
    with open(two / 'r.pkl', 'rb') as f:
        ids = [r['img_id'] for r in pickle.load(f)]
    assert sorted(ids) == list(range(1, 16)), '15 val images on 2 ranks: padding leaked in'


@pytest.mark.dist
def test_two_processes_need_the_cpu_launcher_fix(tiny_coco_options, tmp_path, run_dist_tool):
    proc = run_dist_tool('dist_train.sh',
                         [TINY_FASTER_RCNN, '2', '--work-dir', str(tmp_path), '--cfg-options',
                          'train_cfg.max_epochs=1', 'env_cfg.dist_cfg.backend=gloo',
                          *tiny_coco_options],
                         MMFROZEN_NO_COMPAT='patch_cpu_launcher,patch_cpu_ddp')
    assert proc.returncode != 0
    assert 'cuda' in proc.stderr.lower() or 'device_ids' in proc.stderr


@pytest.mark.runs
def test_tools_keep_mmdetection_cli(repo_root, run_tool):
    for tool, flags in (('train.py', ['--work-dir', '--resume', '--amp', '--auto-scale-lr',
                                      '--cfg-options', '--launcher']),
                        ('test.py', ['--work-dir', '--out', '--show-dir', '--tta',
                                     '--cfg-options', '--launcher'])):
        usage = run_tool([f'tools/{tool}', '-h']).stdout
        for flag in flags:
            assert flag in usage, (tool, flag)
    assert glob.glob(osp.join(repo_root, 'tools', 'slurm_*.sh'))


def gloo_threads() -> list:
    """Names of this process's gloo threads (Linux names threads in /proc)."""
    names = []
    for comm in glob.glob('/proc/self/task/*/comm'):
        with open(comm) as f:
            names.append(f.read().strip())
    return [name for name in names if 'gloo' in name]


def test_tool_scripts_end_with_gloo_threads_joined(tmp_path):
    # Like MMEngine's runner, the script leaves its DDP model in a reference cycle: without a
    # collection after destroy_process_group, gloo's threads outlive the script and can abort
    # the process at interpreter exit.
    script = tmp_path / 'script.py'
    script.write_text(textwrap.dedent(f'''\
        import sys
        import torch
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel
        dist.init_process_group('gloo', init_method='file://{tmp_path / "store"}', rank=0,
                                world_size=1)
        model = DistributedDataParallel(torch.nn.Linear(2, 2))
        model.cycle = model
        model(torch.ones(1, 2)).sum().backward()
        assert sys.argv[1:] == ['--flag', 'value']
        '''))
    assert not gloo_threads(), 'another test left a gloo group running'
    try:
        run_main_script(str(script), ['--flag', 'value'])
        assert not torch.distributed.is_initialized()
        assert not gloo_threads()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        __import__('gc').collect()
