# The paper's strongest trained parts in the mini world, fine-tuned twin: Cascade R-CNN + NAS-FPN.
# faster-rcnn_r18-finetune_nasfpn_mini-lvis.py (same classifier backbone, data, schedule and
# NAS-FPN neck) with MMDetection's three-stage Cascade R-CNN box heads (IoU 0.5, 0.6, 0.7,
# class-agnostic regression, the stages' target stds and loss weights of
# mmdet::_base_/models/cascade-rcnn_r50_fpn.py), each stage the mini world's wide box head
# (64-channel RoIs, fc 256). Each stage samples 64 RoIs an image (192 over the three, against
# the Faster R-CNN's 128): with 128 a stage, a training step of the frozen twin cost 2.6x the
# frozen wide FPN's FLOPs and 2.1x its time; with 64, 1.9x and 1.5x (tools/cost.py, CPU).
# (Its box heads are a list: --cfg-options set num_classes per stage,
# model.roi_head.bbox_head.<i>.num_classes, as projects/mini_world/tools/mini_schedule_sweep.py
# does.)
_base_ = './faster-rcnn_r18-finetune_nasfpn_mini-lvis.py'

model = dict(
    type='CascadeRCNN',
    roi_head=dict(
        _delete_=True,
        type='CascadeRoIHead',
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=64,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=[
            dict(
                type='Shared2FCBBoxHead',
                in_channels=64,
                fc_out_channels=256,
                roi_feat_size=7,
                num_classes=len(_base_.classes),
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=[0.1, 0.1, 0.2, 0.2]),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
            dict(
                type='Shared2FCBBoxHead',
                in_channels=64,
                fc_out_channels=256,
                roi_feat_size=7,
                num_classes=len(_base_.classes),
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=[0.05, 0.05, 0.1, 0.1]),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
            dict(
                type='Shared2FCBBoxHead',
                in_channels=64,
                fc_out_channels=256,
                roi_feat_size=7,
                num_classes=len(_base_.classes),
                bbox_coder=dict(
                    type='DeltaXYWHBBoxCoder',
                    target_means=[0., 0., 0., 0.],
                    target_stds=[0.033, 0.033, 0.067, 0.067]),
                reg_class_agnostic=True,
                loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
        ]),
    train_cfg=dict(rcnn=[
        dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=iou,
                neg_iou_thr=iou,
                min_pos_iou=iou,
                match_low_quality=False,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=64,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False) for iou in (0.5, 0.6, 0.7)
    ]))
