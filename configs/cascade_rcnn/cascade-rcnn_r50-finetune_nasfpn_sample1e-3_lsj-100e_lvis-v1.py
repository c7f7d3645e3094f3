# Cascade R-CNN + NAS-FPN on LVIS v1 with large-scale jitter (0.1-2.0) for 100 epochs.
_base_ = ['../_base_/models/cascade-rcnn_r50_nasfpn.py', '../_base_/datasets/lvis-v1_detection_lsj-100e.py']
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
image_size = (1024, 1024)
batch_augments = [dict(type='BatchFixedSizePad', size=image_size)]
model = dict(
    data_preprocessor=dict(batch_augments=batch_augments),
    # the three cascade stages of the base, for LVIS's classes
    roi_head=dict(bbox_head=[
        dict(head, num_classes=1203) for head in _base_.model.roi_head.bbox_head]),
    test_cfg=dict(
        rcnn=dict(
            score_thr=0.0001,
            # LVIS allows up to 300
            max_per_img=300)))
