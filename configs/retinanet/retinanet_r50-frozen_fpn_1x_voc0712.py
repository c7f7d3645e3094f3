_base_ = ['./retinanet_r50-finetune_fpn_1x_voc0712.py', '../_base_/frozen-backbone.py']
