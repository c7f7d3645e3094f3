"""ViT classifier checkpoints in each family's release layout, written from a seeded timm model.

Nothing is downloaded in the tests: a seeded (and noised, so that no tensor keeps an initial
value) timm ``VisionTransformer`` stands for the released classifier, and these writers save
its tensors as the family publishes them:

* :func:`write_timm` ``.safetensors`` or ``.pth``: timm's ``state_dict`` (the hub's files);
* :func:`write_dinov2`: DINOv2's ``dinov2_vit*14_pretrain.pth`` (timm's keys plus ``mask_token``);
* :func:`write_mae`: MAE's ``mae_pretrain_vit_*.pth``, ``{'model': <encoder>}``;
* :func:`write_openai_clip`: OpenAI CLIP's ``state_dict``, the image tower under ``visual.``
  in CLIP's own names, beside (a token of) the text tower.

Each returns the timm model's tensors, keyed as timm names them, to compare with what loaded.
"""
from typing import Dict

import torch

Tensors = Dict[str, torch.Tensor]


def seeded_vit_state(model_name: str, seed: int = 0, **timm_kwargs) -> Tensors:
    """The tensors of ``timm.create_model(model_name, **timm_kwargs)`` built under ``seed``,
    each plus uniform noise (a trained classifier's stand-in: LayerNorm affine parameters, layer
    scales and tokens away from their initial values).

    Args:
        model_name: a timm ViT name, e.g. ``'vit_base_patch16_224.mae'``.
        seed: the torch seed.
        **timm_kwargs: ``depth``, ``embed_dim``, ``num_heads``, ... for a tiny model.

    Returns:
        dict[str, Tensor]: timm's ``state_dict``, contiguous.
    """
    import timm
    torch.manual_seed(seed)
    model = timm.create_model(model_name, pretrained=False, **timm_kwargs)
    generator = torch.Generator().manual_seed(seed + 1)
    return {key: (value + torch.rand(value.shape, generator=generator)).contiguous()
            for key, value in model.state_dict().items()}


def write_timm(path: str, state: Tensors) -> Tensors:
    """timm's ``state_dict`` as the hub has it: ``.safetensors``, or ``torch.save`` for ``.pth``."""
    if path.endswith('.safetensors'):
        from safetensors.torch import save_file
        save_file(state, path)
    else:
        torch.save(state, path)
    return state


def write_dinov2(path: str, state: Tensors) -> Tensors:
    """DINOv2's released backbone file: timm's names (timm adopted DINOv2's) and the masked
    image modelling token ``mask_token`` of shape ``(1, C)``."""
    width = state['cls_token'].shape[-1]
    torch.save({**state, 'mask_token': torch.zeros(1, width)}, path)
    return state


def write_mae(path: str, state: Tensors) -> Tensors:
    """MAE's released pre-training file: the encoder (no head) under ``model``."""
    torch.save({'model': {k: v for k, v in state.items() if not k.startswith('head.')}}, path)
    return state


#: timm's names of a block's parts -> OpenAI CLIP's (``visual.transformer.resblocks.N.``).
_CLIP_BLOCK = (('norm1.', 'ln_1.'), ('norm2.', 'ln_2.'), ('attn.qkv.weight', 'attn.in_proj_weight'),
               ('attn.qkv.bias', 'attn.in_proj_bias'), ('attn.proj.', 'attn.out_proj.'),
               ('mlp.fc1.', 'mlp.c_fc.'), ('mlp.fc2.', 'mlp.c_proj.'))


def _clip_name(key: str) -> str:
    if key.startswith('blocks.'):
        _, index, rest = key.split('.', 2)
        for timm_name, clip_name in _CLIP_BLOCK:
            if rest.startswith(timm_name):
                rest = clip_name + rest[len(timm_name):]
        return f'visual.transformer.resblocks.{index}.{rest}'
    for timm_name, clip_name in (('patch_embed.proj.', 'conv1.'), ('norm_pre.', 'ln_pre.'),
                                 ('norm.', 'ln_post.')):
        if key.startswith(timm_name):
            return 'visual.' + clip_name + key[len(timm_name):]
    raise KeyError(f'no OpenAI CLIP name for timm tensor {key}')


def write_openai_clip(path: str, state: Tensors, text_width: int = 32) -> Tensors:
    """OpenAI CLIP's ``state_dict`` (``model.state_dict()`` of ``clip.load``): the image tower
    in CLIP's names (``class_embedding (C)``, ``positional_embedding (N, C)``, ``conv1``
    without bias, ``ln_pre``, ``transformer.resblocks``, ``ln_post``, ``proj (C, D)``) under
    ``visual.``, and text-tower tensors beside it, which a vision backbone leaves unused."""
    out = {}
    for key, value in state.items():
        if key == 'cls_token':
            out['visual.class_embedding'] = value.reshape(-1)
        elif key == 'pos_embed':
            out['visual.positional_embedding'] = value[0]
        elif key == 'head.weight':
            out['visual.proj'] = value.t().contiguous()
        elif key != 'head.bias':  # CLIP's projection has no bias
            out[_clip_name(key)] = value
    generator = torch.Generator().manual_seed(7)
    for key, shape in (('positional_embedding', (77, text_width)),
                       ('token_embedding.weight', (49408, text_width)),
                       ('ln_final.weight', (text_width, )), ('text_projection',
                                                             (text_width, text_width)),
                       ('logit_scale', ())):
        out[key] = torch.rand(shape, generator=generator)
    torch.save(out, path)
    return state
