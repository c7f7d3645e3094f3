_base_ = './cascade-rcnn_r50-finetune_nasfpn_sample1e-3_lsj-1x_lvis-v1.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
