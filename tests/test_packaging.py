"""Installing mmfrozen: it keeps an OpenMMLab stack that is already there, its import only
registers, and its wheel works where no clone of the repository is."""
import functools
import json
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path

import pytest


def test_editable_install_reinstalls_nothing_of_the_stack(repo_root):
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-build-isolation', '-e', '.'],
        cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    would = [line for line in proc.stdout.splitlines() if line.startswith('Would install')]
    assert len(would) == 1 and would[0].split()[2:] == [
        f'mmfrozen-{__import__("mmfrozen").__version__}'
    ], would


def test_import_registers_in_mmdetection_registries():
    import mmfrozen  # noqa: F401
    from mmdet.registry import HOOKS, METRICS, RUNNERS
    assert RUNNERS.get('FrozenBackboneRunner') is not None
    assert HOOKS.get('FrozenBackboneCheckHook') is not None
    assert HOOKS.get('CostReportHook') is not None
    assert METRICS.get('LVISStratifiedMetric') is not None
    assert METRICS.get('CocoStratifiedMetric') is not None


def test_import_has_no_side_effects_beyond_registration():
    """``import mmfrozen`` leaves matplotlib's backend alone (no ``matplotlib.use``; lvis-api
    itself imports pyplot, which does not choose one) and imports no experiment (projects/)."""
    code = ('import sys, matplotlib; import mmfrozen; '
            "print(any(m.split('.')[0] in ('projects', 'mini_world') for m in sys.modules), "
            'matplotlib.get_backend())')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True,
                          text=True, timeout=300, env=dict(__import__('os').environ,
                                                           MPLBACKEND='svg'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ['False', 'svg']


def test_frozen_module_builder_registered():
    import mmfrozen  # noqa: F401
    from mmdet.registry import MODELS
    assert MODELS.get('FrozenModule') is not None


# The wheel, installed where no clone is: a user's set-up. The venv's editable install of
# mmfrozen must not be seen, so the wheel goes into a new environment that reaches the stack
# (torch, mmdet, ...) through a .pth line naming this environment's site-packages: a .pth line
# adds a folder to sys.path without running the .pth files inside it (the editable finder).
WHEEL_RUN = r'''
import json, os, sys
import mmfrozen
from mmfrozen.shipped_configs import config_path, list_configs
here = os.path.dirname(mmfrozen.__file__)
print(json.dumps(dict(
    mmfrozen=here, repo_on_path=[p for p in sys.path if os.path.isdir(os.path.join(p, 'projects'))
                                 or os.path.isdir(os.path.join(p, 'mmfrozen', '.mim'))
                                 and p != os.path.dirname(here)],
    config=config_path('faster-rcnn_r50-frozen_fpn_1x_coco'), configs=len(list_configs()),
    tiny=__import__('mmfrozen.testing', fromlist=['x']).TINY_FASTER_RCNN)))
'''


def _seeded_resnet18(path: str) -> dict:
    """A ResNet-18 checkpoint standing in for a classifier: BN statistics and affine parameters
    drawn too, as a trained classifier's are (the freeze check refuses tensors left at their
    initial values, as never loaded)."""
    import torch
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
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


@pytest.mark.wheel
def test_wheel_installs_anywhere_and_trains_a_shipped_config(repo_root, tiny_coco_options,
                                                             tmp_path):
    """Build the wheel, install it into an empty environment, and from a folder outside the
    repository: import mmfrozen, find a shipped frozen config, train it one step through
    MMDetection's own tools/train.py and evaluate it with the default backend."""
    import site
    import torch
    wheels = tmp_path / 'wheels'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                    '-q', '-w', str(wheels), repo_root], check=True, timeout=600,
                   capture_output=True)
    [wheel] = wheels.glob('mmfrozen-*.whl')
    env_dir = tmp_path / 'env'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(env_dir)], check=True)
    python = env_dir / 'bin' / 'python'
    target = subprocess.run([str(python), '-c', 'import site; print(site.getsitepackages()[0])'],
                            check=True, capture_output=True, text=True).stdout.strip()
    (Path(target) / '_stack.pth').write_text('\n'.join(site.getsitepackages()) + '\n')
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target',
                    target, str(wheel)], check=True, timeout=600, capture_output=True)
    user = tmp_path / 'user'
    user.mkdir()
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env.update(OMP_NUM_THREADS='1')

    found = json.loads(subprocess.run([str(python), '-c', WHEEL_RUN], cwd=user, env=env,
                                      check=True, capture_output=True, text=True).stdout)
    assert found['mmfrozen'].startswith(target), found
    assert found['repo_on_path'] == [], found
    assert found['config'].startswith(target) and found['configs'] >= 100
    assert osp.isfile(found['tiny'])
    # the console script of the wheel: list, path, a standalone copy
    script = Path(target) / 'bin' / 'mmfrozen-config'
    run = functools.partial(subprocess.run, cwd=user, env=dict(env, PYTHONPATH=target),
                            capture_output=True, text=True, timeout=300)
    listed = run([str(python), str(script), 'list', 'frozen_fpn_1x_coco'])
    assert listed.returncode == 0 and 'faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py' in (
        listed.stdout.split())
    copied = run([str(python), str(script), 'copy', 'faster-rcnn_r50-frozen_fpn_1x_coco',
                  'my_configs'])
    assert copied.returncode == 0, copied.stderr[-3000:]
    config = copied.stdout.strip()
    assert osp.isfile(config) and osp.dirname(config) == str(user / 'my_configs')

    ckpt = str(tmp_path / 'resnet18.pth')
    classifier = _seeded_resnet18(ckpt)
    mmdet_train = osp.join(osp.dirname(__import__('mmdet').__file__), '.mim', 'tools',
                           'train.py')
    small = ['model.backbone.depth=18', 'model.neck.in_channels=[64,128,256,512]',
             f'model.backbone.init_cfg.checkpoint={ckpt}',
             'train_dataloader.dataset.pipeline.2.scale=(128,128)',
             'val_dataloader.dataset.pipeline.1.scale=(128,128)',
             'train_dataloader.dataset.indices=2', 'train_dataloader.batch_size=2',
             'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
             'val_dataloader.dataset.indices=3', 'val_dataloader.num_workers=0',
             'val_dataloader.persistent_workers=False', 'val_evaluator.type=CocoStratifiedMetric',
             'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1']
    work_dir = tmp_path / 'work'
    proc = run([str(python), mmdet_train, config, '--work-dir', str(work_dir), '--cfg-options',
                *tiny_coco_options, *small], timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert 'Epoch(train) [1][1/1]' in log
    assert 'Frozen modules backbone unchanged before saving the checkpoint' in log
    assert 'faster-coco-eval' in log and 'coco/bbox_mAP:' in log
    detector = torch.load(work_dir / 'epoch_1.pth', weights_only=True)['state_dict']
    assert all(torch.equal(detector[f'backbone.{k}'], v) for k, v in classifier.items()
               if not k.startswith('fc.'))
