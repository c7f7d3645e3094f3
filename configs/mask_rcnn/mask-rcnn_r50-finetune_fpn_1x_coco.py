# MMDetection's mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py, from the same bases with mmfrozen's
# reliable runs on (../_base_/default_runtime.py, schedules/schedule_1x.py, datasets/).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
