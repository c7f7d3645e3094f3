"""The mini world's image classifier: an MMDetection backbone, global pooling, a linear head.

The backbone is built from mmdet's ``MODELS`` exactly as a detector builds it, so its trained
weights (``backbone.*``) load into a detector's backbone as they are (see
:mod:`projects.mini_world.mini_world.backbone_export`).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmdet.registry import METRICS, MODELS
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from torch import nn


@MODELS.register_module()
class MiniWorldClassifier(BaseModel):
    """Backbone (e.g. mmdet ``ResNet``) + global average pooling + linear classifier.

    Args:
        backbone: config of the backbone; its last output is pooled.
        num_classes: number of classes.
        data_preprocessor: e.g. ``dict(type='ImgDataPreprocessor', mean=..., std=...)``.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self, backbone: dict, num_classes: int,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        with torch.no_grad():
            was_training = self.backbone.training
            self.backbone.eval()
            channels = self.backbone(torch.zeros(1, 3, 64, 64))[-1].shape[1]
            self.backbone.train(was_training)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[Sequence[int]] = None,
                mode: str = 'tensor') -> Union[torch.Tensor, Dict[str, torch.Tensor], List[dict]]:
        """MMEngine's three modes.

        Args:
            inputs: normalised ``(N, 3, H, W)`` images.
            data_samples: the images' class indices (needed by ``'loss'`` and ``'predict'``).
            mode: ``'tensor'`` (logits), ``'loss'`` (``dict(loss=...)``) or ``'predict'``
                (one ``dict(pred_label, gt_label, scores)`` per image).

        Returns:
            The logits, the losses or the predictions.
        """
        logits = self.head(self.backbone(inputs)[-1].mean(dim=(2, 3)))
        if mode == 'tensor':
            return logits
        labels = torch.as_tensor(list(data_samples), dtype=torch.long, device=logits.device)
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, labels))
        if mode == 'predict':
            scores = logits.softmax(dim=1)
            return [dict(pred_label=int(s.argmax()), gt_label=int(label), scores=s)
                    for s, label in zip(scores, labels)]
        raise ValueError(f'mode must be "tensor", "loss" or "predict", not {mode!r}')


@METRICS.register_module()
class MiniWorldAccuracy(BaseMetric):
    """Top-1 and top-5 accuracy of :class:`MiniWorldClassifier` predictions."""

    default_prefix = 'classification'

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep, per image, whether the top-1 and top-5 predictions hold the true class."""
        for sample in data_samples:
            top5 = sample['scores'].topk(min(5, sample['scores'].numel())).indices.tolist()
            self.results.append((sample['pred_label'] == sample['gt_label'],
                                 sample['gt_label'] in top5))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``top1`` and ``top5`` accuracy in percent."""
        top1 = sum(hit for hit, _ in results) / len(results)
        top5 = sum(hit for _, hit in results) / len(results)
        return dict(top1=100.0 * top1, top5=100.0 * top5)
