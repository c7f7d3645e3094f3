# Faster R-CNN FPN, LVIS v1 (repeat-factor sampling 1e-3, multi-scale), 1x: MMDetection's R50
# config with mmpretrain's Swin-T in place of its ResNet-50 (../_base_/classifiers/swin-
# t_mmpretrain.py), fine-tuned.
_base_ = '../faster_rcnn/faster-rcnn_r50-finetune_fpn_sample1e-3_ms-1x_lvis-v1.py'
# after _base_: mmengine reads a config that starts with an import as a lazy-import one
import mmengine  # noqa: E402  a module, so not a field of the config

# the classifier's fields over the base's (mmengine refuses a field that two bases set)
globals().update(
    mmengine.Config.fromfile('{{ fileDirname }}/../_base_/classifiers/swin-t_mmpretrain.py'))
