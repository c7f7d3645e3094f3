# Few-shot detection in the mini world, stage 2: K-shot fine-tuning, fine-tuned twin (everything
# trains). From the fine-tuned base detector
# (./faster-rcnn_r18-finetune_fpn_base-training_mini-lvis-few-shot.py) after the weight surgery
# (mmfrozen.models.few_shot_surgery: base rows kept, novel rows TFA's randinit), given with
# --cfg-options load_from=...; trained on K instances of each of the 30 classes, base and novel
# (TFA's generalized setting: a K-shot file of mmfrozen.datasets.few_shot_sampler, here K = 10,
# group (seed) 0), scored on every class of the full val set: novel AP is
# lvis/bbox_AP_novel, base AP lvis/bbox_AP_base.
# Schedule: the K-shot set repeated `times` times an epoch (tools/mini_few_shot.py sets it from
# the file's image count: the fewest passes that make at least 14 iterations, so 1-shot and
# 5-shot train about as long, 10-shot one pass of its larger set), 3 epochs at base training's
# learning rate, x0.1 for the last one.
# The paths below are tools/mini_few_shot.py's defaults; it passes its own with --cfg-options.
_base_ = './faster-rcnn_r18-finetune_fpn_base-training_mini-lvis-few-shot.py'

data_root = 'work_dirs/mini_few_shot/data/mini_lvis_few_shot/'
classes = ('blue_striped_square', 'red_solid_heart', 'blue_solid_square', 'red_solid_cross',
           'green_striped_square', 'yellow_solid_square', 'blue_striped_star',
           'yellow_solid_arrow', 'green_striped_triangle', 'yellow_solid_crescent',
           'green_solid_cross', 'green_striped_star', 'yellow_solid_triangle',
           'yellow_striped_cross', 'blue_solid_cross', 'green_striped_crescent',
           'blue_solid_heart', 'red_striped_heart', 'yellow_solid_heart', 'green_solid_arrow',
           'blue_striped_crescent', 'red_striped_square', 'yellow_striped_crescent',
           'yellow_solid_star', 'blue_striped_heart', 'blue_striped_circle', 'red_striped_arrow',
           'blue_striped_triangle', 'red_solid_square', 'yellow_solid_circle')
novel_classes = ('yellow_solid_heart', 'green_solid_arrow', 'blue_striped_crescent',
                 'red_striped_square', 'yellow_striped_crescent', 'yellow_solid_star',
                 'blue_striped_heart', 'blue_striped_circle', 'red_striped_arrow',
                 'blue_striped_triangle', 'red_solid_square', 'yellow_solid_circle')
max_epochs = 3

# every weight comes from the checkpoint after the surgery (load_from)
model = dict(backbone=dict(init_cfg=None), roi_head=dict(bbox_head=dict(num_classes=len(classes))))
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=1,
        dataset=dict(
            _base_.train_dataloader.dataset.dataset,
            data_root=data_root,
            ann_file='annotations/few_shot/lvis_v1_train_10shot_seed0.json',
            metainfo=dict(classes=classes))))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/lvis_v1_val.json',
        metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
val_evaluator = dict(
    ann_file=data_root + 'annotations/lvis_v1_val.json',
    # the per-class training counts of the bins: the categories' own (the full set's)
    train_ann_file=None,
    class_groups=dict(novel=novel_classes, base=_base_.base_classes))
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=0.02))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs,
         milestones=[max_epochs - 1], gamma=0.1)
]
