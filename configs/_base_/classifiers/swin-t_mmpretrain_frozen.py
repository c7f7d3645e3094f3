# ../frozen-backbone.py for mmpretrain's Swin-T, the base of its frozen configs beside their
# fine-tuned twin (../../classifiers/*_swin-t-mmpt-finetune_*.py). Verified frozen and loaded: the
# classifier's parts; its output norms norm0-norm2 for the FPN are in no classifier checkpoint,
# as ConvNeXt's (./convnext-t_mmpretrain_frozen.py), and are left out of the check.
_base_ = '../frozen-backbone.py'
frozen = dict(modules=['backbone.patch_embed', 'backbone.stages', 'backbone.norm3'])
