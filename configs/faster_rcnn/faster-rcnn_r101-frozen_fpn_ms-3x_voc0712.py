_base_ = ['./faster-rcnn_r101-finetune_fpn_ms-3x_voc0712.py', '../_base_/frozen-backbone.py']
