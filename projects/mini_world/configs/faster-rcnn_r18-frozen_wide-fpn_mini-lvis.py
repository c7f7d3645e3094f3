# The paper's point on the mini world: the frozen backbone with capacity added where training
# happens. The frozen twin of faster-rcnn_r18-finetune_wide-fpn_mini-lvis.py (FPN and box head
# twice as wide as in faster-rcnn_r18-frozen_fpn_mini-lvis.py): 1.1M trainable parameters, 3.8x
# the narrow frozen twin's and about as many as the narrow fine-tuned twin trains (1.0M, its
# backbone included).
# (NAS-FPN, the paper's neck, measured 8 AP against the fine-tuned twin's 36 in this 6-epoch
# schedule: too slow to train for a 10-minute run; see benchmarks/mini_reproduction_timing.md.)
_base_ = ['./faster-rcnn_r18-finetune_wide-fpn_mini-lvis.py', '../../../configs/_base_/frozen-backbone.py']
# mmdet's ResNet freezes its stem and all four stages, BN statistics included
model = dict(backbone=dict(frozen_stages=4, norm_eval=True))
