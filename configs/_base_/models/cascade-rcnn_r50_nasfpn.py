# Cascade R-CNN R50 with a NAS-FPN neck (7 stacked cells on P3-P7, BN) in place of FPN: the paper's
# added capacity on top of a frozen backbone. Levels start at stride 8, so the RPN anchors and
# RoI strides move one level up; anchor scale 4 keeps the smallest anchor at 32 pixels, as with FPN.
_base_ = 'mmdet::_base_/models/cascade-rcnn_r50_fpn.py'

model = dict(
    # 128 = the coarsest stride, so NAS-FPN's merged feature maps line up.
    data_preprocessor=dict(pad_size_divisor=128),
    neck=dict(
        _delete_=True,
        type='NASFPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=5,
        stack_times=7,
        start_level=1,
        norm_cfg=dict(type='BN', requires_grad=True)),
    rpn_head=dict(anchor_generator=dict(scales=[4], strides=[8, 16, 32, 64, 128])),
    roi_head=dict(bbox_roi_extractor=dict(featmap_strides=[8, 16, 32, 64])),
    train_cfg=dict(rpn=dict(allowed_border=-1)))
