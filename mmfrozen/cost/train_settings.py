"""What a config says about its training inputs: image shape, batch size, whether masks load."""
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config

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
