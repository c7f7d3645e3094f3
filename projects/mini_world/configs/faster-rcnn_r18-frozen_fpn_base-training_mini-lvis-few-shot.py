# Frozen twin of faster-rcnn_r18-finetune_fpn_base-training_mini-lvis-few-shot.py: base training
# with the mini world's classifier backbone frozen (weights and BN statistics).
_base_ = [
    './faster-rcnn_r18-finetune_fpn_base-training_mini-lvis-few-shot.py',
    '../../../configs/_base_/frozen-backbone.py'
]
# mmdet's ResNet freezes its stem and all four stages, BN statistics included
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
