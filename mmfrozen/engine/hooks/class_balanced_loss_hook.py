"""ClassBalancedLossHook: the paper's class-balanced stage-2 loss through mmdet's own loss."""
from typing import Any, List, Optional, Sequence, Union

import numpy as np
from mmdet.models.losses import CrossEntropyLoss
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmfrozen.models.class_balanced_weights import class_balanced_weights


def _training_dataset(dataset: Any) -> Any:
    """The data set under the wrappers (ClassBalancedDataset, RepeatDataset, ...)."""
    while not hasattr(dataset, 'cat_ids') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    return dataset


def _resolve(model: Any, path: str) -> Any:
    module = model
    for part in path.split('.'):
        module = module[int(part)] if part.isdigit() else getattr(module, part, None)
        if module is None:
            raise KeyError(f'ClassBalancedLossHook: field "losses" names {path!r}, which the '
                           f'model ({type(model).__name__}) does not have.')
    return module


@HOOKS.register_module()
class ClassBalancedLossHook(Hook):
    """When training starts, give classification losses class-balanced ``class_weight``.

    Each named loss must be mmdet's softmax ``CrossEntropyLoss``; its ``class_weight`` becomes
    the effective-number weights of the training data set's classes (Cui et al., CVPR 2019:
    ``(1 - beta) / (1 - beta ** n)``, mean 1), counted on the training annotation file, and 1
    for the background logit. Computed from the file when the run starts, so the config holds
    ``beta``, not 1,204 numbers; the model itself builds without the file.

    Args:
        losses: dotted paths of the losses in the model, e.g.
            ``['roi_head.bbox_head.loss_cls']`` (``0.``, ``1.`` index lists; a
            ``FrozenModule`` in the config is the module itself in the model).
        beta: the effective-number hyper-parameter, default 0.999 (the paper's).
        ann_file: the training annotation file; default: the training data set's.
        count: ``'instance_count'`` (default) or ``'image_count'``: what a sample is.
    """
    priority = 'NORMAL'

    def __init__(self,
                 losses: Union[str, Sequence[str]],
                 beta: float = 0.999,
                 ann_file: Optional[str] = None,
                 count: str = 'instance_count') -> None:
        self.losses: List[str] = [losses] if isinstance(losses, str) else list(losses)
        if not self.losses:
            raise ValueError('ClassBalancedLossHook: field "losses" names no loss.')
        if not 0 <= beta < 1:
            raise ValueError(f'ClassBalancedLossHook: field "beta" must be in [0, 1), got '
                             f'{beta!r}.')
        self.beta = beta
        self.ann_file = ann_file
        self.count = count

    def before_train(self, runner) -> None:
        """Compute the weights from the annotation file and set them on every loss."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        dataset = _training_dataset(runner.train_dataloader.dataset)
        ann_file = self.ann_file or getattr(dataset, 'ann_file', None)
        cat_ids = getattr(dataset, 'cat_ids', None)
        if not ann_file or cat_ids is None:
            raise ValueError('ClassBalancedLossHook: the training data set '
                             f'({type(dataset).__name__}) has no "ann_file"/"cat_ids"; set the '
                             'hook\'s field "ann_file" to the training annotation file.')
        weights = class_balanced_weights(ann_file, list(cat_ids), self.beta, self.count)
        for path in self.losses:
            loss = _resolve(model, path)
            if not isinstance(loss, CrossEntropyLoss) or loss.use_sigmoid:
                raise TypeError(f'ClassBalancedLossHook: field "losses" names {path!r}, a '
                                f'{type(loss).__name__}; it must be a softmax CrossEntropyLoss '
                                '(use_sigmoid=False).')
            loss.class_weight = weights + [1.0]  # the background logit comes last
        print_log(
            f'ClassBalancedLossHook: class_weight of {", ".join(self.losses)} from '
            f'{self.count} in {ann_file!r}, beta={self.beta}: {len(weights)} classes, weights '
            f'{min(weights):.3g}-{max(weights):.3g} (median {np.median(weights):.3g}), '
            'background 1.',
            logger='current')
