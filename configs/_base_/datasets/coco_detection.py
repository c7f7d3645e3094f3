# MMDetection's COCO detection set-up with the annotation files checked when the datasets are
# built, train and val/test (CheckedCocoDataset, docs/reliable_runs.md: a bad box, id or field
# is an error naming the file, the id and the field; an unreadable image names the file).
# Off: train_dataloader = dict(dataset=dict(type='CocoDataset')) (val_dataloader likewise).
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

dataset_type = 'CheckedCocoDataset'
train_dataloader = dict(dataset=dict(type=dataset_type))
val_dataloader = dict(dataset=dict(type=dataset_type))
test_dataloader = val_dataloader
