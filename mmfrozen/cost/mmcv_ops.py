"""FLOPs of mmcv's compiled ops (RoIAlign, RoIPool, NMS), for ``FlopCounterMode``.

mmcv's ops call functions of its C++/CUDA extension ``mmcv._ext`` from inside a
``torch.autograd.Function``: they never reach PyTorch's dispatcher, so ``FlopCounterMode`` does
not see them. :func:`count_mmcv_ops` routes those calls, while it is active, through custom
ops of the ``mmfrozen`` namespace that run the same function with the same arguments;
:data:`MMCV_FLOP_FORMULAS` gives ``FlopCounterMode`` their FLOPs (its ``custom_mapping``).

The formulas, two FLOPs per multiply-accumulate as for convolutions:

- **RoIAlign** forward (``roi_align_forward``): a bilinear interpolation (4 multiply-adds) per
  sampling point and channel, plus the average of each output bin: ``C * (8 * S + R*ph*pw)``,
  where ``S`` is the number of sampling points of all RoIs (``ph*pw*gh*gw`` per RoI, with the
  sampling grid ``gh x gw`` of ``sampling_ratio``, or mmcv's adaptive ``ceil(roi_h / ph)``
  when it is 0, read from the RoIs). Backward (``roi_align_backward``): the same, scattering
  4 weighted gradients per point. The interpolation weights (shared by all channels) are not
  counted.
- **RoIPool** forward: one comparison per channel and feature cell of each RoI
  (``C * sum(roi_h * roi_w)`` in feature cells); backward: one addition per output element.
- **NMS** (``nms``): the IoU of every pair of the ``N`` input boxes, as mmcv's CUDA kernel
  computes them (its CPU loop skips suppressed boxes: an upper bound there), 15 FLOPs each
  (intersection 11 with min/max counted, union 3, the threshold 1), plus 5 per box for its
  area: ``15 * N*(N-1)/2 + 5*N``. Sorting the scores is not counted.

Not counted: mmcv's other ops (none of them runs in a training step of Faster/Cascade/Mask
R-CNN or RetinaNet on a CPU; on a GPU, RetinaNet's sigmoid focal loss is element-wise, and
element-wise ops are not counted anywhere).
"""
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch
from torch import Tensor

#: FLOPs of a bilinear interpolation at one sampling point, one channel (4 multiply-adds).
BILINEAR_FLOPS = 8
#: FLOPs of the IoU of one pair of boxes compared with the threshold.
IOU_FLOPS = 15
#: FLOPs of one box's area (two differences with the offset, one product).
BOX_AREA_FLOPS = 5

#: The functions of ``mmcv._ext`` routed through the dispatcher while counting.
COUNTED_MMCV_OPS = ('roi_align_forward', 'roi_align_backward', 'roi_pool_forward',
                    'roi_pool_backward', 'nms')

#: What :func:`count_mmcv_ops` currently routes: ``mmcv._ext`` function name -> the function
#: that was in place (mmcv's own, or a replacement such as the torchvision route).
_ROUTED: Dict[str, Callable] = {}


def _mmcv_ext() -> Optional[Any]:
    """mmcv's compiled extension, or None where mmcv has no ops (mmcv-lite)."""
    try:
        import mmcv._ext as ext
    except ImportError:
        return None
    return ext


# --- custom ops: the same calls, visible to the dispatcher ----------------------------------
@torch.library.custom_op('mmfrozen::roi_align_forward', mutates_args=('output', 'argmax_y',
                                                                      'argmax_x'))
def _roi_align_forward(input: Tensor, rois: Tensor, output: Tensor, argmax_y: Tensor,
                       argmax_x: Tensor, aligned_height: int, aligned_width: int,
                       spatial_scale: float, sampling_ratio: int, pool_mode: int,
                       aligned: bool) -> None:
    _ROUTED['roi_align_forward'](
        input, rois, output, argmax_y, argmax_x, aligned_height=aligned_height,
        aligned_width=aligned_width, spatial_scale=spatial_scale,
        sampling_ratio=sampling_ratio, pool_mode=pool_mode, aligned=aligned)


@torch.library.custom_op('mmfrozen::roi_align_backward', mutates_args=('grad_input', ))
def _roi_align_backward(grad_output: Tensor, rois: Tensor, argmax_y: Tensor, argmax_x: Tensor,
                        grad_input: Tensor, aligned_height: int, aligned_width: int,
                        spatial_scale: float, sampling_ratio: int, pool_mode: int,
                        aligned: bool) -> None:
    _ROUTED['roi_align_backward'](
        grad_output, rois, argmax_y, argmax_x, grad_input, aligned_height=aligned_height,
        aligned_width=aligned_width, spatial_scale=spatial_scale,
        sampling_ratio=sampling_ratio, pool_mode=pool_mode, aligned=aligned)


@torch.library.custom_op('mmfrozen::roi_pool_forward', mutates_args=('output', 'argmax'))
def _roi_pool_forward(input: Tensor, rois: Tensor, output: Tensor, argmax: Tensor,
                      pooled_height: int, pooled_width: int, spatial_scale: float) -> None:
    _ROUTED['roi_pool_forward'](
        input, rois, output, argmax, pooled_height=pooled_height, pooled_width=pooled_width,
        spatial_scale=spatial_scale)


@torch.library.custom_op('mmfrozen::roi_pool_backward', mutates_args=('grad_input', ))
def _roi_pool_backward(grad_output: Tensor, rois: Tensor, argmax: Tensor, grad_input: Tensor,
                       pooled_height: int, pooled_width: int, spatial_scale: float) -> None:
    _ROUTED['roi_pool_backward'](
        grad_output, rois, argmax, grad_input, pooled_height=pooled_height,
        pooled_width=pooled_width, spatial_scale=spatial_scale)


@torch.library.custom_op('mmfrozen::nms', mutates_args=())
def _nms(boxes: Tensor, scores: Tensor, iou_threshold: float, offset: int) -> Tensor:
    return _ROUTED['nms'](boxes, scores, iou_threshold=iou_threshold, offset=offset)


@_nms.register_fake
def _nms_fake(boxes: Tensor, scores: Tensor, iou_threshold: float, offset: int) -> Tensor:
    return boxes.new_empty((torch.library.get_ctx().new_dynamic_size(), ), dtype=torch.long)


# --- FLOP formulas ---------------------------------------------------------------------------
def roi_align_sampling_points(rois: Tensor, pooled_height: int, pooled_width: int,
                              spatial_scale: float, sampling_ratio: int, aligned: bool) -> int:
    """Sampling points of mmcv's RoIAlign over all RoIs and output bins (one channel).

    Args:
        rois: ``(R, 5)`` RoIs ``(batch index, x1, y1, x2, y2)`` in image coordinates.
        pooled_height: output bins per column.
        pooled_width: output bins per row.
        spatial_scale: image to feature map scale (1 / stride).
        sampling_ratio: sampling points per bin side; 0 for mmcv's adaptive
            ``ceil(roi side / bins)``.
        aligned: mmcv's ``aligned`` (half-pixel offset; without it a RoI is at least 1 cell).

    Returns:
        int: the number of bilinear interpolations per channel.
    """
    bins = pooled_height * pooled_width
    if rois.numel() == 0:
        return 0
    if sampling_ratio > 0:
        return int(rois.shape[0]) * bins * sampling_ratio * sampling_ratio
    boxes = rois[:, 1:5].detach().double() * spatial_scale
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    if not aligned:
        width, height = width.clamp(min=1.0), height.clamp(min=1.0)
    grid_h = torch.ceil(height / pooled_height).clamp(min=0)
    grid_w = torch.ceil(width / pooled_width).clamp(min=0)
    return int((grid_h * grid_w).sum().item()) * bins


def _roi_align_flops(features: Tensor, rois: Tensor, aligned_height: int, aligned_width: int,
                     spatial_scale: float, sampling_ratio: int, aligned: bool) -> int:
    points = roi_align_sampling_points(rois, aligned_height, aligned_width, spatial_scale,
                                       sampling_ratio, aligned)
    channels = int(features.shape[1])
    return channels * (BILINEAR_FLOPS * points + int(rois.shape[0]) * aligned_height *
                       aligned_width)


def roi_align_forward_flops(input, rois, output, argmax_y, argmax_x, aligned_height,
                            aligned_width, spatial_scale, sampling_ratio, pool_mode, aligned,
                            out_val=None) -> int:
    """FLOPs of ``mmcv._ext.roi_align_forward`` (see the module's docstring)."""
    return _roi_align_flops(input, rois, aligned_height, aligned_width, spatial_scale,
                            sampling_ratio, aligned)


def roi_align_backward_flops(grad_output, rois, argmax_y, argmax_x, grad_input, aligned_height,
                             aligned_width, spatial_scale, sampling_ratio, pool_mode, aligned,
                             out_val=None) -> int:
    """FLOPs of ``mmcv._ext.roi_align_backward``: as many as its forward."""
    return _roi_align_flops(grad_input, rois, aligned_height, aligned_width, spatial_scale,
                            sampling_ratio, aligned)


def roi_pool_forward_flops(input, rois, output, argmax, pooled_height, pooled_width,
                           spatial_scale, out_val=None) -> int:
    """FLOPs of ``mmcv._ext.roi_pool_forward``: a comparison per channel and RoI cell."""
    if rois.numel() == 0:
        return 0
    boxes = torch.round(rois[:, 1:5].detach().double() * spatial_scale)
    width = (boxes[:, 2] - boxes[:, 0] + 1).clamp(min=1, max=input.shape[3])
    height = (boxes[:, 3] - boxes[:, 1] + 1).clamp(min=1, max=input.shape[2])
    return int(input.shape[1]) * int((width * height).sum().item())


def roi_pool_backward_flops(grad_output, rois, argmax, grad_input, pooled_height, pooled_width,
                            spatial_scale, out_val=None) -> int:
    """FLOPs of ``mmcv._ext.roi_pool_backward``: one addition per output element."""
    return int(grad_output.numel())


def nms_flops(boxes, scores, iou_threshold, offset, out_val=None) -> int:
    """FLOPs of ``mmcv._ext.nms`` on ``N`` boxes: ``15 * N*(N-1)/2 + 5*N``."""
    num = int(boxes.shape[0])
    return IOU_FLOPS * num * (num - 1) // 2 + BOX_AREA_FLOPS * num


def _raw(formula: Callable) -> Callable:
    formula._get_raw = True  # FlopCounterMode passes the tensors, not only their shapes
    return formula


#: ``FlopCounterMode(custom_mapping=...)`` for the routed ops.
MMCV_FLOP_FORMULAS = {
    torch.ops.mmfrozen.roi_align_forward: _raw(roi_align_forward_flops),
    torch.ops.mmfrozen.roi_align_backward: _raw(roi_align_backward_flops),
    torch.ops.mmfrozen.roi_pool_forward: _raw(roi_pool_forward_flops),
    torch.ops.mmfrozen.roi_pool_backward: _raw(roi_pool_backward_flops),
    torch.ops.mmfrozen.nms: _raw(nms_flops),
}


@contextmanager
def count_mmcv_ops() -> Iterator[List[str]]:
    """Route mmcv's RoIAlign, RoIPool and NMS calls through the ``mmfrozen`` custom ops.

    Inside the context each routed ``mmcv._ext`` function calls the function that was in place
    (mmcv's own kernel, or a replacement such as :mod:`mmfrozen.cuda_ops`' torchvision route)
    through the dispatcher, so that a ``FlopCounterMode`` with :data:`MMCV_FLOP_FORMULAS` counts
    it. Results are the same. Not reentrant.

    Yields:
        list[str]: the routed function names (empty where mmcv has no compiled ops).
    """
    ext = _mmcv_ext()
    if ext is None or _ROUTED:
        yield []
        return
    names = [name for name in COUNTED_MMCV_OPS if hasattr(ext, name)]
    for name in names:
        _ROUTED[name] = getattr(ext, name)
        setattr(ext, name, getattr(torch.ops.mmfrozen, name))
    try:
        yield names
    finally:
        for name in names:
            setattr(ext, name, _ROUTED.pop(name))


def op_name(packet: Any) -> str:
    """A readable name of an op ``FlopCounterMode`` counted: ``'aten.convolution'``, and
    ``'mmcv.nms'`` for a routed mmcv op."""
    return str(packet).replace('torch.ops.', '').replace('mmfrozen.', 'mmcv.')
