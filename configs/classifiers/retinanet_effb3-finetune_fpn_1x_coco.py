# RetinaNet FPN, COCO, 1x: MMDetection's R50 config with EfficientNet-B3 (ImageNet-1k) in place of
# its ResNet-50, through mmdet's EfficientNet: stages 2-5 (strides 4-32), trainable BN as
# MMDetection's EfficientNet config (single-process BN here, not SyncBN), fine-tuned. Weights: an
# mmpretrain classifier checkpoint (keys under `backbone.`); a local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/to/efficientnet-b3.pth
# (frozen twins: model.backbone.module.init_cfg.checkpoint=...).
_base_ = '../retinanet/retinanet_r50-finetune_fpn_1x_coco.py'
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
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/efficientnet/efficientnet-b3_3rdparty_8xb32-aa_in1k_20220119-5b4887a0.pth',  # noqa: E501
            prefix='backbone.')),
    neck=dict(in_channels=[32, 48, 136, 384]))
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.0, bypass_duplicate=True))
