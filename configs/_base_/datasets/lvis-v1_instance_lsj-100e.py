# LVIS v1 instance segmentation with MMDetection's large-scale jitter recipe (scale 0.1-2.0 of
# 1024, crop 1024, flip, masks; 25 epochs of a 4x repeated set = 100 epochs), sampled with
# repeat factors (threshold 1e-3) as MMDetection's LVIS configs, evaluated on boxes and masks.
# Reliable runs on, from the COCO recipe (../common/lsj-100e_coco-instance.py), the annotation
# files checked (CheckedLVISV1Dataset). Checks off (the set is inside RepeatDataset and
# ClassBalancedDataset):
#   train_dataloader = dict(dataset=dict(dataset=dict(dataset=dict(type='LVISV1Dataset'))))
#   val_dataloader = dict(dataset=dict(type='LVISV1Dataset'))
_base_ = '../common/lsj-100e_coco-instance.py'

dataset_type = 'CheckedLVISV1Dataset'
data_root = 'data/lvis_v1/'
train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            _delete_=True,
            type='ClassBalancedDataset',
            oversample_thr=1e-3,
            dataset=dict(
                type=dataset_type,
                data_root=data_root,
                ann_file='annotations/lvis_v1_train.json',
                data_prefix=dict(img=''),
                filter_cfg=dict(filter_empty_gt=True, min_size=32),
                pipeline={{_base_.train_pipeline}}))))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/lvis_v1_val.json',
        data_prefix=dict(img='')))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='LVISMetric',
    ann_file=data_root + 'annotations/lvis_v1_val.json',
    metric=['bbox', 'segm'])
test_evaluator = val_evaluator
