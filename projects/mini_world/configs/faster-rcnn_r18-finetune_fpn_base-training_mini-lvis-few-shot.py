# Few-shot detection in the mini world, stage 1: base training, fine-tuned twin. The mini
# world's Faster R-CNN R18 FPN (./faster-rcnn_r18-finetune_fpn_mini-lvis.py) trained on the base
# classes only: the frequent and common tiers of the few-shot mini-LVIS
# (projects/mini_world/tools/mini_few_shot.py renders it: the same 30 classes, the rare tier given
# enough images to draw K-shot sets from), the novel (rare-tier) annotations and categories taken
# out of the files (annotations/lvis_v1_{train,val}_base.json), so that novel objects are
# unlabelled background, as in TFA's base training. Scored on the base classes.
# The paths below are tools/mini_few_shot.py's defaults; it passes its own with --cfg-options.
_base_ = './faster-rcnn_r18-finetune_fpn_mini-lvis.py'

data_root = 'work_dirs/mini_few_shot/data/mini_lvis_few_shot/'
backbone_checkpoint = 'work_dirs/mini_few_shot/classifier/backbone_r18-w16.pth'
base_classes = ('blue_striped_square', 'red_solid_heart', 'blue_solid_square', 'red_solid_cross',
                'green_striped_square', 'yellow_solid_square', 'blue_striped_star',
                'yellow_solid_arrow', 'green_striped_triangle', 'yellow_solid_crescent',
                'green_solid_cross', 'green_striped_star', 'yellow_solid_triangle',
                'yellow_striped_cross', 'blue_solid_cross', 'green_striped_crescent',
                'blue_solid_heart', 'red_striped_heart')

model = dict(
    backbone=dict(init_cfg=dict(checkpoint=backbone_checkpoint)),
    roi_head=dict(bbox_head=dict(num_classes=len(base_classes))))
train_dataloader = dict(
    dataset=dict(
        dataset=dict(
            data_root=data_root,
            ann_file='annotations/lvis_v1_train_base.json',
            metainfo=dict(classes=base_classes))))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/lvis_v1_val_base.json',
        metainfo=dict(classes=base_classes)))
test_dataloader = val_dataloader
val_evaluator = dict(
    ann_file=data_root + 'annotations/lvis_v1_val_base.json',
    train_ann_file=data_root + 'annotations/lvis_v1_train_base.json')
test_evaluator = val_evaluator
