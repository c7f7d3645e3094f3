# LVIS stage 2 (the paper's): from a stage-1 checkpoint, retrain only the final classification
# layers (roi_head.bbox_head.{0,1,2}.fc_cls) with class-balanced re-sampling (repeat factors with threshold 1e-2,
# ten times stage 1's); everything else stays frozen, BN statistics included. The stage-1
# checkpoint (of the frozen or the fine-tuned arm) is required, through load_from:
#   python tools/train.py configs/lvis_stage2/cascade-rcnn_r50_nasfpn_stage2-cls-sample1e-2_6e_lvis-v1.py \
#       --cfg-options load_from=work_dirs/cascade-rcnn_r50-frozen_nasfpn_sample1e-3_lsj-100e_lvis-v1/epoch_25.pth
_base_ = '../cascade_rcnn/cascade-rcnn_r50-frozen_nasfpn_sample1e-3_lsj-100e_lvis-v1.py'

# Every weight comes from the stage-1 checkpoint: no ImageNet download. The backbone is frozen
# by the stage-1 config (frozen_stages=4, norm_eval=True); every other part but the three fc_cls
# is built frozen here, so the freeze holds whatever builds the model.
model = dict(
    backbone=dict(init_cfg=None),
    neck=dict(_delete_=True, type='FrozenModule', module=_base_.model.neck),
    rpn_head=dict(_delete_=True, type='FrozenModule', module=_base_.model.rpn_head),
    roi_head=dict(bbox_head=[
        dict(type='FrozenModule', module=head, trainable=['fc_cls'])
        for head in _base_.model.roi_head.bbox_head
    ]))
# What the runner verifies as frozen.
frozen = dict(modules=[
    'backbone', 'neck', 'rpn_head',
    'roi_head.bbox_head.0.shared_fcs', 'roi_head.bbox_head.0.fc_reg',
    'roi_head.bbox_head.1.shared_fcs', 'roi_head.bbox_head.1.fc_reg',
    'roi_head.bbox_head.2.shared_fcs', 'roi_head.bbox_head.2.fc_reg'
])
# The set once per epoch (stage 1 repeats it 4 times), re-sampled class-balanced.
train_dataloader = dict(dataset=dict(times=1, dataset=dict(oversample_thr=1e-2)))
# Half of 1x: 6 epochs, the learning rate divided by 10 after 4.
max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[4], gamma=0.1)
]
