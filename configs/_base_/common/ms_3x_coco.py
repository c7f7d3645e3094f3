# MMDetection's multi-scale 3x COCO recipe (runtime, data and schedule in one file) with
# mmfrozen's reliable runs on, as ../default_runtime.py, ../schedules/schedule_1x.py and
# ../datasets/coco_detection.py turn them on elsewhere (docs/reliable_runs.md). Each off:
#   train_cfg = dict(type='EpochBasedTrainLoop')
#   default_hooks = dict(checkpoint=dict(type='CheckpointHook'))
#   custom_hooks = []
#   train_dataloader = dict(dataset=dict(dataset=dict(type='CocoDataset'))) (inside RepeatDataset;
#   val_dataloader = dict(dataset=dict(type='CocoDataset')) likewise)
_base_ = 'mmdet::common/ms_3x_coco.py'

dataset_type = 'CheckedCocoDataset'
train_dataloader = dict(dataset=dict(dataset=dict(type=dataset_type)))
val_dataloader = dict(dataset=dict(type=dataset_type))
test_dataloader = val_dataloader
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop')
default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook'))
custom_hooks = [dict(type='NonFiniteLossHook')]
