# MMDetection's LVIS v1 set-up (repeat-factor sampling with threshold 1e-3, multi-scale 640-800
# training, masks) with the annotation files checked when the datasets are built, the set inside
# ClassBalancedDataset and val/test (CheckedLVISV1Dataset: the LVIS fields too,
# docs/reliable_runs.md).
# Off: train_dataloader = dict(dataset=dict(dataset=dict(type='LVISV1Dataset'))) (and
# val_dataloader = dict(dataset=dict(type='LVISV1Dataset'))).
_base_ = 'mmdet::_base_/datasets/lvis_v1_instance.py'

dataset_type = 'CheckedLVISV1Dataset'
train_dataloader = dict(dataset=dict(dataset=dict(type=dataset_type)))
val_dataloader = dict(dataset=dict(type=dataset_type))
test_dataloader = val_dataloader
