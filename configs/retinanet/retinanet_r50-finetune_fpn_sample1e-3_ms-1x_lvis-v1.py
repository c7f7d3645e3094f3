_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', '../_base_/datasets/lvis-v1_detection.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
model = dict(
    bbox_head=dict(num_classes=1203),
    # LVIS allows up to 300 detections per image
    test_cfg=dict(score_thr=0.0001, max_per_img=300))
# RetinaNet's learning rate, as mmdet's retinanet_r50_fpn_1x_coco.py
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
