_base_ = './faster-rcnn_r50-finetune_nasfpn_sample1e-3_lsj-100e_lvis-v1.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
