# timm's ConvNeXt-T (ImageNet-1k, convnext_tiny.fb_in1k) in place of mmdet's ResNet-50, through
# mmpretrain's TIMMBackbone: timm's feature pyramid (features_only, strides 4-32). The weights are
# timm's own file, loaded by init_cfg through mmfrozen's timm:// scheme (mmfrozen/models/
# timm_weights.py): a timm model name (fetched from the Hugging Face hub as timm does), or a local
# timm state_dict: --cfg-options model.backbone.init_cfg.checkpoint=timm:///path/model.safetensors
# (frozen configs: model.backbone.module.init_cfg.checkpoint=...). Not timm's own pretrained=True:
# timm loads a feature extractor's weights leniently, where no freeze check can see it.
# Optimizer: AdamW as MMDetection's ConvNeXt and Swin configs.
# Every field here is one a detector config takes over its base's (configs/classifiers/ read
# this file with mmengine.Config.fromfile, as mmengine refuses a field that two bases set).
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
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bypass_duplicate=True))
