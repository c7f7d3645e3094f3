# Frozen twin of faster-rcnn_r18-finetune_fpn_mini-lvis.py: the same detector with the mini
# world's classifier backbone frozen (weights and BN statistics) for the whole training.
_base_ = ['./faster-rcnn_r18-finetune_fpn_mini-lvis.py', '../_base_/frozen-backbone.py']
