# LVIS stage 2 of the Cascade R-CNN + NAS-FPN as the paper trains it: retrain only the three
# stages' final classification layers with a class-balanced loss (Cui et al., CVPR 2019: class j
# weighs (1 - beta) / (1 - beta ** n_j), n_j its training instances) instead of repeat-factor
# resampling; everything else as the resampling variant, images sampled plainly. The weights
# are computed from the training annotation file when the run starts (ClassBalancedLossHook).
# Give the stage-1 checkpoint through load_from, e.g.
#   --cfg-options load_from=work_dirs/cascade-rcnn_r50-frozen_nasfpn_sample1e-3_lsj-100e_lvis-v1/epoch_25.pth
_base_ = './cascade-rcnn_r50_nasfpn_stage2-cls-sample1e-2_6e_lvis-v1.py'

# The LVIS data set itself, without the ClassBalancedDataset wrapper (inside RepeatDataset).
train_dataloader = dict(
    dataset=dict(dataset=dict(_delete_=True, **_base_.train_dataloader.dataset.dataset.dataset)))
class_balanced_beta = 0.999
# the base's hooks (NonFiniteLossHook: reliable runs) and the loss weights' hook
custom_hooks = [
    *_base_.custom_hooks,
    dict(
        type='ClassBalancedLossHook',
        losses=[f'roi_head.bbox_head.{stage}.loss_cls' for stage in range(3)],
        beta=class_balanced_beta)
]
