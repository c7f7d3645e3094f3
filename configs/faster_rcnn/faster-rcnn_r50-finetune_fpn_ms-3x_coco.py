# MMDetection's faster_rcnn/faster-rcnn_r50_fpn_ms-3x_coco.py with mmfrozen's reliable runs on
# (../_base_/common/ms_3x_coco.py).
_base_ = ['../_base_/common/ms_3x_coco.py', 'mmdet::_base_/models/faster-rcnn_r50_fpn.py']
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
