_base_ = ['./faster-rcnn_r50-finetune_fpn_ms-3x_coco.py', '../_base_/frozen-backbone.py']
