_base_ = ['./cascade-rcnn_r50-finetune_nasfpn_lsj-1x_coco.py', '../_base_/frozen-backbone.py']
