"""The runner's side of a frozen config: FrozenBackboneRunner verifies the model's freeze,
FrozenBackboneCheckHook checks it during training, and tools/train.py keeps it bit for bit.

Every run goes through MMEngine's real runner on the tiny COCO set, either in this process
(``RUNNERS.build(cfg).train()``) or through ``tools/train.py``.
"""
from typing import Dict, List

import pytest
import torch
from mmfrozen.testing import TINY_FASTER_RCNN
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope

from mmfrozen.shipped_configs import config_path
import mmfrozen  # noqa: F401  registers the runner and the hook
from mmdet.registry import HOOKS, MODELS, RUNNERS
from mmfrozen.engine.hooks import FrozenBackboneCheckHook, FrozenBackboneError
from mmfrozen.engine.runner import FrozenBackboneRunner
from mmfrozen.models.freeze import trainable_parameters

FRAGMENT = config_path('_base_/frozen-backbone.py')
RESNET_FREEZE = 'model = dict(backbone=dict(frozen_stages=4, norm_eval=True))\n'


@HOOKS.register_module()
class PerturbTensorHook(Hook):
    """Test-only: adds 1 to one tensor of the model after a given training iteration."""

    def __init__(self, tensor: str, at_iter: int = 0) -> None:
        self.tensor = tensor
        self.at_iter = at_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if runner.iter == self.at_iter:
            model = runner.model.module if hasattr(runner.model, 'module') else runner.model
            with torch.no_grad():
                dict(model.state_dict(keep_vars=True))[self.tensor].add_(1.0)


def _options_dict(options: List[str]) -> Dict[str, str]:
    return dict(option.split('=', 1) for option in options)


def _frozen_tiny_config(tmp_path, extra: str = '', model_freeze: str = RESNET_FREEZE) -> str:
    """The tiny detector as a frozen config is written: twin + fragment + the backbone's own
    freezing options."""
    path = tmp_path / 'faster-rcnn_r18-tiny-frozen_fpn_coco.py'
    path.write_text(f'_base_ = [{TINY_FASTER_RCNN!r}, {FRAGMENT!r}]\n{model_freeze}{extra}')
    return str(path)


def _runner(config: str, tmp_path, tiny_coco_options: List[str], **options):
    """A runner built from ``config`` by the registry, as mmdet's tools/train.py builds it."""
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(_options_dict(tiny_coco_options))
    cfg.merge_from_dict({
        'train_dataloader.dataset.indices': 8,  # two iterations an epoch
        'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 10,
        **options,
    })
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = tmp_path.name
    return RUNNERS.build(cfg)


def _initial_checkpoint(tmp_path, drop_prefix: str = None, strip: str = '',
                        name: str = 'init.pth') -> str:
    """Save weights for the tiny detector (optionally without some tensors): its initialised
    weights plus noise, as a trained checkpoint's (BN statistics no longer 0 and 1)."""
    init_default_scope('mmdet')
    model = MODELS.build(Config.fromfile(TINY_FASTER_RCNN).model)
    model.init_weights()
    generator = torch.Generator().manual_seed(0)
    state = {
        key[len(strip):]: (value + 0.01 * torch.rand(value.shape, generator=generator).abs()
                           if value.is_floating_point() else value)
        for key, value in model.state_dict().items()
        if key.startswith(strip) and not (drop_prefix and key.startswith(drop_prefix))}
    path = str(tmp_path / name)
    torch.save(dict(state_dict=state, meta=dict()), path)
    return path


def _backbone(state: dict) -> Dict[str, torch.Tensor]:
    return {key: value for key, value in state.items() if key.startswith('backbone.')}


def test_runner_verifies_at_build_and_registers_check(tmp_path, tiny_coco_options):
    runner = _runner(_frozen_tiny_config(tmp_path), tmp_path, tiny_coco_options)
    assert isinstance(runner, FrozenBackboneRunner)
    assert runner.frozen_modules == ['backbone']
    assert not any(p.requires_grad for p in runner.model.backbone.parameters())
    assert all(p.requires_grad for p in runner.model.neck.parameters())
    checks = [hook for hook in runner.hooks if isinstance(hook, FrozenBackboneCheckHook)]
    assert len(checks) == 1 and checks[0].modules == ['backbone']


def test_check_can_be_turned_off(tmp_path, tiny_coco_options):
    runner = _runner(_frozen_tiny_config(tmp_path), tmp_path, tiny_coco_options,
                     **{'frozen.check': False})
    assert trainable_parameters(runner.model.backbone) == []
    assert not any(isinstance(hook, FrozenBackboneCheckHook) for hook in runner.hooks)


def test_unknown_frozen_field_names_file_and_field(tmp_path, tiny_coco_options):
    config = _frozen_tiny_config(tmp_path, 'frozen = dict(modlues=["backbone"])\n')
    with pytest.raises(KeyError,
                       match=r'faster-rcnn_r18-tiny-frozen_fpn_coco\.py.*frozen\.modlues'):
        _runner(config, tmp_path, tiny_coco_options)


def test_old_field_name_is_refused_naming_the_new_one(tmp_path, tiny_coco_options):
    config = _frozen_tiny_config(tmp_path, 'freeze = dict(modules=["backbone"])\n')
    with pytest.raises(KeyError, match=r'tiny-frozen_fpn_coco\.py: the field `freeze` is now '
                       r'called `frozen`'):
        _runner(config, tmp_path, tiny_coco_options)


def test_runner_refuses_a_frozen_field_the_model_does_not_honour(tmp_path, tiny_coco_options):
    """frozen.modules without the model's own freeze: the runner verifies, it does not freeze."""
    config = _frozen_tiny_config(tmp_path, model_freeze='')
    with pytest.raises(FrozenBackboneError,
                       match=r'tiny-frozen_fpn_coco\.py: frozen\.modules names \[\'backbone\'\].*'
                       r'backbone\.conv1\.weight requires grad.*frozen_stages=4'):
        _runner(config, tmp_path, tiny_coco_options)


def test_norm_eval_false_is_refused_when_a_norm_layer_would_train(tmp_path, tiny_coco_options):
    """frozen_stages=4 alone keeps the stages in eval mode: accepted. A backbone freeze that
    leaves BN training (frozen_stages=3, layer4 trains) is refused, naming the layer."""
    config = _frozen_tiny_config(
        tmp_path, model_freeze='model = dict(backbone=dict(frozen_stages=3, norm_eval=False))\n')
    with pytest.raises(FrozenBackboneError, match=r'backbone\.layer4\.0\.conv1\.weight requires '
                       r'grad.*backbone\.layer4\.0\.bn1 \(BatchNorm2d\) is in train mode'):
        _runner(config, tmp_path, tiny_coco_options)


@pytest.mark.parametrize('frozen', [True, pytest.param(False, marks=pytest.mark.runs)],
                         ids=['frozen', 'finetune'])
def test_train_tool_frozen_backbone_bit_identical(tmp_path, tiny_coco_options, frozen, run_tool):
    """tools/train.py, two epochs with checkpoints: the frozen backbone ends exactly as loaded
    (weights and BN buffers); its fine-tuned twin's changes. Both arms ask for BN in train mode
    (norm_eval=False): the freeze must override it."""
    init_ckpt = _initial_checkpoint(tmp_path)
    config = _frozen_tiny_config(tmp_path) if frozen else TINY_FASTER_RCNN
    work_dir = tmp_path / 'work'
    proc = run_tool(['tools/train.py', config, '--work-dir', str(work_dir), '--cfg-options',
                     *tiny_coco_options, f'load_from={init_ckpt}', 'train_cfg.val_interval=10',
                     'model.backbone.norm_eval=False'])
    initial = torch.load(init_ckpt, map_location='cpu')['state_dict']
    final = torch.load(str(work_dir / 'epoch_2.pth'), map_location='cpu',
                       weights_only=False)['state_dict']
    backbone = _backbone(initial)
    assert backbone and set(backbone) <= set(final)
    changed = [key for key in backbone if not torch.equal(backbone[key], final[key])]
    neck_changed = [key for key in initial
                    if key.startswith('neck.') and not torch.equal(initial[key], final[key])]
    assert neck_changed, 'the neck should train in both arms'
    if frozen:
        assert changed == []
        assert 'Frozen modules backbone unchanged before saving the checkpoint' in (
            proc.stdout + proc.stderr)
    else:
        assert any(key.endswith('.weight') and 'conv' in key for key in changed)
        assert any(key.endswith('.running_mean') for key in changed)
        assert any('.bn' in key and key.endswith('.bias') for key in changed)


@pytest.mark.parametrize('tensor', ['backbone.layer1.0.conv1.weight',
                                    'backbone.layer2.0.bn1.running_mean'])
def test_check_stops_run_whose_backbone_changed(tmp_path, tiny_coco_options, tensor):
    config = _frozen_tiny_config(
        tmp_path, f'custom_hooks = [dict(type="PerturbTensorHook", tensor={tensor!r})]\n'
        'frozen = dict(allow_uninitialized=True)\n')
    runner = _runner(config, tmp_path, tiny_coco_options)
    with pytest.raises(FrozenBackboneError, match=rf'{tensor}.*changed before saving'):
        runner.train()
    assert not (tmp_path / 'work' / 'epoch_1.pth').exists()


def test_check_refuses_uninitialised_backbone(tmp_path, tiny_coco_options):
    runner = _runner(_frozen_tiny_config(tmp_path), tmp_path, tiny_coco_options)
    with pytest.raises(FrozenBackboneError, match=r"'backbone' was not loaded from a checkpoint"):
        runner.train()


def test_check_allows_uninitialised_when_told(tmp_path, tiny_coco_options):
    config = _frozen_tiny_config(tmp_path, 'frozen = dict(allow_uninitialized=True)\n')
    _runner(config, tmp_path, tiny_coco_options).train()
    assert (tmp_path / 'work' / 'epoch_1.pth').exists()


def test_check_refuses_checkpoint_missing_backbone_keys(tmp_path, tiny_coco_options):
    ckpt = _initial_checkpoint(tmp_path, drop_prefix='backbone.layer4.')
    runner = _runner(_frozen_tiny_config(tmp_path), tmp_path, tiny_coco_options,
                     load_from=ckpt)
    with pytest.raises(FrozenBackboneError, match=r'not loaded.*backbone\.layer4\.'):
        runner.train()


@pytest.mark.parametrize('complete', [True, False], ids=['complete', 'missing-layer4'])
def test_check_pretrained_init_cfg(tmp_path, tiny_coco_options, complete):
    """A backbone ``init_cfg`` of type Pretrained counts as loaded, unless keys are missing."""
    ckpt = _initial_checkpoint(tmp_path, strip='backbone.',
                               drop_prefix=None if complete else 'backbone.layer4.')
    runner = _runner(_frozen_tiny_config(tmp_path), tmp_path, tiny_coco_options, **{
        'model.backbone.init_cfg': dict(_delete_=True, type='Pretrained', checkpoint=ckpt)})
    if complete:
        runner.train()
        final = torch.load(str(tmp_path / 'work' / 'epoch_1.pth'), map_location='cpu',
                           weights_only=False)['state_dict']
        loaded = torch.load(ckpt, map_location='cpu')['state_dict']
        assert all(torch.equal(value, final[f'backbone.{key}']) for key, value in loaded.items())
    else:
        with pytest.raises(FrozenBackboneError, match=r'backbone\.layer4\.0\.conv1\.weight'):
            runner.train()
