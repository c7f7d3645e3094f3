"""FLOPs of mmcv's RoIAlign and NMS: counted as the formulas say, results unchanged."""
import pytest
import torch
from mmfrozen.testing import TINY_FASTER_RCNN
from mmcv.ops import nms, roi_align

import mmfrozen  # noqa: F401
from mmfrozen.cost import TrainingFlopCounter, measure_training_cost
from mmfrozen.cost.mmcv_ops import BILINEAR_FLOPS, BOX_AREA_FLOPS, IOU_FLOPS

CHANNELS, OUT = 3, 7
# (batch index, x1, y1, x2, y2) on a 2x3x32x32 feature map at spatial_scale 1, aligned: a
# 28x14 RoI samples ceil(28/7) x ceil(14/7) = 4 x 2 points per bin, a 7x21 one 1 x 3.
ROIS = [[0, 0, 0, 28, 14], [1, 3, 2, 10, 23]]
ADAPTIVE_POINTS = OUT * OUT * (4 * 2 + 1 * 3)


def roi_align_step(sampling_ratio: int, counted: bool):
    torch.manual_seed(0)
    features = torch.randn(2, CHANNELS, 32, 32, requires_grad=True)
    rois = torch.tensor(ROIS, dtype=torch.float32)
    if not counted:
        out = roi_align(features, rois, OUT, 1.0, sampling_ratio, 'avg', True)
        out.sum().backward()
        return None, out, features.grad
    with TrainingFlopCounter() as counter:
        out = roi_align(features, rois, OUT, 1.0, sampling_ratio, 'avg', True)
        loss = out.sum()
        counter.mark_backward_start()
        loss.backward()
        counter.mark_backward_end()
    return counter, out, features.grad


@pytest.mark.parametrize('sampling_ratio, points', [
    (2, len(ROIS) * OUT * OUT * 2 * 2),
    (0, ADAPTIVE_POINTS),
])
def test_roi_align_flops_are_counted_per_sampling_point(sampling_ratio, points):
    counter, out, grad = roi_align_step(sampling_ratio, counted=True)
    _, plain_out, plain_grad = roi_align_step(sampling_ratio, counted=False)
    assert torch.equal(out, plain_out) and torch.equal(grad, plain_grad)

    # per channel: 4 multiply-adds per sampling point, one division per output bin
    expected = CHANNELS * (BILINEAR_FLOPS * points + len(ROIS) * OUT * OUT)
    ops = counter.by_op()
    assert ops['mmcv.roi_align_forward'] == dict(forward=expected, backward=0)
    assert ops['mmcv.roi_align_backward'] == dict(forward=0, backward=expected)
    assert counter.forward == expected and counter.backward == expected


def test_nms_flops_are_every_pair_iou():
    torch.manual_seed(0)
    corners = torch.rand(50, 2) * 100
    boxes = torch.cat([corners, corners + 5 + torch.rand(50, 2) * 30], dim=1)
    scores = torch.rand(50)
    with TrainingFlopCounter() as counter:
        dets, keep = nms(boxes, scores, 0.5)
    plain_dets, plain_keep = nms(boxes, scores, 0.5)
    assert torch.equal(keep, plain_keep) and torch.equal(dets, plain_dets)
    assert 0 < len(keep) < 50
    assert counter.by_op() == {
        'mmcv.nms': dict(forward=IOU_FLOPS * 50 * 49 // 2 + BOX_AREA_FLOPS * 50, backward=0)
    }


def test_detector_step_counts_roi_align_and_nms():
    result = measure_training_cost(
        TINY_FASTER_RCNN, 'cpu', batch_size=1, shape=(128, 128), steps=1, warmup=0)
    by_op = result['train_gflops_by_op_per_image']
    # the RPN's proposals go through NMS; the RoI head's features through RoIAlign both ways
    assert by_op['mmcv.nms']['forward'] > 0
    assert by_op['mmcv.roi_align_forward']['forward'] > 0
    assert by_op['mmcv.roi_align_backward']['backward'] > 0
    assert by_op['aten.convolution']['forward'] > 0
    for phase in ('forward', 'backward'):
        assert sum(o[phase] for o in by_op.values()) == pytest.approx(
            result[f'train_gflops_{phase}_per_image'], rel=1e-12)
