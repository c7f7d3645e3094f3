# The third arm: the frozen DINOv2 ViT-B/14 of ../vitdet/'s frozen config, with a rank-8 LoRA on
# each attention and MLP linear layer of every block (LoRAAdapters; their B at zero: training
# starts from the frozen detector). Only the adapters train in the backbone; the runner and its
# hook verify the ViT itself (frozen.modules) bit for bit, and that it came from the checkpoint.
_base_ = '../vitdet/mask-rcnn_vit-b-dinov2-frozen_sfp_lsj-100e_coco.py'
model = dict(
    backbone=dict(
        _delete_=True,
        type='FrozenModule',
        trainable=['adapters'],
        module=dict(type='LoRAAdapters', rank=8, module=_base_.model.backbone.module)))
frozen = dict(modules=['backbone.vit'])
# one learning rate for the adapters (LoRA's practice), no weight decay on biases and norms
optim_wrapper = dict(
    constructor='DefaultOptimWrapperConstructor',
    paramwise_cfg=dict(_delete_=True, norm_decay_mult=0.0, bias_decay_mult=0.0))
