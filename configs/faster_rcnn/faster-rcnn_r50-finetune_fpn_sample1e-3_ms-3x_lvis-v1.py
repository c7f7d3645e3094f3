_base_ = './faster-rcnn_r50-finetune_fpn_sample1e-3_ms-1x_lvis-v1.py'
# 3x: 36 epochs, the learning rate divided by 10 after 27 and 33 (COCO's ms-3x length).
max_epochs = 36
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[27, 33],
         gamma=0.1)
]
