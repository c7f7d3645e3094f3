# RetinaNet FPN, COCO, 1x: MMDetection's R50 config with mmpretrain's ConvNeXt-T in place of its
# ResNet-50 (../_base_/classifiers/convnext-t_mmpretrain.py), fine-tuned.
_base_ = '../retinanet/retinanet_r50-finetune_fpn_1x_coco.py'
# after _base_: mmengine reads a config that starts with an import as a lazy-import one
import mmengine  # noqa: E402  a module, so not a field of the config

# the classifier's fields over the base's (mmengine refuses a field that two bases set)
globals().update(
    mmengine.Config.fromfile('{{ fileDirname }}/../_base_/classifiers/convnext-t_mmpretrain.py'))
