"""The mini world's "ImageNet": a balanced classification set, written once, read in memory.

A split is one ``.npz`` file (``images``: ``(N, H, W, 3)`` uint8 RGB, ``labels``: ``(N,)``
int64, ``classes``: class names), rendered deterministically from a seed by
:mod:`.world`. :class:`MiniWorldClassificationDataset` (mmdet ``DATASETS``) serves it to
MMEngine's runner.
"""
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmdet.registry import DATASETS
from mmengine.utils import track_iter_progress
from PIL import Image
from torch.utils.data import Dataset

from mmfrozen.utils import atomic_write
from .world import ObjectClass, image_rng, render_object_image

#: Seeds keys that keep the splits' random streams apart.
SPLIT_KEYS = {'train': 0, 'val': 1}


def write_classification_split(out_file: str, classes: Sequence[ObjectClass],
                               images_per_class: int, image_size: int, seed: int,
                               split: str) -> str:
    """Render a balanced classification split and save it as ``.npz``.

    Image ``i`` shows class ``i % len(classes)``, drawn from ``image_rng(seed, split_key, i)``.

    Args:
        out_file: path of the ``.npz`` to write.
        classes: the world's classes.
        images_per_class: images of each class.
        image_size: side of the square images in pixels.
        seed: the world's seed.
        split: ``'train'`` or ``'val'``.

    Returns:
        str: ``out_file``.
    """
    count = images_per_class * len(classes)
    images = np.empty((count, image_size, image_size, 3), dtype=np.uint8)
    labels = np.arange(count, dtype=np.int64) % len(classes)
    for index in track_iter_progress(range(count)):
        rng = image_rng(seed, SPLIT_KEYS[split], index)
        images[index] = render_object_image(rng, classes, int(labels[index]), image_size)
    with atomic_write(out_file, suffix='.npz') as tmp_file:  # np.savez would add '.npz'
        np.savez(tmp_file, images=images, labels=labels,
                 classes=np.array([cls.name for cls in classes]))
    return out_file


def save_montage(images: Sequence[np.ndarray], out_file: str, columns: int = 16) -> str:
    """Save images side by side in a grid (a contact sheet of the world), as PNG.

    Args:
        images: equally sized ``(H, W, 3)`` uint8 images.
        out_file: path of the PNG.
        columns: images per row.

    Returns:
        str: ``out_file``.
    """
    height, width = images[0].shape[:2]
    rows = -(-len(images) // columns)
    sheet = np.full((rows * height, columns * width, 3), 255, dtype=np.uint8)
    for index, image in enumerate(images):
        row, col = divmod(index, columns)
        sheet[row * height:(row + 1) * height, col * width:(col + 1) * width] = image
    Image.fromarray(sheet).save(out_file)
    return out_file


@DATASETS.register_module()
class MiniWorldClassificationDataset(Dataset):
    """A split written by :func:`write_classification_split`, held in memory.

    Items are ``dict(inputs=CHW uint8 tensor, data_samples=int label)``, which MMEngine's
    ``pseudo_collate`` and ``ImgDataPreprocessor`` batch and normalise.

    Args:
        data_file: the split's ``.npz``.
        indices: optional subset (e.g. ``range(512)``) for quick runs.
    """

    def __init__(self, data_file: str, indices: Optional[Sequence[int]] = None) -> None:
        if not osp.isfile(data_file):
            raise FileNotFoundError(
                f'MiniWorldClassificationDataset: data_file {data_file!r} does not exist; '
                'write it with projects/mini_world/tools/mini_reproduction.py (step "data") or '
                'projects.mini_world.mini_world.classification_data.write_classification_split.')
        with np.load(data_file) as data:
            self.images = data['images']
            self.labels = data['labels']
            self.classes = tuple(str(name) for name in data['classes'])
        if indices is not None:
            selection = np.asarray(list(indices), dtype=np.int64)
            self.images, self.labels = self.images[selection], self.labels[selection]

    @property
    def metainfo(self) -> Dict[str, tuple]:
        """``dict(classes=...)``, as MMEngine datasets describe themselves."""
        return dict(classes=self.classes)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        image = torch.from_numpy(np.ascontiguousarray(self.images[index].transpose(2, 0, 1)))
        return dict(inputs=image, data_samples=int(self.labels[index]))
