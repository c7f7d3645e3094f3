# Faster R-CNN FPN, COCO, 1x: MMDetection's R50 config with torchvision's ResNet-50 weights of the
# new training recipe (IMAGENET1K_V2, 80.9 % top-1, against 76.1 % for torchvision://resnet50) in
# its ResNet-50, whose keys are torchvision's: the state_dict file loads as it is; fine-tuned. A
# local copy:
#   --cfg-options model.backbone.init_cfg.checkpoint=/path/to/resnet50-11ad3fa6.pth
_base_ = '../faster_rcnn/faster-rcnn_r50-finetune_fpn_1x_coco.py'
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained',
                      checkpoint='https://download.pytorch.org/models/resnet50-11ad3fa6.pth')))
# MMDetection's optimizer for these weights (faster-rcnn_r50-tnr-pre_fpn_1x_coco.py)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0.0, bypass_duplicate=True))
