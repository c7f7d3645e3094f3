# The paper's third arm: the fine-tuned twin with a randomly initialised backbone that trains
# entirely (no frozen stem, BN statistics learnt), same schedule and data.
_base_ = './faster-rcnn_r50-finetune_fpn_1x_coco.py'
model = dict(backbone=dict(frozen_stages=-1, norm_eval=False, init_cfg=None))
