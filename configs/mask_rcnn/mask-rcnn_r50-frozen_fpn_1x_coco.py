_base_ = ['./mask-rcnn_r50-finetune_fpn_1x_coco.py', '../_base_/frozen-backbone.py']
