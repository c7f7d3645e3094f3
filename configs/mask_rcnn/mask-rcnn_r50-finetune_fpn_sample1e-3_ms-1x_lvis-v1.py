# MMDetection's lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py, from the same bases with
# mmfrozen's reliable runs on (../_base_/default_runtime.py, schedules/schedule_1x.py, datasets/).
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', '../_base_/datasets/lvis-v1_instance.py',
    '../_base_/schedules/schedule_1x.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmfrozen'], allow_failed_imports=False)
model = dict(
    roi_head=dict(bbox_head=dict(num_classes=1203), mask_head=dict(num_classes=1203)),
    test_cfg=dict(
        rcnn=dict(
            score_thr=0.0001,
            # LVIS allows up to 300
            max_per_img=300)))
