# Frozen twin of faster-rcnn_r18-finetune_fpn_kshot-fine-tuning_mini-lvis-few-shot.py (the paper's
# arm): from the frozen base detector after the surgery, the classifier backbone frozen (weights
# and BN statistics) in this stage too; neck, RPN and RoI head train.
_base_ = [
    './faster-rcnn_r18-finetune_fpn_kshot-fine-tuning_mini-lvis-few-shot.py',
    '../../../configs/_base_/frozen-backbone.py'
]
# mmdet's ResNet freezes its stem and all four stages, BN statistics included
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
