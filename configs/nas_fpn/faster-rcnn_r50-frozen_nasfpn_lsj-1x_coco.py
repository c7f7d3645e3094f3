_base_ = ['./faster-rcnn_r50-finetune_nasfpn_lsj-1x_coco.py', '../_base_/frozen-backbone.py']
# mmdet's ResNet freezes its stem and all four stages, BN statistics included
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
