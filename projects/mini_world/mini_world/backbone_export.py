"""Write a trained classifier's backbone as a checkpoint that MMDetection backbones load.

The output holds ``state_dict`` with the backbone's keys (no ``backbone.`` prefix), so a
detector loads it with ``backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=PATH))``,
as it would a torchvision ImageNet model.
"""
import os.path as osp
from typing import Optional

from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_with_prefix, \
    save_checkpoint

from mmfrozen.utils import atomic_write


def export_backbone(classifier_checkpoint: str, out_file: str, prefix: str = 'backbone.',
                    meta: Optional[dict] = None) -> str:
    """Save the ``prefix`` part of a classifier checkpoint as a backbone checkpoint.

    Args:
        classifier_checkpoint: an MMEngine checkpoint of :class:`MiniWorldClassifier`.
        out_file: the backbone checkpoint to write.
        prefix: the backbone's key prefix in the classifier.
        meta: extra fields for the checkpoint's ``meta`` (plain types), e.g. the accuracy.

    Returns:
        str: ``out_file``.
    """
    state_dict = _load_checkpoint_with_prefix(prefix, classifier_checkpoint, map_location='cpu')
    source_meta = _load_checkpoint(classifier_checkpoint, map_location='cpu').get('meta', {})
    out_meta = dict(source=osp.abspath(classifier_checkpoint), prefix=prefix,
                    epoch=source_meta.get('epoch'), iter=source_meta.get('iter'))
    out_meta.update(meta or {})
    with atomic_write(out_file) as tmp_file:
        save_checkpoint(dict(state_dict={k: v.detach().clone() for k, v in state_dict.items()},
                             meta=out_meta), tmp_file)
    return out_file
