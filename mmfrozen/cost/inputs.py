"""The training input of a config: what its pipeline makes (image shape, batch size, masks),
and a synthetic batch of that form.

:func:`synthetic_batch` is a training batch without a data set, in the form a detector's
dataloader gives after ``PackDetInputs``: a dict of ``inputs`` (uint8 ``(3, H, W)`` tensors)
and ``data_samples`` (``DetDataSample`` with ``gt_instances``), so it goes through the model's
own ``data_preprocessor`` in ``model.train_step`` like real data.
"""
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData

Shape = Tuple[int, int]


def _dataset_pipelines(dataset: dict) -> Iterator[list]:
    """Pipelines of a dataset config, inner datasets (wrappers' ``dataset``) first."""
    if not isinstance(dataset, dict):
        return
    inner = dataset.get('dataset')
    if inner is not None:
        yield from _dataset_pipelines(inner)
    datasets = dataset.get('datasets')
    if datasets:
        yield from _dataset_pipelines(datasets[0])
    if dataset.get('pipeline'):
        yield dataset['pipeline']


def _flat_transforms(pipeline: Sequence) -> Iterator[dict]:
    """Transforms of a pipeline in order, the first branch of RandomChoice/RandomApply too."""
    for transform in pipeline:
        if not isinstance(transform, dict):
            continue
        yield transform
        nested = transform.get('transforms')
        if nested:
            first = nested[0]
            branch = first if isinstance(first, (list, tuple)) else nested
            yield from _flat_transforms(branch)


def train_transforms(cfg: Config) -> List[dict]:
    """Every transform of the training pipeline (dataset wrappers included), in order."""
    dataset = cfg.get('train_dataloader', {}).get('dataset', {})
    return [t for p in _dataset_pipelines(dataset) for t in _flat_transforms(p)]


def _scale_to_shape(scale, keep_ratio: bool) -> Optional[Shape]:
    """An mmdet ``scale`` ((w, h) or int) as the largest (h, w) image it yields."""
    if isinstance(scale, int):
        return scale, scale
    if not isinstance(scale, (list, tuple)) or len(scale) != 2:
        return None
    if all(isinstance(s, (list, tuple)) for s in scale):  # a range of scales
        shapes = [_scale_to_shape(s, keep_ratio) for s in scale]
        return max(s[0] for s in shapes), max(s[1] for s in shapes)
    width, height = int(scale[0]), int(scale[1])
    if keep_ratio:  # long edge <= max(scale), short edge <= min(scale): landscape canvas
        return min(width, height), max(width, height)
    return height, width


def _largest(shapes: Sequence[Optional[Shape]]) -> Optional[Shape]:
    shapes = [s for s in shapes if s is not None]
    return max(shapes, key=lambda s: s[0] * s[1]) if shapes else None


def train_image_shape(cfg: Config) -> Optional[Shape]:
    """The (height, width) of a training image as the config's pipeline makes it.

    The last resize sets it (``Resize``/``FixShapeResize`` scale, ``RandomResize``'s nominal
    or largest scale, ``RandomChoiceResize``'s largest), an absolute ``RandomCrop`` caps it
    and a fixed-size ``Pad`` sets it. With ``keep_ratio`` the canvas is landscape: scale
    (1333, 800) gives (800, 1333), the largest image that setting produces.

    Args:
        cfg: the config.

    Returns:
        tuple or None: ``(height, width)``, or None when the pipeline does not say.
    """
    shape: Optional[Shape] = None
    for transform in train_transforms(cfg):
        kind = str(transform.get('type', ''))
        keep_ratio = bool(transform.get('keep_ratio', False))
        if kind in ('Resize', 'FixShapeResize', 'RandomResize') and 'scale' in transform:
            shape = _scale_to_shape(transform['scale'], keep_ratio) or shape
        elif kind in ('Resize', 'FixShapeResize') and 'width' in transform:
            shape = int(transform['height']), int(transform['width'])
        elif kind == 'RandomChoiceResize':
            shape = _largest([_scale_to_shape(s, keep_ratio)
                              for s in transform.get('scales', [])]) or shape
        elif (kind == 'RandomCrop' and shape is not None
              and transform.get('crop_type', 'absolute') in ('absolute', 'absolute_range')):
            crop_w, crop_h = transform['crop_size'][0], transform['crop_size'][-1]
            shape = min(shape[0], int(crop_h)), min(shape[1], int(crop_w))
        elif kind == 'Pad' and transform.get('size'):
            shape = int(transform['size'][1]), int(transform['size'][0])
    return shape


def train_batch_size(cfg: Config) -> Optional[int]:
    """The config's training batch size per GPU (``train_dataloader.batch_size``)."""
    batch_size = cfg.get('train_dataloader', {}).get('batch_size')
    return int(batch_size) if batch_size is not None else None


def train_loads_masks(cfg: Config) -> bool:
    """Whether the training pipeline loads instance masks (``LoadAnnotations(with_mask=True)``)."""
    return any(
        str(t.get('type', '')).endswith('LoadAnnotations') and t.get('with_mask', False)
        for t in train_transforms(cfg))


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
