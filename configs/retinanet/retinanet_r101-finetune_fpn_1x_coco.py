_base_ = 'mmdet::retinanet/retinanet_r101_fpn_1x_coco.py'
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
