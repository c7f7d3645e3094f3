"""Classifier weights load for real into the frozen trunks of configs/classifiers/.

Nothing can be downloaded here, so each test writes a classifier checkpoint in its library's own
format from a seeded model (a timm ``state_dict`` as ``.safetensors``, an mmpretrain
``ImageClassifier`` checkpoint, torchvision's ResNet-50 ``state_dict``) and points the frozen
config's own ``init_cfg`` at it, as a user with the real file does. The frozen trunk then holds
the file's tensors, BN statistics included; a file that lacks some of the trunk's tensors is
refused by the frozen-backbone check before the first iteration, naming them.
"""
import copy
import os.path as osp
from typing import Callable, Dict

import pytest
import torch
from mmfrozen.testing import TINY_FASTER_RCNN
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

from mmfrozen.shipped_configs import config_path, configs_dir
import mmfrozen  # noqa: F401  (first: its compat fix lets torchvision, and so timm, import)
import mmpretrain.models  # noqa: F401  registers mmpretrain's backbones
from mmdet.registry import MODELS, RUNNERS
from mmfrozen.engine.hooks import FrozenBackboneError
from mmfrozen.models.freeze import mode_dependent_layers_in_train_mode, trainable_parameters
from mmfrozen.models.timm_weights import TIMM_BACKBONE_PREFIX, feature_key

CONFIGS = osp.join(configs_dir(), 'classifiers')
FRAGMENT = config_path('_base_/frozen-backbone.py')


def _noisy(state: Dict[str, torch.Tensor], seed: int) -> Dict[str, torch.Tensor]:
    """A trained classifier's tensors stand-in: the seeded model's, plus noise (so that BN
    statistics and LayerNorm affine parameters differ from any initialisation)."""
    generator = torch.Generator().manual_seed(seed)
    return {key: (value + torch.rand(value.shape, generator=generator)).contiguous()
            if value.is_floating_point() else value for key, value in state.items()}


def _mmpretrain_checkpoint(backbone: dict, channels: int) -> Callable[[str], Dict]:
    """Writer of an mmpretrain ImageClassifier checkpoint (``meta`` and ``state_dict``)."""

    def write(path: str) -> Dict[str, torch.Tensor]:
        init_default_scope('mmpretrain')
        torch.manual_seed(0)
        classifier = MODELS.build(dict(
            type='mmpretrain.ImageClassifier', backbone=backbone,
            neck=dict(type='mmpretrain.GlobalAveragePooling'),
            head=dict(type='mmpretrain.LinearClsHead', num_classes=1000,
                      in_channels=channels)))
        state = _noisy(classifier.state_dict(), seed=1)
        torch.save(dict(meta=dict(mmpretrain_version='1.2.0'), state_dict=state), path)
        init_default_scope('mmdet')
        return state

    return write


def _timm_file(path: str) -> Dict[str, torch.Tensor]:
    """timm's ConvNeXt-T classifier ``state_dict`` as timm's hub publishes it (safetensors)."""
    import timm
    from safetensors.torch import save_file
    torch.manual_seed(0)
    state = _noisy(timm.create_model('convnext_tiny').state_dict(), seed=2)
    save_file(state, path)
    return state


def _torchvision_file(path: str) -> Dict[str, torch.Tensor]:
    """torchvision's ResNet-50 ``state_dict``, as download.pytorch.org serves it."""
    import torchvision
    torch.manual_seed(0)
    state = _noisy(torchvision.models.resnet50().state_dict(), seed=3)
    torch.save(state, path)
    return state


# token in the config name -> (file name, writer, checkpoint string for init_cfg, name of a
# trunk tensor in the file -> name in the backbone)
FORMATS = {
    'convnext-t-timm': ('convnext_tiny.safetensors', _timm_file, 'timm://{}',
                        lambda key: TIMM_BACKBONE_PREFIX + feature_key(key)),
    'convnext-t-mmpt': ('convnext-tiny.pth', _mmpretrain_checkpoint(
        dict(type='mmpretrain.ConvNeXt', arch='tiny'), 768), '{}',
        lambda key: key[len('backbone.'):] if key.startswith('backbone.') else None),
    'swin-t-mmpt': ('swin-tiny.pth', _mmpretrain_checkpoint(
        dict(type='mmpretrain.SwinTransformer', arch='tiny'), 768), '{}',
        lambda key: key[len('backbone.'):] if key.startswith('backbone.') else None),
    'effb3': ('efficientnet-b3.pth', _mmpretrain_checkpoint(
        dict(type='mmpretrain.EfficientNet', arch='b3'), 1536), '{}',
        lambda key: key[len('backbone.'):] if key.startswith('backbone.') else None),
    'r50-tnr': ('resnet50-11ad3fa6.pth', _torchvision_file, '{}', lambda key: key),
}
# Tensors of the trunk that no classifier checkpoint has: the output norms that mmpretrain's
# ConvNeXt and Swin add for stages 0-2 (the classifier has only the final norm3).
OUTPUT_NORMS = {f'norm{i}.{p}' for i in range(3) for p in ('weight', 'bias')}
NOT_IN_CLASSIFIER = {'convnext-t-mmpt': OUTPUT_NORMS, 'swin-t-mmpt': OUTPUT_NORMS}
# a part of each trunk that the incomplete file lacks (its name in the file)
DROPPED = {'convnext-t-timm': 'stages.3.', 'convnext-t-mmpt': 'backbone.stages.3.',
           'swin-t-mmpt': 'backbone.stages.3.', 'effb3': 'backbone.layers.5.',
           'r50-tnr': 'layer4.'}


def _frozen_config(token: str) -> Config:
    return Config.fromfile(osp.join(CONFIGS, f'faster-rcnn_{token}-frozen_fpn_1x_coco.py'))


def _point_at(backbone: dict, checkpoint: str) -> dict:
    """The frozen config's backbone with its init_cfg's checkpoint set, as --cfg-options does."""
    backbone = copy.deepcopy(backbone)
    module = backbone.module if backbone.type == 'FrozenModule' else backbone
    assert module.init_cfg.type == 'Pretrained'
    module.init_cfg.checkpoint = checkpoint
    return backbone


def _write(token: str, tmp_path, drop: str = None) -> tuple:
    name, write, scheme, _ = FORMATS[token]
    path = str(tmp_path / name)
    state = write(path)
    if drop:
        state = {key: value for key, value in state.items() if not key.startswith(drop)}
        path = str(tmp_path / f'incomplete-{name}')
        if name.endswith('.safetensors'):
            from safetensors.torch import save_file
            save_file(state, path)
        elif token.endswith('-mmpt') or token == 'effb3':
            torch.save(dict(meta=dict(), state_dict=state), path)
        else:
            torch.save(state, path)
    return scheme.format(path), state


@pytest.mark.parametrize('token', list(FORMATS))
def test_frozen_trunk_holds_the_classifier_file(token, tmp_path):
    """``MODELS.build`` + ``init_weights`` of the frozen config, its init_cfg at the file: every
    tensor of the trunk is the file's, and the trunk is frozen."""
    checkpoint, state = _write(token, tmp_path)
    cfg = _frozen_config(token)
    cfg.model.backbone = _point_at(cfg.model.backbone, checkpoint)
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    model.init_weights()
    trunk = model.backbone.state_dict()
    to_backbone = FORMATS[token][3]
    loaded = {to_backbone(key): value for key, value in state.items()}
    extra = NOT_IN_CLASSIFIER.get(token, set())
    assert set(trunk) - set(loaded) == extra
    assert all(torch.equal(trunk[key], loaded[key]) for key in trunk if key not in extra)
    # frozen at their identity affine
    assert all(torch.equal(trunk[key], torch.full_like(trunk[key], key.endswith('.weight')))
               for key in extra)
    model.train()
    assert trainable_parameters(model.backbone) == []
    assert mode_dependent_layers_in_train_mode(model.backbone) == []


def _tiny_run(tmp_path, tiny_coco_options, classifier_cfg: Config, checkpoint: str):
    """A runner for the tiny Faster R-CNN made frozen, with the frozen trunk of
    ``classifier_cfg`` (its init_cfg at ``checkpoint``) and the modules it checks."""
    cfg = Config.fromfile(TINY_FASTER_RCNN)
    cfg.merge_from_dict(Config.fromfile(FRAGMENT).to_dict())
    cfg.merge_from_dict(dict(option.split('=', 1) for option in tiny_coco_options))
    cfg.model.backbone = _point_at(classifier_cfg.model.backbone, checkpoint)
    cfg.model.neck.in_channels = classifier_cfg.model.neck.in_channels
    cfg.frozen = classifier_cfg.frozen
    cfg.merge_from_dict({'train_dataloader.dataset.indices': 4, 'train_cfg.max_epochs': 1,
                         'train_cfg.val_interval': 10, 'train_dataloader.batch_size': 2})
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = tmp_path.name
    return RUNNERS.build(cfg)


#: The refusal is the one check whatever the format (each format's loading is tested fast
#: above): one format fast, the others in the full suite.
REFUSAL_CASES = [token if token == 'convnext-t-timm'
                 else pytest.param(token, marks=pytest.mark.runs) for token in FORMATS]


@pytest.mark.parametrize('token', REFUSAL_CASES)
def test_check_refuses_a_file_missing_trunk_tensors(token, tmp_path, tiny_coco_options):
    checkpoint, _ = _write(token, tmp_path, drop=DROPPED[token])
    runner = _tiny_run(tmp_path, tiny_coco_options, _frozen_config(token), checkpoint)
    missing = FORMATS[token][3](DROPPED[token] + 'x')[:-1].replace('.', r'\.')
    with pytest.raises(FrozenBackboneError, match=rf'not loaded.*backbone\.{missing}'):
        runner.train()


@pytest.mark.runs
def test_timm_weights_train_frozen_through_the_check(tmp_path, tiny_coco_options):
    """The timm:// path counts as loaded for the check: a run trains, the trunk stays the file's."""
    checkpoint, state = _write('convnext-t-timm', tmp_path)
    runner = _tiny_run(tmp_path, tiny_coco_options, _frozen_config('convnext-t-timm'),
                       checkpoint)
    runner.train()
    final = torch.load(str(tmp_path / 'work' / 'epoch_1.pth'), map_location='cpu',
                       weights_only=False)['state_dict']
    trunk = {key[len('backbone.'):]: value for key, value in final.items()
             if key.startswith('backbone.')}
    assert trunk and all(
        torch.equal(value, trunk[TIMM_BACKBONE_PREFIX + feature_key(key)])
        for key, value in state.items() if not key.startswith('head.'))


def test_frozen_module_freezes_layernorm_and_grn():
    """A ConvNeXt V2 trunk (LayerNorm and GRN affine parameters) built by FrozenModule: a
    training step of a head on it leaves every tensor of it as it was."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    trunk = MODELS.build(dict(type='FrozenModule', module=dict(
        type='mmpretrain.ConvNeXt', arch=dict(depths=[1, 1, 1, 1], channels=[16, 32, 64, 128]),
        use_grn=True, layer_scale_init_value=0.0, drop_path_rate=0.5,
        out_indices=(3, ), gap_before_final_norm=False)))
    grn = [name for name, _ in trunk.named_parameters() if '.grn.' in name]
    norms = [name for name, module in trunk.named_modules() if 'Norm' in type(module).__name__]
    assert grn and norms
    head = nn.Conv2d(128, 4, 1)
    before = {key: value.clone() for key, value in trunk.state_dict().items()}
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1)
    trunk.train()
    head(trunk(torch.rand(2, 3, 64, 64))[-1]).square().mean().backward()
    optimizer.step()
    assert all(torch.equal(before[key], value) for key, value in trunk.state_dict().items())
    assert all(p.grad is None and not p.requires_grad for p in trunk.parameters())
