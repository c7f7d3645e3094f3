_base_ = ['./cascade-rcnn_r101-finetune_nasfpn_lsj-100e_coco.py', '../_base_/frozen-backbone.py']
