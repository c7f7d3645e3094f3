_base_ = ['./cascade-rcnn_r101-finetune_nasfpn_sample1e-3_lsj-100e_lvis-v1.py', '../_base_/frozen-backbone.py']
# mmdet's ResNet freezes its stem and all four stages, BN statistics included
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
