# The paper's point on the mini world: the frozen backbone with capacity added where training
# happens. NAS-FPN (7 stacked cells, BN) replaces FPN on the same levels (P2-P6, strides 4-64),
# so anchors and RoI levels are those of the frozen FPN twin it is compared with.
_base_ = './faster-rcnn_r18-frozen_fpn_mini-lvis.py'

model = dict(
    # 64 = the coarsest stride, so NAS-FPN's merged feature maps line up.
    data_preprocessor=dict(pad_size_divisor=64),
    neck=dict(
        _delete_=True,
        type='NASFPN',
        in_channels=[16, 32, 64, 128],
        out_channels=32,
        num_outs=5,
        stack_times=7,
        start_level=0,
        norm_cfg=dict(type='BN', requires_grad=True)))
