_base_ = ['./retinanet_r101-finetune_fpn_1x_coco.py', '../_base_/frozen-backbone.py']
