_base_ = 'mmdet::lvis/mask-rcnn_r101_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
