_base_ = [
    './faster-rcnn_convnext-t-mmpt-finetune_fpn_sample1e-3_ms-1x_lvis-v1.py',
    '../_base_/frozen-backbone.py'
]
# the whole trunk frozen by the FrozenModule builder: every weight, the norm layers' affine
# parameters and statistics, and eval mode for good (no drop-path)
model = dict(backbone=dict(_delete_=True, type='FrozenModule', module=_base_.model.backbone))
# Verified frozen and loaded: the classifier's parts. norm0-norm2 normalise stages 0-2 for
# the FPN and are not in a classifier checkpoint (it has the final norm3 only): frozen too,
# at their identity affine (the FPN's 1x1 lateral convolutions learn any per-channel scale
# and shift), they are left out of the check that every tensor came from the checkpoint.
frozen = dict(modules=['backbone.downsample_layers', 'backbone.stages', 'backbone.norm3'])
