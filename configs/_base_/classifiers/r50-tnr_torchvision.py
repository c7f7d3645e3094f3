# torchvision's ResNet-50 of the new training recipe (IMAGENET1K_V2, 80.9 % top-1, against 76.1 %
# for the `torchvision://resnet50` weights of MMDetection's R50 configs) through mmdet's own
# ResNet, whose keys are torchvision's: the state_dict file loads as it is, by init_cfg. A local
# copy: --cfg-options model.backbone.init_cfg.checkpoint=/path/to/resnet50-11ad3fa6.pth
# Optimizer: MMDetection's for these weights (faster-rcnn_r50-tnr-pre_fpn_1x_coco.py).
# Every field here is one a detector config takes over its base's (configs/classifiers/ read
# this file with mmengine.Config.fromfile, as mmengine refuses a field that two bases set).
checkpoint = 'https://download.pytorch.org/models/resnet50-11ad3fa6.pth'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0.0, bypass_duplicate=True))
del checkpoint  # a name for init_cfg's URL, not a field
