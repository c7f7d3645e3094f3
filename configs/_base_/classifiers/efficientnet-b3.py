# EfficientNet-B3 (ImageNet-1k) in place of mmdet's ResNet-50, through mmdet's EfficientNet:
# stages 2-5 (strides 4-32, 32/48/136/384 channels), trainable BN as MMDetection's EfficientNet
# config (single-process BN here, not SyncBN). The weights are an mmpretrain classifier
# checkpoint (keys under `backbone.`), loaded by init_cfg; a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/to/efficientnet-b3.pth
# (frozen configs: model.backbone.module.init_cfg.checkpoint=...).
# Every field here is one a detector config takes over its base's (configs/classifiers/ read
# this file with mmengine.Config.fromfile, as mmengine refuses a field that two bases set).
checkpoint = 'https://download.openmmlab.com/mmclassification/v0/efficientnet/efficientnet-b3_3rdparty_8xb32-aa_in1k_20220119-5b4887a0.pth'  # noqa: E501
model = dict(
    backbone=dict(
        _delete_=True,
        type='EfficientNet',
        arch='b3',
        drop_path_rate=0.2,
        out_indices=(2, 3, 4, 5),
        frozen_stages=0,
        norm_cfg=dict(type='BN', requires_grad=True, eps=1e-3, momentum=0.01),
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')),
    neck=dict(in_channels=[32, 48, 136, 384]))
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.0, bypass_duplicate=True))
del checkpoint  # a name for init_cfg's URL, not a field
