"""A timm classifier's weights for mmpretrain's ``TIMMBackbone``, loaded by ``init_cfg``.

``TIMMBackbone(features_only=True, pretrained=True)`` lets timm load the weights while it builds
the model, and timm then loads a feature extractor's weights leniently (a missing tensor is only
logged, at INFO level), before any freeze check can see it. mmfrozen instead registers the
checkpoint scheme ``timm://`` with MMEngine, so that a timm classifier's own file loads through
MMEngine's ``Pretrained`` initialiser like any other backbone's, and the frozen-backbone check
refuses a file that leaves a tensor of the trunk unloaded, naming it::

    backbone=dict(type='mmpretrain.TIMMBackbone', model_name='convnext_tiny',
                  features_only=True, pretrained=False,
                  init_cfg=dict(type='Pretrained', checkpoint='timm://convnext_tiny.fb_in1k'))

``timm://`` is followed by a timm model name with its pretrained tag (the file is fetched from
the Hugging Face hub as timm does), or by a local file or an http(s) URL of a timm ``state_dict``
(``.safetensors`` or ``.pth``, as timm's ``load_state_dict`` reads them).
"""
import os.path as osp
import re
from typing import Dict, Optional

import torch
from mmengine.runner.checkpoint import CheckpointLoader

TIMM_SCHEME = 'timm://'
#: The attribute under which mmpretrain's TIMMBackbone holds the timm model.
TIMM_BACKBONE_PREFIX = 'timm_model.'
_SEQUENTIAL_CHILD = re.compile(r'^([^.]+)\.(\d+)\.')


def feature_key(key: str) -> str:
    """The name of a timm classifier's tensor in timm's feature extractor (``features_only``).

    timm's ``FeatureListNet`` flattens each top-level ``nn.Sequential`` of the classifier into
    its children, named ``<parent>_<index>``: ``stages.0.blocks.1.weight`` becomes
    ``stages_0.blocks.1.weight``.

    Args:
        key: the tensor's name in the classifier's ``state_dict``.

    Returns:
        str: its name in the feature extractor.
    """
    return _SEQUENTIAL_CHILD.sub(r'\1_\2.', key, count=1)


def _local_file(source: str) -> str:
    """A local path for ``source``: a file, an http(s) URL, or a timm model name (hub)."""
    if source.startswith(('http://', 'https://')):
        return _download(source)
    if osp.exists(source) or '/' in source or osp.splitext(source)[1] in ('.pth', '.safetensors'):
        return source
    from timm.models import get_pretrained_cfg
    cfg = get_pretrained_cfg(source)
    if cfg is None or not cfg.hf_hub_id:
        raise FileNotFoundError(f'timm://{source}: neither a file nor a timm model name with '
                                'weights on the Hugging Face hub')
    from huggingface_hub import hf_hub_download
    return hf_hub_download(cfg.hf_hub_id, 'model.safetensors')


def _download(url: str) -> str:
    """The file at ``url``, downloaded once into torch hub's checkpoint folder."""
    directory = osp.join(torch.hub.get_dir(), 'checkpoints')
    path = osp.join(directory, osp.basename(url.split('?')[0]))
    if not osp.exists(path):
        torch.hub.download_url_to_file(url, path)
    return path


@CheckpointLoader.register_scheme(prefixes=TIMM_SCHEME)
def load_from_timm(filename: str, map_location: Optional[str] = None,
                   logger: Optional[object] = None) -> Dict[str, torch.Tensor]:
    """Load a timm classifier's ``state_dict``, named as in ``TIMMBackbone(features_only=True)``.

    Args:
        filename: ``timm://`` and a timm model name, a local file or an http(s) URL.
        map_location: unused (timm loads on the CPU); MMEngine passes it to every loader.
        logger: unused; MMEngine passes it to every loader.

    Returns:
        dict[str, Tensor]: the tensors, keyed ``timm_model.<feature extractor name>``; the
        classifier's head is among them under its own name and is ignored as unexpected.
    """
    from timm.models import load_state_dict
    source = filename[len(TIMM_SCHEME):]
    state = load_state_dict(_local_file(source), use_ema=True, device='cpu')
    return {TIMM_BACKBONE_PREFIX + feature_key(key): value for key, value in state.items()}
