_base_ = 'mmdet::faster_rcnn/faster-rcnn_r101_fpn_ms-3x_coco.py'
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
