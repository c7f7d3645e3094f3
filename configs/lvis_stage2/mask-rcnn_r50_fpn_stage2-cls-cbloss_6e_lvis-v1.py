# LVIS stage 2 as the paper trains it: from a stage-1 checkpoint, retrain only the final
# classification layer with a class-balanced loss (Cui et al., CVPR 2019: class j weighs
# (1 - beta) / (1 - beta ** n_j), n_j its training instances) instead of repeat-factor
# resampling. Everything else is the resampling variant's (what is frozen, schedule); images are
# sampled plainly. The weights are computed from the training annotation file when the run
# starts (ClassBalancedLossHook). Give the stage-1 checkpoint through load_from:
#   python tools/train.py configs/lvis_stage2/mask-rcnn_r50_fpn_stage2-cls-cbloss_6e_lvis-v1.py \
#       --cfg-options load_from=work_dirs/mask-rcnn_r50-frozen_fpn_sample1e-3_ms-1x_lvis-v1/epoch_12.pth
_base_ = './mask-rcnn_r50_fpn_stage2-cls-sample1e-2_6e_lvis-v1.py'

# The LVIS data set itself, without the ClassBalancedDataset wrapper.
train_dataloader = dict(dataset=dict(_delete_=True, **_base_.train_dataloader.dataset.dataset))
class_balanced_beta = 0.999
# the base's hooks (NonFiniteLossHook: reliable runs) and the loss weights' hook
custom_hooks = [
    *_base_.custom_hooks,
    dict(
        type='ClassBalancedLossHook',
        losses=['roi_head.bbox_head.loss_cls'],
        beta=class_balanced_beta)
]
