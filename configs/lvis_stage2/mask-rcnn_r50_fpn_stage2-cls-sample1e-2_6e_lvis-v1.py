# LVIS stage 2 (the paper's): from a stage-1 checkpoint, retrain only the final classification
# layer (roi_head.bbox_head.fc_cls) with class-balanced re-sampling (repeat factors with threshold 1e-2,
# ten times stage 1's); everything else stays frozen, BN statistics included. The stage-1
# checkpoint (of the frozen or the fine-tuned arm) is required, through load_from:
#   python tools/train.py configs/lvis_stage2/mask-rcnn_r50_fpn_stage2-cls-sample1e-2_6e_lvis-v1.py \
#       --cfg-options load_from=work_dirs/mask-rcnn_r50-frozen_fpn_sample1e-3_ms-1x_lvis-v1/epoch_12.pth
_base_ = '../mask_rcnn/mask-rcnn_r50-frozen_fpn_sample1e-3_ms-1x_lvis-v1.py'

# Every weight comes from the stage-1 checkpoint: no ImageNet download. The backbone is frozen
# by the stage-1 config (frozen_stages=4, norm_eval=True); every other part but fc_cls is built
# frozen here, so the freeze holds whatever builds the model.
model = dict(
    backbone=dict(init_cfg=None),
    neck=dict(_delete_=True, type='FrozenModule', module=_base_.model.neck),
    rpn_head=dict(_delete_=True, type='FrozenModule', module=_base_.model.rpn_head),
    roi_head=dict(
        bbox_head=dict(
            _delete_=True,
            type='FrozenModule',
            module=_base_.model.roi_head.bbox_head,
            trainable=['fc_cls']),
        mask_head=dict(_delete_=True, type='FrozenModule', module=_base_.model.roi_head.mask_head)))
# What the runner verifies as frozen.
frozen = dict(modules=[
    'backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs', 'roi_head.bbox_head.fc_reg',
    'roi_head.mask_head'
])
train_dataloader = dict(dataset=dict(oversample_thr=1e-2))
# Half of 1x: 6 epochs, the learning rate divided by 10 after 4.
max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[4], gamma=0.1)
]
