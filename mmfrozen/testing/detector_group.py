"""Tiny detector groups for tests: two detectors on one frozen tiny ResNet-18.

* :data:`GROUP_TINY`: the group config (``configs/group_tiny.py``): :data:`GROUP_TINY_FASTER`
  (the tiny Faster R-CNN, backbone frozen) and :data:`GROUP_TINY_RETINA` (a tiny RetinaNet on
  the same backbone, data and schedule, gradient clipping of its own);
* :func:`write_tiny_backbone`: the backbone checkpoint they load (a frozen backbone must come
  from a checkpoint), with non-default normalisation statistics;
* :func:`group_cfg_options`: ``--cfg-options`` pointing a group run, or one of its detectors
  alone, at that checkpoint and at :func:`~mmfrozen.testing.write_tiny_coco`'s data.
"""
import os
import os.path as osp
from typing import List

import torch

from .tiny_coco import coco_cfg_options

_CONFIGS = osp.join(osp.dirname(osp.abspath(__file__)), 'configs')
GROUP_TINY = osp.join(_CONFIGS, 'group_tiny.py')
GROUP_TINY_FASTER = osp.join(_CONFIGS, 'group_tiny_faster.py')
GROUP_TINY_RETINA = osp.join(_CONFIGS, 'group_tiny_retina.py')


def write_tiny_backbone(path: str, seed: int = 123, depth: int = 18,
                        base_channels: int = 16) -> str:
    """Write a checkpoint of the tiny configs' backbone (a ResNet-18 of width 16, or another).

    Convolutions keep PyTorch's default initialisation drawn from ``seed``; the normalisation
    layers get drawn affine parameters and the statistics of a few random batches, so that a
    frozen backbone loaded from it differs from a freshly built one everywhere.

    Args:
        path: the ``.pth`` file to write.
        seed: seed of the draws.
        depth: the ResNet's depth (a benchmark's larger trunk: 50).
        base_channels: its width (ResNet-50's own: 64).

    Returns:
        str: ``path``.
    """
    from mmdet.models.backbones import ResNet

    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        backbone = ResNet(depth=depth, base_channels=base_channels)
        norms = [m for m in backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        with torch.no_grad():
            for norm in norms:
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.uniform_(-0.1, 0.1)
                norm.momentum = None  # running statistics: the average over the batches
                norm.train()
            for _ in range(4):
                backbone(torch.randn(4, 3, 64, 64))
    finally:
        torch.random.set_rng_state(generator_state)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save(dict(state_dict=backbone.state_dict()), path)
    return path


def group_cfg_options(data_root: str, backbone: str, group: bool = True) -> List[str]:
    """``--cfg-options`` for a tiny group run (``group=True``) or one of its detectors alone.

    Args:
        data_root: :func:`~mmfrozen.testing.write_tiny_coco`'s root.
        backbone: :func:`write_tiny_backbone`'s file.
        group: for :data:`GROUP_TINY` (the checkpoint goes to every detector through
            ``model.cfg_options``), else for a detector's own config.

    Returns:
        list[str]: the options.
    """
    key = ('model.cfg_options.model.backbone.init_cfg.checkpoint' if group
           else 'model.backbone.init_cfg.checkpoint')
    return coco_cfg_options(data_root) + [f'{key}={backbone}']
