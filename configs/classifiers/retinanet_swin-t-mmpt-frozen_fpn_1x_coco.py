_base_ = [
    './retinanet_swin-t-mmpt-finetune_fpn_1x_coco.py',
    '../_base_/classifiers/swin-t_mmpretrain_frozen.py'
]
# the whole trunk frozen by the FrozenModule builder: every weight, the norm layers' affine
# parameters and statistics, and eval mode for good (no drop-path)
model = dict(backbone=dict(_delete_=True, type='FrozenModule', module=_base_.model.backbone))
