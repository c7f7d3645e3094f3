_base_ = ['./retinanet_r101-finetune_fpn_1x_voc0712.py', '../_base_/frozen-backbone.py']
# mmdet's ResNet freezes its stem and all four stages, BN statistics included
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
