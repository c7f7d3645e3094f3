# Last layers only (TFA's fine-tuning, the few-shot protocol's classic reference) of
# faster-rcnn_r18-finetune_fpn_kshot-fine-tuning_mini-lvis-few-shot.py: the box classifier and
# regressor (fc_cls, fc_reg) train; everything else is built frozen (backbone, neck, RPN and the
# box head's shared layers, BN statistics included) and verified so by the runner. As in TFA, it
# starts from the fine-tuned base detector after the surgery (tools/mini_few_shot.py).
_base_ = [
    './faster-rcnn_r18-finetune_fpn_kshot-fine-tuning_mini-lvis-few-shot.py',
    '../../../configs/_base_/frozen-backbone.py'
]
model = dict(
    backbone=dict(frozen_stages=4, norm_eval=True),
    neck=dict(_delete_=True, type='FrozenModule', module=_base_.model.neck),
    rpn_head=dict(_delete_=True, type='FrozenModule', module=_base_.model.rpn_head),
    roi_head=dict(
        bbox_head=dict(
            _delete_=True,
            type='FrozenModule',
            module=_base_.model.roi_head.bbox_head,
            trainable=['fc_cls', 'fc_reg'])))
# what the runner verifies as frozen
frozen = dict(modules=['backbone', 'neck', 'rpn_head', 'roi_head.bbox_head.shared_fcs'])
