"""A training batch without a data set: random images with boxes, labels and masks.

The batch has the form a detector's dataloader gives after ``PackDetInputs``: a dict of
``inputs`` (uint8 ``(3, H, W)`` tensors) and ``data_samples`` (``DetDataSample`` with
``gt_instances``), so it goes through the model's own ``data_preprocessor`` in
``model.train_step`` like real data.
"""
from typing import Dict, List, Tuple

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.structures import InstanceData


def _random_boxes(rng: np.random.RandomState, num_boxes: int, height: int,
                  width: int) -> np.ndarray:
    """Boxes (x1, y1, x2, y2) of 5% to 50% of the image's sides, inside the image."""
    sizes = rng.uniform(0.05, 0.5, size=(num_boxes, 2)) * (width, height)
    x1 = rng.uniform(0, width - sizes[:, 0])
    y1 = rng.uniform(0, height - sizes[:, 1])
    return np.stack([x1, y1, x1 + sizes[:, 0], y1 + sizes[:, 1]], axis=1).astype(np.float32)


def _box_masks(boxes: np.ndarray, height: int, width: int) -> BitmapMasks:
    """Bitmap masks that fill each box."""
    masks = np.zeros((len(boxes), height, width), dtype=np.uint8)
    for mask, (x1, y1, x2, y2) in zip(masks, boxes.round().astype(int)):
        mask[y1:y2, x1:x2] = 1
    return BitmapMasks(masks, height, width)


def synthetic_batch(batch_size: int,
                    shape: Tuple[int, int],
                    num_boxes: int = 7,
                    num_classes: int = 1,
                    with_mask: bool = False,
                    seed: int = 0) -> Dict[str, List]:
    """A batch of random images with ground truth, as a detector's dataloader yields it.

    Args:
        batch_size: number of images.
        shape: ``(height, width)`` of every image.
        num_boxes: ground-truth boxes per image (COCO averages about 7).
        num_classes: labels are drawn from ``range(num_classes)``.
        with_mask: add ``gt_instances.masks`` (a ``BitmapMasks`` filling each box).
        seed: seed of the drawing; the same seed gives the same batch.

    Returns:
        dict: ``{'inputs': [uint8 tensor (3, H, W)], 'data_samples': [DetDataSample]}``.
    """
    height, width = shape
    rng = np.random.RandomState(seed)
    inputs, data_samples = [], []
    for index in range(batch_size):
        inputs.append(torch.from_numpy(rng.randint(0, 256, (3, height, width), dtype=np.uint8)))
        boxes = _random_boxes(rng, num_boxes, height, width)
        instances = InstanceData(
            bboxes=HorizontalBoxes(torch.from_numpy(boxes)),
            labels=torch.from_numpy(rng.randint(0, num_classes, num_boxes).astype(np.int64)))
        if with_mask:
            instances.masks = _box_masks(boxes, height, width)
        sample = DetDataSample(
            metainfo=dict(
                img_id=index,
                img_path=f'synthetic_{index}.jpg',
                ori_shape=(height, width),
                img_shape=(height, width),
                scale_factor=(1.0, 1.0),
                flip=False,
                flip_direction=None))
        sample.gt_instances = instances
        sample.ignored_instances = InstanceData(
            bboxes=HorizontalBoxes(torch.zeros((0, 4))), labels=torch.zeros(0, dtype=torch.long))
        data_samples.append(sample)
    return dict(inputs=inputs, data_samples=data_samples)
