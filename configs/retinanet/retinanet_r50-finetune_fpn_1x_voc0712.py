# MMDetection's pascal_voc/retinanet_r50_fpn_1x_voc0712.py, from the same bases with mmfrozen's
# reliable runs on (../_base_/default_runtime.py, schedules/voc-1x.py).
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py', 'mmdet::_base_/datasets/voc0712.py',
    '../_base_/schedules/voc-1x.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
model = dict(bbox_head=dict(num_classes=20))
