# The paper's point on the mini world: the frozen backbone with capacity added where training
# happens. The frozen twin's FPN and box head widened (FPN and RPN 32 -> 64 channels, box head
# fc 128 -> 256): 1.1M trainable parameters, 3.8x the frozen twin's and about as many as the
# fine-tuned twin trains (1.0M, its backbone included).
# (NAS-FPN, the paper's neck, measured 8 AP against the fine-tuned twin's 36 in this 6-epoch
# schedule: too slow to train for a 10-minute run; see benchmarks/mini_reproduction_timing.md.)
_base_ = './faster-rcnn_r18-frozen_fpn_mini-lvis.py'

model = dict(
    neck=dict(out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256)))
