_base_ = './faster-rcnn_r50-finetune_nasfpn_lsj-100e_coco.py'
# 1x length: 12 epochs of the set (no 4x repeat), learning rate divided by 10 after 8 and 11.
max_epochs = 12
train_dataloader = dict(dataset=dict(times=1))
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.067, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11],
         gamma=0.1)
]
