"""The few-shot weight surgery keeps every base weight and gives the documented novel rows.

MMDetection's own heads (Faster R-CNN's box head, the mask head, RetinaNet's head), built for the
base classes and seeded, go through the surgery to the base and novel classes listed in another
order; the extended head, built by MMDetection for all classes, takes the new weights strictly
and gives the base classes exactly the outputs the base head gave them (scores, boxes, masks,
background), while the novel rows hold the draws the docstring promises.
"""
import math

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

from mmfrozen.models.few_shot_surgery import (SurgeryError, few_shot_surgery,
                                              surgery_checkpoint)

register_all_modules(init_default_scope=True)

BASE = ['car', 'bus', 'cat']
CLASSES = ['bus', 'bird', 'car', 'cow', 'cat']  # the data set's order: novel ones between
NOVEL = ['bird', 'cow']


def box_head(num_classes: int, **kwargs) -> torch.nn.Module:
    return MODELS.build(dict(
        type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=16, roi_feat_size=7,
        num_classes=num_classes,
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                        target_stds=[0.1, 0.1, 0.2, 0.2]), **kwargs))


def seeded(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every tensor drawn, as a trained model's are (an initialiser's zeros would hide a miss)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.normal_()
    return module.eval()


def same_output(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float32 rounding (a wider layer sums its products in another order)."""
    return torch.allclose(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()))


def extended(base: torch.nn.Module, new: torch.nn.Module, seed: int = 0, std: float = 0.01):
    state, layers = few_shot_surgery(base.state_dict(), BASE, CLASSES, std=std, seed=seed)
    new.load_state_dict(state, strict=True)
    return state, layers


def test_box_head_keeps_the_base_outputs_and_draws_the_documented_novel_rows():
    base, new = seeded(box_head(len(BASE)), 0), box_head(len(CLASSES)).eval()
    state, layers = extended(base, new, seed=7)
    assert [layer.name for layer in layers] == ['fc_cls', 'fc_reg']
    # every tensor that does not depend on the classes: unchanged
    for key, value in base.state_dict().items():
        if not key.startswith(('fc_cls.', 'fc_reg.')):
            assert torch.equal(state[key], value), key
    rois = torch.randn(6, 4, 7, 7)
    with torch.no_grad():
        (base_cls, base_reg), (cls, reg) = base(rois), new(rois)
    for k, name in enumerate(BASE):  # the copied rows exactly, the outputs up to rounding
        j = CLASSES.index(name)
        assert torch.equal(state['fc_cls.weight'][j], base.state_dict()['fc_cls.weight'][k])
        assert same_output(cls[:, j], base_cls[:, k])
        assert same_output(reg[:, 4 * j:4 * j + 4], base_reg[:, 4 * k:4 * k + 4])
    assert same_output(cls[:, -1], base_cls[:, -1])  # background, last in MMDetection
    # the novel rows: torch.Generator().manual_seed(seed), one full draw per layer in key
    # order (fc_cls.weight, then fc_reg.weight), normal(0, std); biases 0
    generator = torch.Generator().manual_seed(7)
    cls_draw = torch.normal(0.0, 0.01, size=(len(CLASSES) + 1, 16), generator=generator)
    reg_draw = torch.normal(0.0, 0.01, size=(4 * len(CLASSES), 16), generator=generator)
    for name in NOVEL:
        j = CLASSES.index(name)
        assert torch.equal(state['fc_cls.weight'][j], cls_draw[j])
        assert torch.equal(state['fc_reg.weight'][4 * j:4 * j + 4], reg_draw[4 * j:4 * j + 4])
        assert state['fc_cls.bias'][j] == 0 and not state['fc_reg.bias'][4 * j:4 * j + 4].any()
    novel_rows = torch.stack([state['fc_cls.weight'][CLASSES.index(n)] for n in NOVEL])
    assert 0.005 < float(novel_rows.std()) < 0.02
    same, _ = few_shot_surgery(base.state_dict(), BASE, CLASSES, seed=7)
    other, _ = few_shot_surgery(base.state_dict(), BASE, CLASSES, seed=8)
    assert all(torch.equal(same[k], state[k]) for k in state)
    assert not torch.equal(other['fc_cls.weight'], state['fc_cls.weight'])


def test_class_agnostic_regressor_and_mask_head():
    base = seeded(box_head(len(BASE), reg_class_agnostic=True), 1)
    state, layers = extended(base, box_head(len(CLASSES), reg_class_agnostic=True).eval())
    assert [layer.name for layer in layers] == ['fc_cls']
    assert torch.equal(state['fc_reg.weight'], base.state_dict()['fc_reg.weight'])

    def mask_head(num_classes: int) -> torch.nn.Module:
        return MODELS.build(dict(type='FCNMaskHead', num_convs=1, in_channels=4,
                                 conv_out_channels=4, num_classes=num_classes))

    base_mask, new_mask = seeded(mask_head(len(BASE)), 2), mask_head(len(CLASSES)).eval()
    extended(base_mask, new_mask)
    feats = torch.randn(3, 4, 14, 14)
    with torch.no_grad():
        before, after = base_mask(feats), new_mask(feats)
    for k, name in enumerate(BASE):
        assert same_output(after[:, CLASSES.index(name)], before[:, k])


def test_retinanet_rows_are_anchor_major_and_novel_biases_the_prior():
    def retina(num_classes: int) -> torch.nn.Module:
        return MODELS.build(dict(
            type='RetinaHead', num_classes=num_classes, in_channels=4, stacked_convs=1,
            feat_channels=4,
            anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                  scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                                  strides=[8, 16, 32, 64, 128]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                            target_stds=[1.0] * 4)))

    base, new = seeded(retina(len(BASE)), 3), retina(len(CLASSES)).eval()
    state, layers = extended(base, new)
    assert [(layer.name, layer.groups) for layer in layers] == [('retina_cls', 9)]
    feats = [torch.randn(1, 4, 8, 8)]
    with torch.no_grad():
        (base_scores, ), (base_boxes, ) = base(feats)
        (scores, ), (boxes, ) = new(feats)
    assert torch.equal(boxes, base_boxes)  # the box branch does not depend on the classes
    base_scores = base_scores.reshape(1, 9, len(BASE), 8, 8)  # anchor-major, as the loss reads
    scores = scores.reshape(1, 9, len(CLASSES), 8, 8)
    for k, name in enumerate(BASE):
        assert same_output(scores[:, :, CLASSES.index(name)], base_scores[:, :, k])
    bias = state['retina_cls.bias'].reshape(9, len(CLASSES))
    for name in NOVEL:  # MMDetection's prior probability 0.01
        assert torch.allclose(bias[:, CLASSES.index(name)], torch.tensor(-math.log(99.0)))


def test_surgery_checkpoint_records_and_refuses_what_does_not_fit():
    base = seeded(box_head(len(BASE)), 4)
    checkpoint = dict(state_dict=base.state_dict(), meta=dict(dataset_meta=dict(
        classes=tuple(BASE), palette=[(0, 0, 0)] * 3)), optimizer=dict(state={}))
    out = surgery_checkpoint(checkpoint, CLASSES, NOVEL, source='base.pth')
    assert set(out) == {'state_dict', 'meta'}  # the K-shot stage starts afresh
    assert out['meta']['dataset_meta'] == dict(classes=tuple(CLASSES))
    record = out['meta']['few_shot_surgery']
    assert (record['base_classes'], record['novel'], record['layers']) == (
        BASE, NOVEL, ['fc_cls', 'fc_reg'])
    with pytest.raises(SurgeryError, match=r"base classes \['cat'\] are not among"):
        surgery_checkpoint(checkpoint, ['bus', 'car', 'bird', 'cow'], ['bird', 'cow'])
    with pytest.raises(SurgeryError, match=r"lacks, \['bird', 'cow'\], are not the novel"):
        surgery_checkpoint(checkpoint, CLASSES, ['bird'])
    with pytest.raises(SurgeryError, match='no dataset_meta.classes'):
        surgery_checkpoint(dict(state_dict=base.state_dict()), CLASSES, NOVEL)
    with pytest.raises(SurgeryError, match=r'fc_reg.weight has 12 rows, which fits no layout'):
        surgery_checkpoint(checkpoint, CLASSES + ['dog'], NOVEL,
                           base_classes=BASE + ['dog'])
