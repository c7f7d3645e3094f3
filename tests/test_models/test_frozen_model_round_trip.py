"""A frozen model is an ordinary model: ``pickle``, ``copy.deepcopy`` (MMEngine's EMA copies the
model) and ``torch.save``/``torch.load`` of the whole model give the same model, frozen still,
and ``print(model)`` says which modules are frozen.

The models are built by the registry from frozen configs: the tiny Faster R-CNN frozen by
mmdet's own ResNet options, by ``FrozenModule``, by ``FrozenModule(fast=True)``, and the
shipped timm ConvNeXt config (with the smallest ConvNeXt, no pretrained weights).
"""
import copy
import io
import pickle
from typing import Callable, Dict, List, Optional

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import EMAHook
from mmengine.registry import init_default_scope
from torch import fx, nn

import mmfrozen  # noqa: F401  registers FrozenModule and the runner
from mmdet.registry import MODELS, RUNNERS
from mmfrozen.models.fast_frozen_trunk import fast_trunk_of
from mmfrozen.models.freeze import freeze_module, is_frozen, unfrozen_parts
from mmfrozen.shipped_configs import config_path
from mmfrozen.testing import TINY_FASTER_RCNN

FRAGMENT = config_path('_base_/frozen-backbone.py')
TIMM_FROZEN = config_path('classifiers/faster-rcnn_convnext-t-timm-frozen_fpn_1x_coco.py')
#: The model part of each frozen config, after ``_base_ = [tiny detector, frozen fragment]``.
RESNET_FREEZES = {
    'resnet-own': 'model = dict(backbone=dict(frozen_stages=4, norm_eval=True))\n',
    'resnet-FrozenModule': ("model = dict(backbone=dict(_delete_=True, type='FrozenModule', "
                            'module=_base_.model.backbone))\n'),
    'resnet-fast': ("model = dict(backbone=dict(_delete_=True, type='FrozenModule', "
                    'module=_base_.model.backbone, fast=True))\n'),
}
#: The line ``print(model)`` shows under the frozen backbone's first line (None: mmdet's own
#: freeze, which mmfrozen does not see).
MARKERS = {'resnet-own': None, 'resnet-FrozenModule': 'frozen',
           'resnet-fast': 'frozen, fast(fold_bn, channels_last)', 'timm': 'frozen'}
#: BatchNorms of the tiny ResNet-18: the stem, two per basic block (8), three shortcuts.
RESNET18_NORMS = 1 + 2 * 8 + 3


def _pickle(model: nn.Module) -> nn.Module:
    return pickle.loads(pickle.dumps(model))


def _torch_save_load(model: nn.Module) -> nn.Module:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


ROUND_TRIPS: Dict[str, Callable[[nn.Module], nn.Module]] = {
    'pickle': _pickle, 'deepcopy': copy.deepcopy, 'torch.save': _torch_save_load}


def _randomise_norms(model: nn.Module) -> None:
    """Statistics and affine parameters of a trained network, so that a norm layer in the wrong
    mode, or folded wrongly, changes the outputs."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm)):
                tensors = [(module.weight, 0.5, 1.5), (module.bias, -0.2, 0.2)]
                if getattr(module, 'running_mean', None) is not None:
                    tensors += [(module.running_mean, -0.2, 0.2), (module.running_var, 0.5, 1.5)]
                for tensor, low, high in tensors:
                    tensor.copy_(torch.empty(tensor.shape).uniform_(low, high,
                                                                    generator=generator))


def _timm_model_cfg() -> Config:
    """The shipped timm ConvNeXt frozen config's model: ConvNeXt-Atto, no Pretrained init."""
    cfg = Config.fromfile(TIMM_FROZEN).model
    cfg.backbone.module.update(model_name='convnext_atto', init_cfg=None)
    cfg.neck.in_channels = [40, 80, 160, 320]
    return cfg


@pytest.fixture(scope='module')
def frozen_models(tmp_path_factory) -> Dict[str, nn.Module]:
    """Each frozen detector, built by the registry from its config; the ResNet ones with the
    same weights."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp('configs')
    models = {}
    for kind, freeze in RESNET_FREEZES.items():
        path = folder / f'faster-rcnn_r18-tiny-{kind}_fpn_coco.py'
        path.write_text(f'_base_ = [{TINY_FASTER_RCNN!r}, {FRAGMENT!r}]\n{freeze}')
        models[kind] = MODELS.build(Config.fromfile(str(path)).model)
    models['timm'] = MODELS.build(_timm_model_cfg())
    for kind in ('resnet-own', 'timm'):
        _randomise_norms(models[kind])
    for kind in ('resnet-FrozenModule', 'resnet-fast'):
        models[kind].load_state_dict(models['resnet-own'].state_dict())
    return models


@pytest.fixture(scope='module')
def expected_features(frozen_models) -> Dict[str, List[torch.Tensor]]:
    """Each frozen detector's features in eval mode, before any round trip."""
    with torch.no_grad():
        return {kind: _features(model, train=False) for kind, model in frozen_models.items()}


def _images() -> torch.Tensor:
    return torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _features(model: nn.Module, train: bool) -> List[torch.Tensor]:
    """The neck's outputs; the model in train mode (as a training loop has it) or eval mode."""
    model.train(train)
    return list(model.extract_feat(_images()))


def _marker_lines(module: nn.Module) -> List[str]:
    return [line.strip() for line in repr(module).splitlines()
            if line.strip().startswith('frozen')]


def _assert_frozen_after_train(model: nn.Module, expected: List[torch.Tensor],
                               backward: bool = True) -> None:
    """After ``model.train()``: the backbone has no trainable parameter and no norm layer in
    train mode, computes the expected features, and gets no gradient from them."""
    assert unfrozen_parts(model, ['backbone']) == ''  # puts the model in train mode
    assert model.training and model.neck.training
    features = _features(model, train=True)
    assert all(torch.equal(a, e) for a, e in zip(features, expected, strict=True))
    if backward:
        sum(feature.square().mean() for feature in features).backward()
        assert all(param.grad is None for param in model.backbone.parameters())
        assert all(param.grad is not None for param in model.neck.parameters())


@pytest.mark.parametrize('trip', list(ROUND_TRIPS))
@pytest.mark.parametrize('kind', list(MARKERS))
def test_frozen_model_round_trip(frozen_models, expected_features, kind, trip):
    """The copy: the same state dict in its own tensors, the same module classes, the same
    features, the freeze intact after ``.train()``, and ``print`` says which module is frozen;
    a later SyncBatchNorm conversion of the backbone's BatchNorms ends in eval mode too."""
    model, expected = frozen_models[kind], expected_features[kind]
    copied = ROUND_TRIPS[trip](model)

    assert copied is not model
    state, copied_state = model.state_dict(), copied.state_dict()
    assert list(copied_state) == list(state)
    for key, value in state.items():
        assert torch.equal(copied_state[key], value), key
        assert copied_state[key].data_ptr() != value.data_ptr(), key
    for (name, module), (copied_name, copied_module) in zip(
            model.named_modules(), copied.named_modules(), strict=True):
        assert copied_name == name and type(copied_module).__name__ == type(module).__name__
        assert isinstance(copied_module, type(module)) and isinstance(module,
                                                                      type(copied_module))
        assert is_frozen(copied_module) == is_frozen(module)
    assert all(is_frozen(module) for module in copied.backbone.modules()) == (
        kind != 'resnet-own')

    _assert_frozen_after_train(copied, expected)
    marker: Optional[str] = MARKERS[kind]
    assert _marker_lines(copied) == ([marker] if marker else [])
    if marker:
        assert repr(copied.backbone).splitlines()[1].strip() == marker  # on the root

    if kind.startswith('resnet'):
        copied.backbone = nn.SyncBatchNorm.convert_sync_batchnorm(copied.backbone)
        _assert_frozen_after_train(copied, expected, backward=False)
        sync = [m for m in copied.backbone.modules() if isinstance(m, nn.SyncBatchNorm)]
        assert len(sync) == RESNET18_NORMS and not any(m.training for m in sync)


@pytest.mark.parametrize('trip', list(ROUND_TRIPS))
def test_fast_trunk_round_trip(frozen_models, expected_features, trip):
    """A fast backbone's copy has its own fast trunk: built at its first forward, BatchNorms
    folded, its features those of the plain frozen backbone, rebuilt when a load changes the
    weights; the original's trunk is neither shared nor rebuilt."""
    fast = frozen_models['resnet-fast']
    expected = expected_features['resnet-FrozenModule']  # plain frozen: the same in train mode
    original_trunk = fast_trunk_of(fast.backbone)
    builds = original_trunk.builds
    copied = ROUND_TRIPS[trip](fast)
    trunk = fast_trunk_of(copied.backbone)
    assert trunk is not None and trunk is not original_trunk
    assert trunk.options == original_trunk.options and trunk.builds == 0

    features = _features(copied, train=True)
    assert trunk.builds == 1 and trunk.folded_norms == RESNET18_NORMS
    assert isinstance(trunk._trunk, fx.GraphModule)
    assert not any(feature.requires_grad for feature in copied.backbone(_images()))
    for actual, wanted in zip(features, expected, strict=True):
        torch.testing.assert_close(actual, wanted, rtol=1e-4,
                                   atol=1e-5 * float(wanted.abs().max()))
    state = {key: value * 1.01 if value.is_floating_point() else value
             for key, value in copied.state_dict().items()}
    copied.load_state_dict(state)
    copied.backbone(_images())
    assert trunk.builds == 2 and original_trunk.builds == builds


def test_frozen_graph_module_round_trip():
    """A class with its own ``__reduce__`` and ``__deepcopy__`` (torch.fx's GraphModule) keeps
    its freeze through both."""
    torch.manual_seed(0)
    traced = fx.symbolic_trace(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    frozen = freeze_module(traced)
    images = torch.rand(2, 3, 8, 8)
    expected = frozen(images)
    for trip in ROUND_TRIPS.values():
        copied = trip(frozen)
        copied.train()
        assert is_frozen(copied) and isinstance(copied, fx.GraphModule)
        assert not any(module.training for module in copied.modules())
        assert not any(param.requires_grad for param in copied.parameters())
        assert torch.equal(copied(images), expected)
        assert _marker_lines(copied) == ['frozen']
        assert torch.equal(frozen(images), expected)  # the original is left as it was


def test_importing_mmfrozen_changes_no_torch_class():
    """The freeze is in the frozen modules' own classes, nowhere else."""
    for cls in (nn.Module, nn.Conv2d, nn.BatchNorm2d, nn.Sequential):
        assert '__reduce_ex__' not in vars(cls) and '__deepcopy__' not in vars(cls)
    assert nn.Conv2d.train is nn.Module.train
    assert nn.Conv2d.__mro__ == (nn.Conv2d, nn.modules.conv._ConvNd, nn.Module, object)


@pytest.mark.runs  # ~4 s on an idle machine; the deepcopy round trips above are the fast check
def test_ema_hook_copies_a_frozen_fast_model(tmp_path, tiny_coco_options):
    """MMEngine's EMAHook deep-copies the model: two training iterations of the tiny detector
    with a fast frozen backbone, the freeze check on; the EMA copy is frozen, has its own fast
    trunk, keeps the frozen backbone's tensors and averages the neck's."""
    path = tmp_path / 'faster-rcnn_r18-tiny-frozen-ema_fpn_coco.py'
    path.write_text(f'_base_ = [{TINY_FASTER_RCNN!r}, {FRAGMENT!r}]\n'
                    f'{RESNET_FREEZES["resnet-fast"]}'
                    "custom_hooks = [dict(type='EMAHook', momentum=0.5)]\n")
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict(dict(option.split('=', 1) for option in tiny_coco_options))
    cfg.merge_from_dict({'train_dataloader.dataset.indices': 8, 'train_cfg.max_epochs': 1,
                         'train_cfg.val_begin': 100, 'frozen.allow_uninitialized': True})
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = tmp_path.name
    runner = RUNNERS.build(cfg)
    runner.train()
    assert runner.iter == 2
    ema_hook = next(hook for hook in runner.hooks if isinstance(hook, EMAHook))
    ema, model = ema_hook.ema_model.module, runner.model
    assert all(is_frozen(module) for module in ema.backbone.modules())
    assert unfrozen_parts(ema, ['backbone']) == ''
    assert fast_trunk_of(ema.backbone) is not fast_trunk_of(model.backbone)
    model_state, ema_state = model.state_dict(), ema.state_dict()
    backbone = [key for key in model_state if key.startswith('backbone.')]
    assert backbone and all(torch.equal(ema_state[key], model_state[key]) for key in backbone)
    assert any(not torch.equal(ema_state[key], value) for key, value in model_state.items()
               if key.startswith('neck.'))
