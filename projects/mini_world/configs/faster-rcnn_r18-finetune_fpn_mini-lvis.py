# Downstream of the mini reproduction, fine-tuned twin: Faster R-CNN + FPN on mini-LVIS (the
# long-tailed LVIS v1-format set of tools/mini_reproduction.py, 128x128 images, 30 categories),
# with the mini world's classifier (./classifier_r18-w16_8e_mini-world.py) as the
# pre-trained ResNet-18 (base width 16), trained end to end (frozen_stages=-1). BN statistics stay
# the classifier's (norm_eval, as MMDetection does for small batches).
# The paths below are tools/mini_reproduction.py's defaults; it passes its own with --cfg-options.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py', '../../../configs/_base_/datasets/lvis-v1_detection.py',
    '../../../configs/_base_/default_runtime.py'
]
# the mini world's dataset, model and metric (this project's package; mmfrozen does not know it)
custom_imports = dict(imports=['mmfrozen', 'projects.mini_world.mini_world'], allow_failed_imports=False)

data_root = 'work_dirs/mini_reproduction/data/mini_lvis/'
backbone_checkpoint = 'work_dirs/mini_reproduction/classifier/backbone_r18-w16.pth'
classes = ('blue_striped_square', 'red_solid_heart', 'blue_solid_square', 'red_solid_cross',
           'green_striped_square', 'yellow_solid_square', 'blue_striped_star',
           'yellow_solid_arrow', 'green_striped_triangle', 'yellow_solid_crescent',
           'green_solid_cross', 'green_striped_star', 'yellow_solid_triangle',
           'yellow_striped_cross', 'blue_solid_cross', 'green_striped_crescent',
           'blue_solid_heart', 'red_striped_heart', 'yellow_solid_heart', 'green_solid_arrow',
           'blue_striped_crescent', 'red_striped_square', 'yellow_striped_crescent',
           'yellow_solid_star', 'blue_striped_heart', 'blue_striped_circle', 'red_striped_arrow',
           'blue_striped_triangle', 'red_solid_square', 'yellow_solid_circle')
max_epochs = 6

model = dict(
    backbone=dict(
        depth=18,
        base_channels=16,
        frozen_stages=-1,
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=128, num_classes=len(classes))),
    # At most a handful of objects in a 128x128 image: fewer proposals and RoIs than COCO's.
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=300),
        # LVIS allows up to 300 detections per image
        rcnn=dict(score_thr=0.0001, max_per_img=300)))

image_scale = (128, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        dataset=dict(
            data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline)))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='LVISStratifiedMetric',
    ann_file=data_root + 'annotations/lvis_v1_val.json',
    train_ann_file=data_root + 'annotations/lvis_v1_train.json')
test_evaluator = val_evaluator

# the exact-resume loop of mmfrozen's reliable runs, as the shipped schedules have it
train_cfg = dict(
    type='ExactResumeEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[max_epochs - 2], gamma=0.1)
]

# the base's hooks (NonFiniteLossHook: reliable runs) and the cost report
custom_hooks = [*_base_.custom_hooks, dict(type='CostReportHook')]
default_hooks = dict(
    logger=dict(interval=20),
    # every epoch, so that an interrupted run resumes (projects/mini_world/tools/mini_reproduction.py does)
    checkpoint=dict(interval=1, max_keep_ckpts=1, save_last=True))
randomness = dict(seed=0)
