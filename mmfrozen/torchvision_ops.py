"""Importing this module routes mmcv's RoIAlign and NMS on CUDA tensors to torchvision's kernels.

For a GPU machine where mmcv was built without CUDA ops and no build is wanted: add it to a
config's ``custom_imports``::

    custom_imports = dict(imports=['mmfrozen', 'mmfrozen.torchvision_ops'],
                          allow_failed_imports=False)

Where mmcv has CUDA ops, or there is no GPU, importing it changes nothing
(:func:`mmfrozen.cuda_ops.route_to_torchvision`).
"""
from mmengine.logging import print_log

from .cuda_ops import route_to_torchvision

ROUTED = route_to_torchvision()
if ROUTED:
    print_log(f'mmfrozen.torchvision_ops: mmcv has no CUDA ops; {", ".join(ROUTED)} on CUDA '
              "tensors run torchvision's kernels", logger='current')
