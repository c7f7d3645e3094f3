"""Write a paired frozen / fine-tuned detector config for any timm classifier.

A classifier with a feature pyramid (ConvNeXt, EfficientNet, ...) becomes the detector's
backbone through mmpretrain's ``TIMMBackbone`` (``features_only``): the four feature levels at
strides 4, 8, 16 and 32 feed the FPN, whose ``in_channels`` come from the model's
``feature_info``. The fine-tuned config is MMDetection's R50 config of mmfrozen with this
backbone (Faster R-CNN or RetinaNet).

A plain vision transformer (timm's ``VisionTransformer``: DINOv2, CLIP, MAE, supervised ViTs)
becomes ViTDet's backbone, :class:`~mmfrozen.models.TimmViT`, its last block feeding the simple
feature pyramid; the fine-tuned config is mmfrozen's ViTDet Mask R-CNN or Cascade Mask R-CNN
(``configs/_base_/models/*_vit-b_sfp.py``) with large-scale jitter, this backbone, its input
normalisation and ViTDet's AdamW with layer-wise learning-rate decay.

Either way the weights load by ``init_cfg`` from ``timm://<model name>`` (the Hugging Face hub,
as timm fetches them) or a local file with ``--checkpoint`` (a ViT's in its family's release
layout too: DINOv2's ``.pth``, MAE's, OpenAI CLIP's; see :mod:`mmfrozen.models.vit_weights`),
and the frozen config is the fine-tuned twin plus ``configs/_base_/frozen-backbone.py``, the
backbone built by the ``FrozenModule`` builder.

Usage::

    python tools/misc/frozen_config_for.py convnext_small.fb_in22k_ft_in1k \\
        [--detector faster-rcnn|retinanet] [--dataset coco|lvis-v1] [--out-dir DIR] \\
        [--checkpoint /path/to/model.safetensors] [--token NAME]
    python tools/misc/frozen_config_for.py vit_base_patch14_dinov2.lvd142m \\
        [--detector mask-rcnn|cascade-mask-rcnn] [--dataset coco|lvis-v1] [--out-dir DIR] \\
        [--checkpoint /path/to/dinov2_vitb14_pretrain.pth] [--token vit-b-dinov2]
"""
import argparse
import os.path as osp
import re
import sys
import textwrap
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
#: (detector, dataset) -> (model base, data base, tail of the config name) for a plain ViT.
VIT_BASES: Dict[Tuple[str, str], Tuple[str, str, str]] = {
    ('mask-rcnn', 'coco'): ('_base_/models/mask-rcnn_vit-b_sfp.py',
                            '_base_/common/lsj-100e_coco-instance.py', 'sfp_lsj-100e_coco'),
    ('cascade-mask-rcnn', 'coco'): ('_base_/models/cascade-mask-rcnn_vit-b_sfp.py',
                                    '_base_/common/lsj-100e_coco-instance.py',
                                    'sfp_lsj-100e_coco'),
    ('mask-rcnn', 'lvis-v1'): ('_base_/models/mask-rcnn_vit-b_sfp.py',
                               '_base_/datasets/lvis-v1_instance_lsj-100e.py',
                               'sfp_sample1e-3_lsj-100e_lvis-v1'),
    ('cascade-mask-rcnn', 'lvis-v1'): ('_base_/models/cascade-mask-rcnn_vit-b_sfp.py',
                                       '_base_/datasets/lvis-v1_instance_lsj-100e.py',
                                       'sfp_sample1e-3_lsj-100e_lvis-v1'),
}
#: The strides of the four levels an FPN takes in MMDetection's R50 configs.
STRIDES = (4, 8, 16, 32)
#: ViTDet's layer-wise learning-rate decay by depth: ViT-B 0.7, ViT-L 0.8, ViT-H 0.9.
LAYER_DECAY = ((12, 0.7), (24, 0.8), (32, 0.9))
LVIS_CLASSES = 1203


def parse_args(argv: List[str] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write a paired frozen / fine-tuned config for a timm classifier')
    parser.add_argument('model', help='timm model name, with its pretrained tag '
                        '(e.g. convnext_small.fb_in22k_ft_in1k)')
    parser.add_argument('--detector', default=None,
                        choices=sorted({d for d, _ in BASES} | {d for d, _ in VIT_BASES}),
                        help='default: faster-rcnn, for a plain ViT mask-rcnn')
    parser.add_argument('--dataset', default='coco', choices=['coco', 'lvis-v1'])
    parser.add_argument('--out-dir', default=None,
                        help='where to write the two configs (default: configs/classifiers, '
                        'for a plain ViT configs/vitdet)')
    parser.add_argument('--checkpoint', default=None,
                        help='a local file instead of the hub: a timm state_dict (.safetensors '
                        "or .pth), for a ViT also its family's released file")
    parser.add_argument('--token', default=None,
                        help='the backbone in the file names (default: from the model name, '
                        'e.g. convnext-small-fb-in22k-ft-in1k-timm)')
    args = parser.parse_args(argv)
    vit = is_plain_vit(args.model)
    bases = VIT_BASES if vit else BASES
    args.detector = args.detector or ('mask-rcnn' if vit else 'faster-rcnn')
    args.out_dir = args.out_dir or osp.join(CONFIGS, 'vitdet' if vit else 'classifiers')
    if (args.detector, args.dataset) not in bases:
        kind = 'a plain ViT (simple feature pyramid)' if vit else 'a classifier with an FPN'
        parser.error(f'no {args.detector} config for {args.dataset} with {kind}: choose one of '
                     + ', '.join(f'{d} on {s}' for d, s in bases))
    return args


def _meta_model(model_name: str, **kwargs):
    """timm's model without its weights allocated (on the meta device) where it builds so."""
    import timm
    import torch
    name = model_name.split('.')[0]
    try:
        with torch.device('meta'):
            return timm.create_model(name, pretrained=False, **kwargs)
    except (RuntimeError, NotImplementedError):  # a model whose construction computes values
        return timm.create_model(name, pretrained=False, **kwargs)


def is_plain_vit(model_name: str) -> bool:
    """Whether ``model_name`` is one of timm's plain vision transformers (``VisionTransformer``)."""
    from timm.models.vision_transformer import VisionTransformer
    try:
        return isinstance(_meta_model(model_name, num_classes=0), VisionTransformer)
    except TypeError:
        return False


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
    info = _meta_model(model_name, features_only=True).feature_info
    reductions, channels = info.reduction(), info.channels()
    indices = []
    for stride in STRIDES:
        at_stride = [i for i, r in enumerate(reductions) if r == stride]
        if not at_stride:
            raise ValueError(f'{model_name}: timm gives features at strides {reductions}, not '
                             f'at every one of {list(STRIDES)} that the FPN configs take')
        indices.append(at_stride[-1])  # the deepest feature at that stride
    return indices, [channels[i] for i in indices]


def config_names(model_name: str, detector: str, dataset: str,
                 token: str = None) -> Tuple[str, str]:
    """File names of the fine-tuned and frozen configs, in MMDetection's naming scheme."""
    token = token or re.sub(r'[^0-9a-z]+', '-', model_name.lower()).strip('-') + '-timm'
    tail = (BASES[(detector, dataset)][1] if (detector, dataset) in BASES else
            VIT_BASES[(detector, dataset)][2])
    return (f'{detector}_{token}-finetune_{tail}.py', f'{detector}_{token}-frozen_{tail}.py')


def _weights(model_name: str, checkpoint: str = None) -> str:
    """The ``init_cfg`` checkpoint: the hub's or a local timm file through ``timm://``, any
    other local file as it is."""
    if checkpoint and not checkpoint.endswith('.safetensors'):
        return checkpoint
    return f'timm://{checkpoint or model_name}'


def _base_path(target: str, out_dir: str) -> str:
    """``target`` (under configs/) as the generated config should name it."""
    path = osp.join(CONFIGS, target)
    inside = osp.abspath(out_dir).startswith(CONFIGS + osp.sep)
    return osp.relpath(path, out_dir) if inside else path


def render(model_name: str, detector: str, dataset: str, out_dir: str,
           checkpoint: str = None, token: str = None) -> Dict[str, str]:
    """The two configs' texts, keyed by file name.

    Args:
        model_name: the timm model name with its pretrained tag.
        detector: ``faster-rcnn`` or ``retinanet``; for a plain ViT ``mask-rcnn`` or
            ``cascade-mask-rcnn``.
        dataset: ``coco`` or ``lvis-v1``.
        out_dir: where the configs will be written (for their ``_base_`` paths).
        checkpoint: a local file to load instead of the hub's.
        token: the backbone in the file names (default: from the model name).

    Returns:
        dict[str, str]: file name -> config text, fine-tuned first.
    """
    if (detector, dataset) in VIT_BASES:
        return render_vit(model_name, detector, dataset, out_dir, checkpoint, token)
    indices, channels = feature_levels(model_name)
    finetune, frozen = config_names(model_name, detector, dataset, token)
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


def vit_facts(model_name: str) -> Dict[str, object]:
    """What a ViT's configs need: width, depth, patch and input normalisation (0-255 scale).

    Args:
        model_name: timm model name with its pretrained tag (which names the normalisation).

    Returns:
        dict: ``embed_dim``, ``depth``, ``patch_size``, ``mean``, ``std``.
    """
    from timm.models import get_pretrained_cfg
    model = _meta_model(model_name, num_classes=0)
    cfg = get_pretrained_cfg(model_name)  # the tag's (a tag may normalise otherwise)
    mean, std = (cfg.mean, cfg.std) if cfg else (model.pretrained_cfg['mean'],
                                                 model.pretrained_cfg['std'])
    return dict(embed_dim=model.embed_dim, depth=len(model.blocks),
                patch_size=model.patch_embed.patch_size[0],
                mean=[round(255 * m, 3) for m in mean], std=[round(255 * s, 3) for s in std])


def layer_decay(depth: int) -> float:
    """ViTDet's layer-wise learning-rate decay rate for a ViT of ``depth`` blocks."""
    return next((rate for blocks, rate in LAYER_DECAY if depth <= blocks), LAYER_DECAY[-1][1])


def _comment(text: str) -> str:
    """``text`` as comment lines of at most 100 columns."""
    return '\n'.join(textwrap.wrap(text, 98, initial_indent='# ', subsequent_indent='# '))


def render_vit(model_name: str, detector: str, dataset: str, out_dir: str,
               checkpoint: str = None, token: str = None) -> Dict[str, str]:
    """The two configs of a plain ViT as ViTDet's backbone, keyed by file name (as
    :func:`render`)."""
    facts = vit_facts(model_name)
    finetune, frozen = config_names(model_name, detector, dataset, token)
    model_base, data_base, _ = VIT_BASES[(detector, dataset)]
    bases = [_base_path(model_base, out_dir), _base_path(data_base, out_dir)]
    fragment = _base_path('_base_/frozen-backbone.py', out_dir)
    stride = '' if facts['patch_size'] == 16 else (
        f" (its patch-{facts['patch_size']} maps resampled to stride 16)")
    weights = _weights(model_name, checkpoint)
    heads = ''
    if dataset == 'lvis-v1':
        bbox = (f'[dict(head, num_classes={LVIS_CLASSES}) '
                'for head in _base_.model.roi_head.bbox_head]'
                if detector == 'cascade-mask-rcnn' else f'dict(num_classes={LVIS_CLASSES})')
        heads = f"""
    roi_head=dict(
        bbox_head={bbox},
        mask_head=dict(num_classes={LVIS_CLASSES})),
    # LVIS allows up to 300 detections
    test_cfg=dict(rcnn=dict(score_thr=0.0001, max_per_img=300))"""
    header = _comment(
        f'Generated by tools/misc/frozen_config_for.py {model_name}: the ViT as the backbone '
        f'of ViTDet\'s {osp.basename(bases[0])}{stride}, fine-tuned with ViTDet\'s AdamW and '
        f'layer-wise learning-rate decay, on {osp.basename(bases[1])}.')
    finetune_text = f"""\
{header}
# Weights: {weights}
_base_ = [
    '{bases[0]}',
    '{bases[1]}'
]
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
model = dict(
    # the classifier's input normalisation
    data_preprocessor=dict(mean={facts['mean']!r}, std={facts['std']!r}),
    backbone=dict(
        model_name='{model_name}',
        init_cfg=dict(checkpoint='{weights}')),
    neck=dict(in_channels={facts['embed_dim']}){',' if heads else ''}{heads})
optim_wrapper = dict(
    constructor='ViTLayerDecayOptimizerConstructor',
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(decay_rate={layer_decay(facts['depth'])}))
"""
    frozen_text = f"""\
{_comment(f'Generated by tools/misc/frozen_config_for.py {model_name}: the fine-tuned twin '
          'with the whole ViT frozen by the FrozenModule builder (weights, norms, eval mode: '
          'no drop path).')}
_base_ = [
    './{finetune}',
    '{fragment}'
]
model = dict(backbone=dict(_delete_=True, type='FrozenModule', module=_base_.model.backbone))
"""
    return {finetune: finetune_text, frozen: frozen_text}


def main(argv: List[str] = None) -> List[str]:
    args = parse_args(argv)
    texts = render(args.model, args.detector, args.dataset, args.out_dir, args.checkpoint,
                   args.token)
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
