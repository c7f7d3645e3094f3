# ViTDet's Mask R-CNN (Li et al., ECCV 2022; MMDetection's projects/ViTDet) on a timm ViT-B/16:
# the last block's stride-16 map feeds the simple feature pyramid (strides 4-32, 64 for the
# RPN), heads normalised with LayerNorm (LN2d), two RPN convolutions, a 4-conv 1-fc box head.
# The ViT attends globally in every block (timm's), at 1024x1024 (large-scale jitter, padded).
# The backbone here is MAE's ViT-B/16, as ViTDet's; the configs of configs/vitdet/ set theirs.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

norm_cfg = dict(type='LN2d', requires_grad=True)
model = dict(
    data_preprocessor=dict(
        pad_size_divisor=32,
        batch_augments=[dict(type='BatchFixedSizePad', size=(1024, 1024), pad_mask=True)]),
    backbone=dict(
        _delete_=True,
        type='TimmViT',
        model_name='vit_base_patch16_224.mae',
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='timm://vit_base_patch16_224.mae')),
    neck=dict(
        _delete_=True,
        type='SimpleFeaturePyramid',
        in_channels=768,
        out_channels=256,
        num_outs=5,
        norm_cfg=norm_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))
