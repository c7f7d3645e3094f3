# MMDetection's 1x schedule with the exact-resume loop: --resume continues bit for bit, from the
# checkpoint's batch (docs/reliable_runs.md). Off: train_cfg = dict(type='EpochBasedTrainLoop')
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

train_cfg = dict(type='ExactResumeEpochBasedTrainLoop')
