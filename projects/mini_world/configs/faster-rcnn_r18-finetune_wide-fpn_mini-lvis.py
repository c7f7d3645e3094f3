# The fine-tuned detector with a wider FPN and box head (FPN and RPN 32 -> 64 channels, box head
# fc 128 -> 256): the twin of faster-rcnn_r18-frozen_wide-fpn_mini-lvis.py, to tell the gain of
# the added capacity from the gain of freezing. Not in the default run (time); add it with
#   python projects/mini_world/tools/mini_reproduction.py --extra-configs projects/mini_world/configs/faster-rcnn_r18-finetune_wide-fpn_mini-lvis.py
_base_ = './faster-rcnn_r18-finetune_fpn_mini-lvis.py'

model = dict(
    neck=dict(out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256)))
