# Faster R-CNN FPN, COCO, 1x: MMDetection's R50 config with mmpretrain's ConvNeXt-T (ImageNet-1k) in
# place of its ResNet-50, as MMDetection's ConvNeXt configs build it (outputs of all four stages,
# each through its own LayerNorm), fine-tuned. Weights: an mmpretrain classifier checkpoint (keys
# under `backbone.`); a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/to/convnext-tiny.pth
# (frozen twins: model.backbone.module.init_cfg.checkpoint=...).
_base_ = '../faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py'
custom_imports = dict(imports=['mmfrozen', 'mmpretrain.models'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ConvNeXt',
        arch='tiny',
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        gap_before_final_norm=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext/convnext-tiny_32xb128_in1k_20221207-998cf3e9.pth',  # noqa: E501
            prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]))
# AdamW, as MMDetection's ConvNeXt and Swin configs
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bypass_duplicate=True))
