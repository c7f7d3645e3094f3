# MMDetection's schedule for Pascal VOC (pascal_voc/*_1x_voc0712.py): the set is repeated 3 times
# an epoch (mmdet's voc0712.py), so 4 epochs are 12 passes, with the learning rate divided by 10
# after 9. The exact-resume loop: --resume continues bit for bit (docs/reliable_runs.md).
# Off: train_cfg = dict(type='EpochBasedTrainLoop')
max_epochs = 4
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[3], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
auto_scale_lr = dict(enable=False, base_batch_size=16)
