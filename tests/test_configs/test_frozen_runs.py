"""Frozen configs as users run them: a stock R50 config through tools/train.py, and DDP."""

import pytest
import torch
from mmfrozen.testing import TINY_FASTER_RCNN
from torch import nn

from mmfrozen.shipped_configs import config_path
import mmfrozen  # noqa: F401
from mmdet.models.backbones import ResNet
from mmfrozen.mmdet_tools import mmdet_tool_path

FROZEN_R50 = config_path('faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py')
FRAGMENT = config_path('_base_/frozen-backbone.py')


def fake_classifier_checkpoint(path: str) -> dict:
    """A ResNet-50 checkpoint standing in for an ImageNet classifier (no download here).

    BN weights, biases and statistics are drawn at random too: a trained classifier's are
    never the 1/0 a freshly built layer holds.
    """
    torch.manual_seed(123)
    resnet = ResNet(depth=50)
    with torch.no_grad():
        for module in resnet.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    state = resnet.state_dict()
    torch.save(dict(state_dict=state), path)
    return state


@pytest.mark.runs
@pytest.mark.parametrize('tool', ['ours', 'mmdet'])
def test_stock_frozen_r50_config_trains_and_keeps_the_classifier_weights(
        tiny_coco_options, tmp_path, tool, run_tool):
    """configs/faster_rcnn/faster-rcnn_r50-frozen_fpn_1x_coco.py at its own 1333x800 scale,
    through our tools/train.py and through MMDetection's own, as its install ships it: one
    image and no validation (an epoch loop validates after its last epoch whatever its
    ``val_interval``, unless ``val_begin`` is past it: 75 s for the 15 images at full size)."""
    ckpt = str(tmp_path / 'classifier.pth')
    classifier = fake_classifier_checkpoint(ckpt)
    work_dir = tmp_path / 'run'
    script = 'tools/train.py' if tool == 'ours' else mmdet_tool_path('train.py')
    proc = run_tool([
        script, FROZEN_R50, '--work-dir', str(work_dir), '--cfg-options',
        *tiny_coco_options, f'model.backbone.init_cfg.checkpoint={ckpt}',
        'train_dataloader.dataset.indices=1', 'train_dataloader.batch_size=1',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'train_cfg.max_epochs=1', 'train_cfg.val_begin=2', 'default_hooks.logger.interval=1'
    ])
    log = proc.stdout + proc.stderr
    assert 'Epoch(train) [1][1/1]' in log
    assert 'Frozen modules backbone unchanged before saving the checkpoint' in log
    detector = torch.load(work_dir / 'epoch_1.pth', weights_only=True)['state_dict']
    for key, value in classifier.items():
        if key.startswith('fc.'):
            continue
        assert torch.equal(detector[f'backbone.{key}'], value), key
    # and the detector did train: the neck moved away from its initial values
    assert any(k.startswith('neck.') for k in detector)


@pytest.mark.dist
def test_two_process_ddp_with_a_frozen_backbone(tiny_coco_options, tmp_path, run_dist_tool):
    """Frozen parameters must be frozen before DDP wraps the model, or its reducer hangs."""
    config = tmp_path / 'faster-rcnn_r18-tiny-frozen_fpn_coco.py'
    config.write_text(f'_base_ = [{TINY_FASTER_RCNN!r}, {FRAGMENT!r}]\n'
                      'model = dict(backbone=dict(frozen_stages=4, norm_eval=True))\n'
                      'frozen = dict(allow_uninitialized=True)\n')
    work_dir = tmp_path / 'ddp'
    proc = run_dist_tool('dist_train.sh', [
        str(config), '2', '--work-dir', str(work_dir), '--cfg-options', 'train_cfg.max_epochs=1',
        'env_cfg.dist_cfg.backend=gloo', *tiny_coco_options])
    assert proc.returncode == 0, proc.stderr[-6000:]
    state = torch.load(work_dir / 'epoch_1.pth', weights_only=True)
    assert state['meta']['iter'] == 3
    log = (proc.stdout + proc.stderr)
    assert 'FrozenBackboneCheckHook' in log
