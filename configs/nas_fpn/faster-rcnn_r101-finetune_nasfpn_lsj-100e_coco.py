_base_ = './faster-rcnn_r50-finetune_nasfpn_lsj-100e_coco.py'
model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
