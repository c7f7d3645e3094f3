_base_ = ['./faster-rcnn_r101-finetune_fpn_1x_coco.py', '../_base_/frozen-backbone.py']
