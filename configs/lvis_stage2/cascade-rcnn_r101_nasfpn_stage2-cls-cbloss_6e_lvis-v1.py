# LVIS stage 2 of the R101 Cascade R-CNN + NAS-FPN with the class-balanced loss: as the R50
# config, with a ResNet-101. Give the stage-1 checkpoint through load_from, e.g.
#   --cfg-options load_from=work_dirs/cascade-rcnn_r101-frozen_nasfpn_sample1e-3_lsj-100e_lvis-v1/epoch_25.pth
_base_ = './cascade-rcnn_r50_nasfpn_stage2-cls-cbloss_6e_lvis-v1.py'
model = dict(backbone=dict(depth=101))
