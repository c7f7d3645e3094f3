# Faster R-CNN on LVIS v1 as MMDetection's LVIS Mask R-CNN, without the mask head.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py', '../_base_/datasets/lvis-v1_detection.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
model = dict(
    roi_head=dict(bbox_head=dict(num_classes=1203)),
    test_cfg=dict(
        rcnn=dict(
            score_thr=0.0001,
            # LVIS allows up to 300
            max_per_img=300)))
