"""Whether mmcv's RoIAlign and NMS run on this machine's GPU, and what to do where they don't.

``python -m mmfrozen.cuda_ops`` (run by ``tools/setup_env.sh`` on a machine with
``nvidia-smi``) runs mmcv's NMS and RoIAlign once on CUDA tensors and compares them with the
CPU kernels. Where mmcv was built without CUDA ops (no ``nvcc``, a toolkit that does not match
torch), it says so and what to do, instead of the first training iteration failing with
"... is not compiled with GPU support". Exit status: 0 when the ops run on the GPU, 1 when they
do not (or there is no GPU to run them on).

The other way, without building mmcv for CUDA, is :func:`route_to_torchvision`: mmcv's
RoIAlign (``avg`` pooling) and NMS (offset 0) calls on CUDA tensors go to torchvision's CUDA
kernels; put ``'mmfrozen.torchvision_ops'`` in a config's ``custom_imports`` to use it.
"""
import argparse
import os
import shutil
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

#: What mmcv's kernels are compared against the CPU with.
ATOL = 1e-4
_ORIGINAL: Dict[str, Callable] = {}


def mmcv_cuda_version() -> Optional[str]:
    """The CUDA version mmcv's ops were compiled with, or None for a build without CUDA ops."""
    from mmcv.ops import get_compiling_cuda_version
    version = get_compiling_cuda_version()
    return None if not version or version == 'not available' else version


def _sample_inputs() -> Tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(64, 2, generator=generator) * 200
    boxes = torch.cat([corners, corners + 10 + torch.rand(64, 2, generator=generator) * 60], 1)
    scores = torch.rand(64, generator=generator)
    features = torch.rand(2, 8, 64, 64, generator=generator)
    rois = torch.cat([torch.randint(0, 2, (16, 1), generator=generator).float(), boxes[:16]], 1)
    return boxes, scores, features, rois


def fix_instructions() -> str:
    """What to do when mmcv's ops do not run on the GPU: build them, or use torchvision's."""
    capability = ''
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        capability = f'{major}.{minor}'
    nvcc = shutil.which('nvcc')
    cuda_home = os.environ.get('CUDA_HOME')
    if nvcc is None and cuda_home and os.path.isfile(os.path.join(cuda_home, 'bin', 'nvcc')):
        nvcc = os.path.join(cuda_home, 'bin', 'nvcc')
    return '\n'.join([
        f'  mmcv compiled with CUDA: {mmcv_cuda_version() or "no (CPU ops only)"}; torch built '
        f'with CUDA {torch.version.cuda}; nvcc: {nvcc or "not found"}.',
        '  To build them: install the CUDA toolkit of torch\'s CUDA version '
        f'({torch.version.cuda}; nvcc on PATH or CUDA_HOME set), then',
        '    pip uninstall -y mmcv && FORCE_CUDA=1 '
        f'TORCH_CUDA_ARCH_LIST="{capability or "<compute capability, e.g. 9.0>"}" '
        'MAX_JOBS=$(nproc) pip install --no-build-isolation --no-cache-dir mmcv==2.1.0',
        '  (tools/setup_env.sh passes FORCE_CUDA, TORCH_CUDA_ARCH_LIST and MAX_JOBS to its '
        'build), and run this check again: python -m mmfrozen.cuda_ops',
        "  Or, without a build: add 'mmfrozen.torchvision_ops' to the config's custom_imports "
        'to run RoIAlign and NMS with torchvision\'s CUDA kernels (other mmcv ops, such as '
        "RetinaNet's sigmoid focal loss, still need mmcv's CUDA build).",
    ])


def check_cuda_ops() -> Tuple[bool, str]:
    """Run mmcv's NMS and RoIAlign once on CUDA tensors and compare them with the CPU's.

    Returns:
        tuple: ``(ok, message)``: whether both ran on the GPU and agree with the CPU kernels,
        and a message that says what was found and, when not ok, what to do.
    """
    from mmcv.ops import nms, roi_align

    if not torch.cuda.is_available():
        return False, ('No GPU: torch.cuda.is_available() is False (torch built with CUDA '
                       f'{torch.version.cuda}); mmcv\'s CUDA ops were not checked.')
    boxes, scores, features, rois = _sample_inputs()
    try:
        _, keep = nms(boxes.cuda(), scores.cuda(), 0.5)
        pooled = roi_align(features.cuda(), rois.cuda(), 7, 0.25, 0, 'avg', True)
        torch.cuda.synchronize()
    except RuntimeError as err:
        return False, (f'mmcv\'s ops do not run on {torch.cuda.get_device_name()}: '
                       f'{str(err).strip().splitlines()[0]}\n{fix_instructions()}')
    _, keep_cpu = nms(boxes, scores, 0.5)
    pooled_cpu = roi_align(features, rois, 7, 0.25, 0, 'avg', True)
    if not (torch.equal(keep.cpu().sort().values, keep_cpu.sort().values)
            and torch.allclose(pooled.cpu(), pooled_cpu, atol=ATOL)):
        return False, (f'mmcv\'s CUDA NMS or RoIAlign on {torch.cuda.get_device_name()} '
                       f'disagrees with its CPU kernels.\n{fix_instructions()}')
    return True, (f'mmcv\'s NMS and RoIAlign run on {torch.cuda.get_device_name()} (mmcv '
                  f'compiled with CUDA {mmcv_cuda_version()}) and agree with the CPU kernels.')


# --- torchvision route ------------------------------------------------------------------------
def _roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height, aligned_width,
                       spatial_scale, sampling_ratio, pool_mode, aligned):
    if not input.is_cuda:
        return _ORIGINAL['roi_align_forward'](
            input, rois, output, argmax_y, argmax_x, aligned_height=aligned_height,
            aligned_width=aligned_width, spatial_scale=spatial_scale,
            sampling_ratio=sampling_ratio, pool_mode=pool_mode, aligned=aligned)
    if pool_mode != 1:
        raise RuntimeError('mmfrozen.torchvision_ops: torchvision has no max-pooling RoIAlign')
    output.copy_(
        torch.ops.torchvision.roi_align(input, rois, spatial_scale, aligned_height,
                                        aligned_width, sampling_ratio, aligned))


def _roi_align_backward(grad_output, rois, argmax_y, argmax_x, grad_input, aligned_height,
                        aligned_width, spatial_scale, sampling_ratio, pool_mode, aligned):
    if not grad_output.is_cuda:
        return _ORIGINAL['roi_align_backward'](
            grad_output, rois, argmax_y, argmax_x, grad_input, aligned_height=aligned_height,
            aligned_width=aligned_width, spatial_scale=spatial_scale,
            sampling_ratio=sampling_ratio, pool_mode=pool_mode, aligned=aligned)
    batch, channels, height, width = grad_input.shape
    grad_input.copy_(
        torch.ops.torchvision._roi_align_backward(grad_output, rois, spatial_scale,
                                                  aligned_height, aligned_width, batch,
                                                  channels, height, width, sampling_ratio,
                                                  aligned))


def _nms(boxes, scores, iou_threshold, offset):
    if not boxes.is_cuda:
        return _ORIGINAL['nms'](boxes, scores, iou_threshold=iou_threshold, offset=offset)
    if offset != 0:
        raise RuntimeError('mmfrozen.torchvision_ops: torchvision NMS has no offset')
    return torch.ops.torchvision.nms(boxes, scores, iou_threshold)


_ROUTES = dict(roi_align_forward=_roi_align_forward, roi_align_backward=_roi_align_backward,
               nms=_nms)


def route_to_torchvision(force: bool = False) -> List[str]:
    """Send mmcv's RoIAlign and NMS calls on CUDA tensors to torchvision's CUDA kernels.

    Only where mmcv has no CUDA ops (unless ``force``), and once. CPU tensors keep mmcv's own
    kernels. mmcv's RoIAlign (``aligned``, adaptive or fixed sampling, average pooling) and NMS
    (offset 0) compute what torchvision's do; max-pooling RoIAlign and NMS with an offset raise.

    Args:
        force: route even where mmcv has CUDA ops.

    Returns:
        list[str]: the ``mmcv._ext`` functions routed (empty when nothing was done).
    """
    import mmcv._ext as ext
    if _ORIGINAL or not torch.cuda.is_available() or (mmcv_cuda_version() and not force):
        return []
    import torchvision  # noqa: F401  registers torch.ops.torchvision
    for name, route in _ROUTES.items():
        _ORIGINAL[name] = getattr(ext, name)
        setattr(ext, name, route)
    return list(_ROUTES)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run mmcv's NMS and RoIAlign once on the GPU; say what to do if they fail")
    parser.parse_args(argv)
    ok, message = check_cuda_ops()
    print(f'[mmfrozen.cuda_ops] {message}')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
