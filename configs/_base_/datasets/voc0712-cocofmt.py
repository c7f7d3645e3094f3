# Pascal VOC 07+12 through its COCO-format conversion, as few-shot detection trains and scores
# on it: trained on VOC 2007+2012 trainval, scored on VOC 2007 test, both read from the files
# MMDetection's converter writes
#   python <mmdet>/.mim/tools/dataset_converters/pascal_voc.py data/VOCdevkit \
#       -o data/VOCdevkit/annotations --out-format coco
# (voc0712_trainval.json, voc07_test.json; "difficult" boxes become crowd regions, ignored as
# VOC ignores them). The sets are checked (./coco_detection.py: CheckedCocoDataset) and scored by
# CocoStratifiedMetric (AP per bin of training boxes from voc0712_trainval.json). Scales as
# TFA's (Wang et al., 2020): shorter side 480-800 for training, 800 for testing, longer side at
# most 1333.
_base_ = './coco_detection.py'

data_root = 'data/VOCdevkit/'
voc_classes = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
               'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
               'sheep', 'sofa', 'train', 'tvmonitor')
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 480), (1333, 512), (1333, 544), (1333, 576), (1333, 608), (1333, 640),
                (1333, 672), (1333, 704), (1333, 736), (1333, 768), (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/voc0712_trainval.json',
        data_prefix=dict(img=''),
        metainfo=dict(classes=voc_classes),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/voc07_test.json',
        data_prefix=dict(img=''),
        metainfo=dict(classes=voc_classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoStratifiedMetric',
    ann_file=data_root + 'annotations/voc07_test.json',
    train_ann_file=data_root + 'annotations/voc0712_trainval.json',
    metric='bbox')
test_evaluator = val_evaluator
