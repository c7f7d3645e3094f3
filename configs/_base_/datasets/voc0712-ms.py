# Pascal VOC 07+12 with multi-scale training (shorter side 480-600 of 1000x600, the VOC analogue
# of COCO's 640-800 of 1333x800), otherwise MMDetection's VOC set-up.
_base_ = 'mmdet::_base_/datasets/voc0712.py'

backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=[(1000, 480), (1000, 600)], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    dataset=dict(
        dataset=dict(datasets=[
            dict(
                type='VOCDataset',
                data_root='data/VOCdevkit/',
                ann_file='VOC2007/ImageSets/Main/trainval.txt',
                data_prefix=dict(sub_data_root='VOC2007/'),
                filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
                pipeline=train_pipeline,
                backend_args=backend_args),
            dict(
                type='VOCDataset',
                data_root='data/VOCdevkit/',
                ann_file='VOC2012/ImageSets/Main/trainval.txt',
                data_prefix=dict(sub_data_root='VOC2012/'),
                filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
                pipeline=train_pipeline,
                backend_args=backend_args)
        ])))
