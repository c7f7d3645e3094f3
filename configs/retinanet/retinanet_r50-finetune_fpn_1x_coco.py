# MMDetection's retinanet/retinanet_r50_fpn_1x_coco.py, from the same bases with mmfrozen's
# reliable runs on (../_base_/default_runtime.py, schedules/schedule_1x.py, datasets/).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', '../_base_/datasets/coco_detection.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py',
    'mmdet::retinanet/retinanet_tta.py'
]
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
