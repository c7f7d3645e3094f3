_base_ = ['./mask-rcnn_r50-finetune_fpn_sample1e-3_ms-1x_lvis-v1.py', '../_base_/frozen-backbone.py']
# mmdet's ResNet freezes its stem and all four stages, BN statistics included
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
