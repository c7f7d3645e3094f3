# Faster R-CNN FPN, LVIS v1 (repeat-factor sampling 1e-3, multi-scale), 1x: MMDetection's R50 config
# with timm's ConvNeXt-T (ImageNet-1k, convnext_tiny.fb_in1k) in place of its ResNet-50, through
# mmpretrain's TIMMBackbone: timm's feature pyramid (features_only, strides 4-32), fine-tuned.
# Weights: timm's own file, loaded by init_cfg through mmfrozen's timm:// scheme
# (mmfrozen/models/timm_weights.py), fetched from the Hugging Face hub as timm does; a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=timm:///path/model.safetensors
# (frozen twins: model.backbone.module.init_cfg.checkpoint=...). Not timm's own pretrained=True:
# timm loads a feature extractor's weights leniently, where no freeze check can see it.
_base_ = '../faster_rcnn/faster-rcnn_r50-finetune_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['mmfrozen', 'mmpretrain.models'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.TIMMBackbone',
        model_name='convnext_tiny',
        features_only=True,
        pretrained=False,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.4,
        init_cfg=dict(type='Pretrained', checkpoint='timm://convnext_tiny.fb_in1k')),
    neck=dict(in_channels=[96, 192, 384, 768]))
# AdamW, as MMDetection's ConvNeXt and Swin configs
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bypass_duplicate=True))
