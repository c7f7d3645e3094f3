# The tiny Faster R-CNN with its backbone frozen and loaded from a checkpoint: a detector that a
# DetectorGroup can share (group_tiny.py). Point the checkpoint at a file with
# model.backbone.init_cfg.checkpoint=... (tests write one: a ResNet-18 of width 16's state dict).
_base_ = './faster-rcnn_r18-tiny_fpn_coco.py'

model = dict(
    backbone=dict(frozen_stages=4, norm_eval=True,
                  init_cfg=dict(_delete_=True, type='Pretrained',
                                checkpoint='tiny_backbone.pth')))
runner_type = 'FrozenBackboneRunner'
frozen = dict(modules=['backbone'], check=True, allow_uninitialized=False)
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop')
randomness = dict(seed=0, deterministic=True)
