# ../frozen-backbone.py for mmpretrain's ConvNeXt-T, the base of its frozen configs beside their
# fine-tuned twin (../../classifiers/*_convnext-t-mmpt-finetune_*.py). Verified frozen and loaded:
# the classifier's parts. norm0-norm2 normalise stages 0-2 for the FPN and are not in a classifier
# checkpoint (it has the final norm3 only): frozen too, at their identity affine (the FPN's 1x1
# lateral convolutions learn any per-channel scale and shift), they are left out of the check
# that every tensor came from the checkpoint.
_base_ = '../frozen-backbone.py'
frozen = dict(modules=['backbone.downsample_layers', 'backbone.stages', 'backbone.norm3'])
