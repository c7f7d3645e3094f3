"""The fast frozen trunk (``FrozenModule`` with ``fast``): the same outputs as the plain frozen
trunk, the same state dict, and checkpoints that fast and plain frozen runs exchange.

Everything runs the real code path: mmdet's detectors and backbones built by the registry,
MMEngine's runner on the tiny COCO set.
"""
import copy
from typing import Dict

import pytest
import torch
from mmfrozen.testing import TINY_FASTER_RCNN
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

from mmfrozen.shipped_configs import config_path
import mmfrozen  # noqa: F401
from mmdet.registry import MODELS, RUNNERS
from mmfrozen.cost import synthetic_batch
from mmfrozen.models.fast_frozen_trunk import fast_trunk_of, make_fast, native_bf16
from mmfrozen.models.class_swap import original_class
from mmfrozen.models.freeze import (freeze_module, mode_dependent_layers_in_train_mode,
                                    trainable_parameters, unfrozen_parts)

FRAGMENT = config_path('_base_/frozen-backbone.py')
PLAIN_FREEZE = 'model = dict(backbone=dict(frozen_stages=4, norm_eval=True))\n'
# The documented switch: a frozen ResNet config's backbone, built by FrozenModule with `fast`.
FAST_SWITCH = ("model = dict(backbone=dict(_delete_=True, type='FrozenModule', "
               'module={{_base_.model.backbone}}, fast=True))\n')


def _randomise_norms(model: nn.Module, seed: int = 0) -> None:
    """BN statistics and affine parameters of a trained network, not a fresh layer's 1 and 0:
    folding them must matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                for tensor, low, high in ((module.weight, 0.5, 1.5), (module.bias, -0.2, 0.2),
                                          (module.running_mean, -0.2, 0.2),
                                          (module.running_var, 0.5, 1.5)):
                    tensor.copy_(torch.empty(tensor.shape).uniform_(low, high,
                                                                    generator=generator))


def _tiny_models(fast=True):
    """The tiny detector twice, frozen plainly and fast (``fast`` options), same weights."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(TINY_FASTER_RCNN).model
    cfg.backbone.update(frozen_stages=4, norm_eval=True)
    plain = MODELS.build(copy.deepcopy(cfg))
    cfg.backbone = dict(type='FrozenModule', module=cfg.backbone, fast=fast)
    fast = MODELS.build(cfg)
    torch.manual_seed(0)
    plain.init_weights()
    _randomise_norms(plain)
    fast.load_state_dict(plain.state_dict())
    return plain, fast


def _assert_close_outputs(actual, expected) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape and a.dtype == e.dtype and a.is_contiguous()
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5 * float(e.abs().max()))


def test_fast_trunk_equals_plain_frozen_trunk():
    plain, fast = _tiny_models()
    plain.train()
    fast.train()
    images = torch.rand(2, 3, 96, 128) * 255
    expected = plain.backbone(images)
    assert not any(t.requires_grad for t in expected)
    actual = fast.backbone(images)
    _assert_close_outputs(actual, expected)
    trunk = fast_trunk_of(fast.backbone)
    # ResNet-18: the stem, two per basic block (8 blocks), three downsample shortcuts
    assert trunk.folded_norms == 1 + 2 * 8 + 3 == sum(
        isinstance(m, nn.BatchNorm2d) for m in plain.backbone.modules())
    assert trunk.builds == 1
    fast.backbone(images)
    assert trunk.builds == 1  # built once, reused while the weights stay


def test_bf16_trunk_on_this_cpu():
    """bf16 runs where it is native (AMX or AVX512-BF16: bf16 features, ~1e-2 off float32,
    handed on as float32); on a CPU without either the trunk stays exactly float32."""
    plain, fast = _tiny_models(fast=dict(bf16=True))
    images = torch.rand(2, 3, 96, 128) * 255
    expected = plain.eval().backbone(images)
    actual = fast.eval().backbone(images)
    assert [a.dtype for a in actual] == [torch.float32] * len(expected)
    if native_bf16('cpu'):
        for a, e in zip(actual, expected):
            error = float((a - e).abs().max() / e.abs().max())
            assert 1e-4 < error < 5e-2  # rounded to bf16, and only that
    else:
        _assert_close_outputs(actual, expected)


def test_fast_detector_features_and_rpn_loss_equal_plain_frozen():
    """Through the detector in train mode: the neck's features, the RPN losses and the neck's
    gradients from them agree. (The RoI head's losses are left out: its sampler draws among
    proposals, and a 1e-6 change of a box may swap one of 512 samples.)"""
    plain, fast = _tiny_models()
    batch = synthetic_batch(2, (96, 128), num_classes=3)
    results = []
    for model in (plain, fast):
        model.train()
        data = model.data_preprocessor(copy.deepcopy(batch), True)
        torch.manual_seed(1)  # the RPN samples its anchors at random
        features = model.extract_feat(data['inputs'])
        rpn_losses = model.rpn_head.loss(features, copy.deepcopy(data['data_samples']))
        loss, log_vars = model.parse_losses(rpn_losses)
        loss.backward()
        results.append((features, {key: float(value) for key, value in log_vars.items()},
                        model.neck.lateral_convs[0].conv.weight.grad))
    (plain_features, plain_losses, plain_grad), (fast_features, fast_losses, fast_grad) = results
    _assert_close_outputs([f.detach() for f in fast_features],
                          [f.detach() for f in plain_features])
    assert fast_losses == pytest.approx(plain_losses, rel=1e-5, abs=1e-7)
    torch.testing.assert_close(fast_grad, plain_grad, rtol=1e-3,
                               atol=1e-4 * float(plain_grad.abs().max()))


def test_fast_trunk_keeps_state_dict_and_passes_the_freeze_checks():
    plain, fast = _tiny_models()
    fast.backbone(torch.rand(1, 3, 64, 64))  # builds the folded copy
    plain_state, fast_state = plain.state_dict(), fast.state_dict()
    assert list(fast_state) == list(plain_state)
    assert all(torch.equal(fast_state[key], value) for key, value in plain_state.items())
    assert original_class(fast.backbone) is type(plain.backbone)
    assert isinstance(fast.backbone, type(plain.backbone))
    fast.train()
    assert trainable_parameters(fast.backbone) == []
    assert mode_dependent_layers_in_train_mode(fast.backbone) == []
    assert unfrozen_parts(fast, ['backbone']) == ''


def test_fast_trunk_follows_new_weights():
    """load_state_dict, an in-place edit and a dtype change each rebuild the folded copy."""
    plain, fast = _tiny_models()
    images = torch.rand(1, 3, 64, 96) * 255
    fast.backbone(images)
    trunk = fast_trunk_of(fast.backbone)
    _randomise_norms(plain, seed=1)
    fast.load_state_dict(plain.state_dict())
    _assert_close_outputs(fast.backbone(images), plain.backbone(images))
    assert trunk.builds == 2
    with torch.no_grad():
        plain.backbone.layer2[0].conv1.weight.mul_(2)
        fast.backbone.layer2[0].conv1.weight.mul_(2)
    _assert_close_outputs(fast.backbone(images), plain.backbone(images))
    assert trunk.builds == 3
    plain.double()
    fast.double()
    _assert_close_outputs(fast.backbone(images.double()), plain.backbone(images.double()))
    assert trunk.builds == 4


@pytest.mark.parametrize('name,backbone,folded', [
    ('ResNeXt', dict(type='ResNeXt', depth=50, groups=4, base_width=4, base_channels=16), 53),
    ('RegNet', dict(type='RegNet', arch='regnetx_400mf'), 1 + 22 * 3 + 4),
    ('Res2Net', dict(type='Res2Net', depth=50, scales=2, base_width=8, base_channels=16), None),
    ('Swin', dict(type='SwinTransformer', embed_dims=32, depths=(1, 1, 1, 1),
                  num_heads=(1, 2, 4, 8), window_size=4), 0),
])
def test_fast_trunk_of_other_backbones(name, backbone, folded):
    """Any mmdet backbone: the same outputs; BatchNorms folded where a convolution feeds them
    (Res2Net's deep stem and split convolutions included; Swin has none)."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    plain = MODELS.build(dict(type='FrozenModule', module=backbone))
    _randomise_norms(plain)
    fast = MODELS.build(dict(type='FrozenModule', module=backbone, fast=True))
    fast.load_state_dict(plain.state_dict())
    images = torch.rand(2, 3, 64, 64)
    _assert_close_outputs(fast(images), plain(images))
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    count = fast_trunk_of(fast).folded_norms
    assert count == (norms if folded is None else folded) and count <= norms


def test_fast_option_errors():
    init_default_scope('mmdet')
    backbone = Config.fromfile(TINY_FASTER_RCNN).model.backbone
    with pytest.raises(KeyError, match=r'fast\.fold_nb is not a known option'):
        MODELS.build(dict(type='FrozenModule', module=backbone, fast=dict(fold_nb=True)))
    with pytest.raises(TypeError, match=r'fast\.compile must be True or False'):
        MODELS.build(dict(type='FrozenModule', module=backbone, fast=dict(compile='yes')))
    head = Config.fromfile(TINY_FASTER_RCNN).model.roi_head.bbox_head
    with pytest.raises(ValueError, match=r'fast needs a wholly frozen module.*fc_cls'):
        MODELS.build(dict(type='FrozenModule', module=head, trainable=['fc_cls'], fast=True))


def _options_dict(options) -> Dict[str, str]:
    return dict(option.split('=', 1) for option in options)


def _write_config(tmp_path, name: str, fast: bool) -> str:
    path = tmp_path / f'{name}.py'
    path.write_text(f'_base_ = [{TINY_FASTER_RCNN!r}, {FRAGMENT!r}]\n{PLAIN_FREEZE}')
    if not fast:
        return str(path)
    fast_path = tmp_path / f'{name}-fast.py'
    fast_path.write_text(f'_base_ = {str(path)!r}\n{FAST_SWITCH}')
    return str(fast_path)


@pytest.fixture
def frozen_configs(tmp_path) -> Dict[bool, str]:
    """The tiny detector's frozen config (False) and its fast twin (True)."""
    return {fast: _write_config(tmp_path, 'faster-rcnn_r18-tiny-frozen_fpn_coco', fast)
            for fast in (False, True)}


def _train(config: str, work_dir, tiny_coco_options, **options):
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(_options_dict(tiny_coco_options))
    cfg.merge_from_dict({'train_dataloader.dataset.indices': 4, 'train_cfg.val_begin': 100,
                         **options})
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = work_dir.name
    runner = RUNNERS.build(cfg)
    runner.train()
    return runner


def _init_checkpoint(tmp_path) -> str:
    plain, _ = _tiny_models()
    path = str(tmp_path / 'init.pth')
    torch.save(dict(state_dict=plain.state_dict(), meta=dict()), path)
    return path


@pytest.mark.runs
def test_checkpoints_pass_between_fast_and_plain_runs(tmp_path, tiny_coco_options,
                                                      frozen_configs):
    """A fast run from a checkpoint, resumed by a plain frozen run, resumed by a fast one, the
    freeze check on throughout: each accepts the other's checkpoint, the backbone ends as
    loaded, and the last checkpoint loads strictly into a model of either kind."""
    init = _init_checkpoint(tmp_path)
    work_dir = tmp_path / 'work'
    load_from = init
    for epoch, fast in enumerate((True, False, True), start=1):
        runner = _train(frozen_configs[fast], work_dir, tiny_coco_options, load_from=load_from,
                        resume=epoch > 1, **{'train_cfg.max_epochs': epoch})
        assert runner.epoch == epoch and runner.iter == epoch
        assert (fast_trunk_of(runner.model.backbone) is not None) == fast
        load_from = str(work_dir / f'epoch_{epoch}.pth')
    final = torch.load(load_from, map_location='cpu', weights_only=False)['state_dict']
    initial = torch.load(init, map_location='cpu')['state_dict']
    assert list(final) == list(initial)
    assert all(torch.equal(final[key], value) for key, value in initial.items()
               if key.startswith('backbone.'))
    assert any(not torch.equal(final[key], value) for key, value in initial.items()
               if key.startswith('neck.'))
    for fast in (False, True):
        model = MODELS.build(Config.fromfile(frozen_configs[fast]).model)
        model.load_state_dict(final, strict=True)


def test_compiled_fast_trunk_equals_plain():
    """fast.compile: torch.compile with inductor's freezing (weights as constants), on a small
    conv-BN-ReLU stack (compiling a whole ResNet takes minutes on a CPU)."""
    torch.manual_seed(0)
    plain = freeze_module(nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2), nn.BatchNorm2d(8)))
    _randomise_norms(plain)
    fast = make_fast(copy.deepcopy(plain), dict(compile=True))
    images = torch.rand(2, 3, 32, 32)
    _assert_close_outputs([fast(images)], [plain(images)])
    trunk = fast_trunk_of(fast)
    assert trunk.folded_norms == 2 and isinstance(trunk._trunk, torch._dynamo.OptimizedModule)
