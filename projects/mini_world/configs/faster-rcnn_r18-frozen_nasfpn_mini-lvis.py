# Frozen twin of faster-rcnn_r18-finetune_nasfpn_mini-lvis.py: the same NAS-FPN detector (neck
# and heads identical: equal capacity) with the mini world's classifier backbone frozen
# (weights and BN statistics) for the whole training.
_base_ = ['./faster-rcnn_r18-finetune_nasfpn_mini-lvis.py', '../../../configs/_base_/frozen-backbone.py']
# mmdet's ResNet freezes its stem and all four stages, BN statistics included
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
