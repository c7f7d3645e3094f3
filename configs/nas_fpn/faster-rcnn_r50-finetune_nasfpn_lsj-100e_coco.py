# Faster R-CNN + NAS-FPN with large-scale jitter (0.1-2.0) for 100 epochs (MMDetection's LSJ
# recipe, batch 64): the paper's compensating capacity for a frozen backbone.
_base_ = [
    '../_base_/models/faster-rcnn_r50_nasfpn.py', '../_base_/common/lsj-100e_coco-detection.py'
]
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
image_size = (1024, 1024)
batch_augments = [dict(type='BatchFixedSizePad', size=image_size)]
model = dict(data_preprocessor=dict(batch_augments=batch_augments))
