# MMDetection's large-scale-jitter COCO instance-segmentation recipe (runtime, data with masks
# and 100-epoch schedule in one file) with mmfrozen's reliable runs on, as
# ./lsj-100e_coco-detection.py turns them on for boxes (docs/reliable_runs.md). Each off:
#   train_cfg = dict(type='EpochBasedTrainLoop')
#   default_hooks = dict(checkpoint=dict(type='CheckpointHook'))
#   custom_hooks = []
#   train_dataloader = dict(dataset=dict(dataset=dict(type='CocoDataset'))) (inside RepeatDataset;
#   val_dataloader = dict(dataset=dict(type='CocoDataset')) likewise)
_base_ = 'mmdet::common/lsj-100e_coco-instance.py'

dataset_type = 'CheckedCocoDataset'
train_dataloader = dict(dataset=dict(dataset=dict(type=dataset_type)))
val_dataloader = dict(dataset=dict(type=dataset_type))
test_dataloader = val_dataloader
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop')
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
custom_hooks = [dict(type='NonFiniteLossHook')]
