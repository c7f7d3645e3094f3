# Upstream of the mini reproduction: the mini world's "ImageNet" classifier. A ResNet-18 of base
# width 16 (the detectors' backbone), global pooling and a linear head, trained on the balanced
# classification set that projects/mini_world/tools/mini_reproduction.py renders (64 classes, 48x48 images,
# objects of 22-41 pixels as in the detection images).
# Its `backbone.*` weights become the detectors' pre-trained backbone
# (projects.mini_world.mini_world.backbone_export).
# MMDetection's runtime with mmfrozen's reliable-runs hooks (atomic checkpoints, NaN stops)
_base_ = '../../../configs/_base_/default_runtime.py'
# the mini world's dataset, model and metric (this project's package; mmfrozen does not know it)
custom_imports = dict(imports=['mmfrozen', 'projects.mini_world.mini_world'], allow_failed_imports=False)

data_root = 'work_dirs/mini_reproduction/data/classification/'
max_epochs = 8

model = dict(
    type='MiniWorldClassifier',
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=16,
        out_indices=(3, ),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch'),
    num_classes=64,
    # The detectors' normalisation (mmdet's DetDataPreprocessor after bgr_to_rgb): the arrays
    # are RGB already, so the backbone sees the same input statistics upstream and downstream.
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]))

train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='MiniWorldClassificationDataset', data_file=data_root + 'train.npz'))
val_dataloader = dict(
    batch_size=128,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='MiniWorldClassificationDataset', data_file=data_root + 'val.npz'))
test_dataloader = val_dataloader
val_evaluator = dict(type='MiniWorldAccuracy')
test_evaluator = val_evaluator

# the exact-resume loop of mmfrozen's reliable runs, as the shipped schedules have it
train_cfg = dict(
    type='ExactResumeEpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=5e-4, nesterov=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs,
         convert_to_iter_based=True),
]

default_hooks = dict(
    logger=dict(interval=20),
    # every epoch, so that an interrupted run resumes (projects/mini_world/tools/mini_reproduction.py does)
    checkpoint=dict(interval=1, max_keep_ckpts=1, save_last=True))
randomness = dict(seed=0)
