_base_ = ['./cascade-rcnn_r101-finetune_nasfpn_sample1e-3_lsj-1x_lvis-v1.py', '../_base_/frozen-backbone.py']
