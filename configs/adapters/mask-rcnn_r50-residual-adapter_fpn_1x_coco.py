# The third arm: the frozen ResNet-50 of ../mask_rcnn/'s frozen config (mmdet's own freeze,
# frozen_stages=4, norm_eval=True) with a residual adapter beside each 3x3 convolution of its
# blocks (ResidualAdapters: 1x1 convolutions, zero at start, so training starts from the frozen
# detector). Only the adapters train in the backbone; the runner and its hook verify the
# ResNet's own parts (frozen.modules) bit for bit, and that they came from the checkpoint.
_base_ = '../mask_rcnn/mask-rcnn_r50-frozen_fpn_1x_coco.py'
model = dict(
    backbone=dict(_delete_=True, type='ResidualAdapters', module=_base_.model.backbone))
frozen = dict(modules=[
    'backbone.conv1', 'backbone.bn1', 'backbone.layer1', 'backbone.layer2', 'backbone.layer3',
    'backbone.layer4'
])
