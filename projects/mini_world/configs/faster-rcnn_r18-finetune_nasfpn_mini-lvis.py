# The paper's added capacity in the mini world, fine-tuned twin: the Faster R-CNN of
# faster-rcnn_r18-finetune_fpn_mini-lvis.py (same classifier backbone, data and schedule) with a
# NAS-FPN neck in place of its FPN (as configs/_base_/models/faster-rcnn_r50_nasfpn.py does for
# the R50), sized for the R18-w16 backbone and 128x128 images: 3 stacked cells of 64 channels
# (the paper's 7 of 256 would cost several times the wide FPN's run here), BN in the cells, and
# the wide FPN's heads (RPN 64 channels, box head fc 256).
# NAS-FPN runs on P2-P6 (start_level=0): the same strides as the FPN, hence the same anchors and
# RoI strides, with the smallest anchor (32 pixels) at the size of the mini world's objects.
_base_ = './faster-rcnn_r18-finetune_fpn_mini-lvis.py'

model = dict(
    # 64 = the coarsest stride, so that NAS-FPN's merged feature maps line up
    data_preprocessor=dict(pad_size_divisor=64),
    neck=dict(
        _delete_=True,
        type='NASFPN',
        in_channels=[16, 32, 64, 128],
        out_channels=64,
        num_outs=5,
        stack_times=3,
        start_level=0,
        norm_cfg=dict(type='BN', requires_grad=True)),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256)))
