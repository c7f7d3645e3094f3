_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py', '../_base_/datasets/voc0712-ms.py',
    '../_base_/schedules/voc-3x.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
model = dict(roi_head=dict(bbox_head=dict(num_classes=20)))
