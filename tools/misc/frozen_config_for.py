"""Write a paired frozen / fine-tuned detector config for any timm classifier.

The classifier becomes the detector's backbone through mmpretrain's ``TIMMBackbone``
(``features_only``): the four feature levels at strides 4, 8, 16 and 32 feed the FPN, whose
``in_channels`` come from the model's ``feature_info``. Its weights load by ``init_cfg`` from
``timm://<model name>`` (the Hugging Face hub, as timm fetches them; a local file with
``--checkpoint``). The fine-tuned config is MMDetection's R50 config of mmfrozen with this
backbone; the frozen one is its twin plus ``configs/_base_/frozen-backbone.py``, the backbone
built by the ``FrozenModule`` builder.

Usage::

    python tools/misc/frozen_config_for.py convnext_small.fb_in22k_ft_in1k \\
        [--detector faster-rcnn|retinanet] [--dataset coco|lvis-v1] [--out-dir DIR] \\
        [--checkpoint /path/to/model.safetensors]
"""
import argparse
import os.path as osp
import re
import sys
from typing import Dict, List, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import mmfrozen  # noqa: E402,F401  (first: its compat fix lets timm import on a CPU torch)
from mmengine.logging import print_log  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = osp.join(REPO, 'configs')
#: (detector, dataset) -> (fine-tuned R50 config it derives from, tail of the config name)
BASES: Dict[Tuple[str, str], Tuple[str, str]] = {
    ('faster-rcnn', 'coco'): ('faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py',
                              'fpn_1x_coco'),
    ('retinanet', 'coco'): ('retinanet/retinanet_r50-finetune_fpn_1x_coco.py', 'fpn_1x_coco'),
    ('faster-rcnn', 'lvis-v1'): (
        'faster_rcnn/faster-rcnn_r50-finetune_fpn_sample1e-3_ms-1x_lvis-v1.py',
        'fpn_sample1e-3_ms-1x_lvis-v1'),
}
#: The strides of the four levels an FPN takes in MMDetection's R50 configs.
STRIDES = (4, 8, 16, 32)


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write a paired frozen / fine-tuned config for a timm classifier')
    parser.add_argument('model', help='timm model name, with its pretrained tag '
                        '(e.g. convnext_small.fb_in22k_ft_in1k)')
    parser.add_argument('--detector', default='faster-rcnn', choices=['faster-rcnn', 'retinanet'])
    parser.add_argument('--dataset', default='coco', choices=['coco', 'lvis-v1'])
    parser.add_argument('--out-dir', default=osp.join(CONFIGS, 'classifiers'),
                        help='where to write the two configs (default: configs/classifiers)')
    parser.add_argument('--checkpoint', default=None,
                        help='a local timm state_dict (.safetensors or .pth) instead of the hub')
    args = parser.parse_args(argv)
    if (args.detector, args.dataset) not in BASES:
        parser.error(f'no {args.detector} config for {args.dataset}: choose one of '
                     + ', '.join(f'{d} on {s}' for d, s in BASES))
    return args


def feature_levels(model_name: str) -> Tuple[List[int], List[int]]:
    """The feature indices and channels of ``model_name`` at strides 4, 8, 16 and 32.

    Args:
        model_name: a timm model name; a pretrained tag after ``.`` is ignored.

    Returns:
        tuple[list[int], list[int]]: ``out_indices`` for timm's ``features_only`` model and
        the channels of those levels, from the model's ``feature_info``.

    Raises:
        ValueError: the model has no feature pyramid at those strides (e.g. a plain ViT).
    """
    import timm
    import torch
    name = model_name.split('.')[0]
    try:
        with torch.device('meta'):  # feature_info without allocating the weights
            model = timm.create_model(name, features_only=True, pretrained=False)
    except (RuntimeError, NotImplementedError):  # a model whose construction computes values
        model = timm.create_model(name, features_only=True, pretrained=False)
    info = model.feature_info
    reductions, channels = info.reduction(), info.channels()
    indices = []
    for stride in STRIDES:
        at_stride = [i for i, r in enumerate(reductions) if r == stride]
        if not at_stride:
            raise ValueError(f'{model_name}: timm gives features at strides {reductions}, not '
                             f'at every one of {list(STRIDES)} that the FPN configs take')
        indices.append(at_stride[-1])  # the deepest feature at that stride
    return indices, [channels[i] for i in indices]


def config_names(model_name: str, detector: str, dataset: str) -> Tuple[str, str]:
    """File names of the fine-tuned and frozen configs, in MMDetection's naming scheme."""
    token = re.sub(r'[^0-9a-z]+', '-', model_name.lower()).strip('-') + '-timm'
    tail = BASES[(detector, dataset)][1]
    return (f'{detector}_{token}-finetune_{tail}.py', f'{detector}_{token}-frozen_{tail}.py')


def _base_path(target: str, out_dir: str) -> str:
    """``target`` (under configs/) as the generated config should name it."""
    path = osp.join(CONFIGS, target)
    inside = osp.abspath(out_dir).startswith(CONFIGS + osp.sep)
    return osp.relpath(path, out_dir) if inside else path


def render(model_name: str, detector: str, dataset: str, out_dir: str,
           checkpoint: str = None) -> Dict[str, str]:
    """The two configs' texts, keyed by file name.

    Args:
        model_name: the timm model name with its pretrained tag.
        detector: ``faster-rcnn`` or ``retinanet``.
        dataset: ``coco`` or ``lvis-v1``.
        out_dir: where the configs will be written (for their ``_base_`` paths).
        checkpoint: a local timm state_dict to load instead of the hub's.

    Returns:
        dict[str, str]: file name -> config text, fine-tuned first.
    """
    indices, channels = feature_levels(model_name)
    finetune, frozen = config_names(model_name, detector, dataset)
    source = f'timm://{checkpoint}' if checkpoint else f'timm://{model_name}'
    base = _base_path(BASES[(detector, dataset)][0], out_dir)
    fragment = _base_path('_base_/frozen-backbone.py', out_dir)
    finetune_text = f"""\
# Generated by tools/misc/frozen_config_for.py {model_name}: the timm classifier as the
# backbone of {osp.basename(base)}, fine-tuned. Levels {indices} of timm's
# feature_info (strides {list(STRIDES)}) feed the FPN.
# Weights: {source}
_base_ = '{base}'
custom_imports = dict(imports=['mmfrozen', 'mmpretrain.models'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.TIMMBackbone',
        model_name='{model_name.split('.')[0]}',
        features_only=True,
        pretrained=False,
        out_indices={tuple(indices)!r},
        init_cfg=dict(type='Pretrained', checkpoint='{source}')),
    neck=dict(in_channels={channels!r}))
# AdamW, as MMDetection's configs for ConvNeXt and Swin backbones
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bypass_duplicate=True))
"""
    frozen_text = f"""\
# Generated by tools/misc/frozen_config_for.py {model_name}: the fine-tuned twin with the
# whole timm trunk frozen by the FrozenModule builder (weights, norm statistics, eval mode).
_base_ = ['./{finetune}', '{fragment}']
model = dict(backbone=dict(_delete_=True, type='FrozenModule', module=_base_.model.backbone))
"""
    return {finetune: finetune_text, frozen: frozen_text}


def main(argv: List[str] = None) -> List[str]:
    args = parse_args(argv)
    texts = render(args.model, args.detector, args.dataset, args.out_dir, args.checkpoint)
    written = []
    for name, text in texts.items():
        path = osp.join(args.out_dir, name)
        with open(path, 'w') as f:
            f.write(text)
        written.append(path)
        print_log(f'wrote {path}', logger='current')
    return written


if __name__ == '__main__':
    main()
