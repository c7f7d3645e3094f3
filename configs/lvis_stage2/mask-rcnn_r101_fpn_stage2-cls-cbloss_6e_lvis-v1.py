# LVIS stage 2 of the R101 Mask R-CNN with the class-balanced loss: as the R50 config, with a
# ResNet-101. Give the stage-1 checkpoint through load_from, e.g.
#   --cfg-options load_from=work_dirs/mask-rcnn_r101-frozen_fpn_sample1e-3_ms-1x_lvis-v1/epoch_12.pth
_base_ = './mask-rcnn_r50_fpn_stage2-cls-cbloss_6e_lvis-v1.py'
model = dict(backbone=dict(depth=101))
