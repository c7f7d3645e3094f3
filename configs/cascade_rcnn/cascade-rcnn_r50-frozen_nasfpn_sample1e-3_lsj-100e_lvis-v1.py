_base_ = ['./cascade-rcnn_r50-finetune_nasfpn_sample1e-3_lsj-100e_lvis-v1.py', '../_base_/frozen-backbone.py']
