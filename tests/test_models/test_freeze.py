"""The freeze in the model: the FrozenModule builder keeps keys, trains what it is told to, and
holds through ``model.train()`` and training steps, for mmdet's backbones."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

import mmfrozen  # noqa: F401  registers FrozenModule
from mmdet.registry import MODELS
from mmfrozen.models.class_swap import original_class
from mmfrozen.models.freeze import is_frozen, trainable_parameters
from mmfrozen.testing import TINY_FASTER_RCNN


def _frozen_tiny_backbone_model() -> nn.Module:
    """The tiny detector with its backbone built by the FrozenModule builder."""
    init_default_scope('mmdet')
    cfg = Config.fromfile(TINY_FASTER_RCNN).model
    cfg.backbone = dict(type='FrozenModule', module=cfg.backbone)
    return MODELS.build(cfg)


def test_frozen_module_keeps_state_dict_keys():
    init_default_scope('mmdet')
    plain = MODELS.build(Config.fromfile(TINY_FASTER_RCNN).model)
    frozen = _frozen_tiny_backbone_model()
    # the class gains the freeze's mixin and keeps its name; isinstance holds
    assert original_class(frozen.backbone) is type(plain.backbone)
    assert isinstance(frozen.backbone, type(plain.backbone))
    assert {type(frozen.backbone).__name__, type(plain.backbone).__name__} == {'ResNet'}
    assert list(frozen.state_dict()) == list(plain.state_dict())
    assert is_frozen(frozen.backbone)


def test_frozen_module_trainable_parts():
    """trainable=[...] keeps those sub-modules training, and only those."""
    init_default_scope('mmdet')
    head_cfg = Config.fromfile(TINY_FASTER_RCNN).model.roi_head.bbox_head
    head = MODELS.build(dict(type='FrozenModule', module=head_cfg, trainable=['fc_cls']))
    assert trainable_parameters(head) == ['fc_cls.weight', 'fc_cls.bias']
    head.train()
    assert head.fc_cls.training and not head.shared_fcs.training
    with pytest.raises(KeyError, match=r"trainable names 'fc_clss'"):
        MODELS.build(dict(type='FrozenModule', module=head_cfg, trainable=['fc_clss']))


def test_freeze_survives_model_train():
    model = _frozen_tiny_backbone_model()
    for _ in range(2):
        model.train()
        assert not any(m.training for m in model.backbone.modules())
        assert all(m.training for m in model.neck.modules())
        assert model.training
    model.backbone.train(True)
    assert not any(m.training for m in model.backbone.modules())


BACKBONES = {
    'ResNeXt': dict(type='ResNeXt', depth=50, groups=4, base_width=4, base_channels=16,
                    out_indices=(3, )),
    'RegNet': dict(type='RegNet', arch='regnetx_400mf', out_indices=(3, )),
    'Res2Net': dict(type='Res2Net', depth=50, scales=2, base_width=8, base_channels=16,
                    out_indices=(3, )),
    'Swin': dict(type='SwinTransformer', embed_dims=32, depths=(1, 1, 1, 1),
                 num_heads=(1, 2, 4, 8), window_size=4, out_indices=(3, )),
}


class _BackboneWithHead(nn.Module):

    def __init__(self, backbone: dict) -> None:
        super().__init__()
        self.backbone = MODELS.build(dict(type='FrozenModule', module=backbone))
        self.head = nn.LazyConv2d(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x)[-1])


@pytest.mark.parametrize('name', list(BACKBONES))
def test_other_backbones_freeze(name):
    """A training step leaves any mmdet backbone bit-identical once frozen, buffers included."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = _BackboneWithHead(BACKBONES[name])
    model(torch.rand(2, 3, 64, 64))  # materialise the lazy head
    before = {key: value.clone() for key, value in model.backbone.state_dict().items()}
    head_before = model.head.weight.detach().clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    assert not any(m.training for m in model.backbone.modules())
    model(torch.rand(2, 3, 64, 64)).square().mean().backward()
    optimizer.step()
    after = model.backbone.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert all(p.grad is None for p in model.backbone.parameters())
    assert not torch.equal(head_before, model.head.weight)
