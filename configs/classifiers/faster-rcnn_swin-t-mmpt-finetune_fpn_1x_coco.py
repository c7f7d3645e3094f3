# Faster R-CNN FPN, COCO, 1x: MMDetection's R50 config with mmpretrain's Swin-T (ImageNet-1k) in
# place of its ResNet-50: outputs of all four stages, each through its own LayerNorm; feature maps
# smaller than a window are padded; fine-tuned. Weights: an mmpretrain classifier checkpoint (keys
# under `backbone.`); a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/to/swin-tiny.pth
# (frozen twins: model.backbone.module.init_cfg.checkpoint=...).
_base_ = '../faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py'
custom_imports = dict(imports=['mmfrozen', 'mmpretrain.models'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.SwinTransformer',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.2,
        pad_small_map=True,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/swin-transformer/swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth',  # noqa: E501
            prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]))
# AdamW, as MMDetection's Swin configs: no weight decay on norms and relative position tables
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys=dict(relative_position_bias_table=dict(decay_mult=0.0),
                         norm=dict(decay_mult=0.0))))
