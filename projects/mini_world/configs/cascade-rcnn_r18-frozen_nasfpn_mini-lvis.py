# Frozen twin of cascade-rcnn_r18-finetune_nasfpn_mini-lvis.py: the same Cascade R-CNN + NAS-FPN
# (neck and heads identical: equal capacity) with the mini world's classifier backbone frozen
# (weights and BN statistics) for the whole training.
_base_ = ['./cascade-rcnn_r18-finetune_nasfpn_mini-lvis.py', '../../../configs/_base_/frozen-backbone.py']
# mmdet's ResNet freezes its stem and all four stages, BN statistics included
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
