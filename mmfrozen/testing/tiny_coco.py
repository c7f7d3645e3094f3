"""A small COCO-format data set, drawn deterministically, for tests on the real MMDetection stack.

Images show shapes on a noisy background: class ``person`` is a rectangle, ``bicycle`` an
ellipse, ``car`` a triangle, each a random colour, with boxes and polygon masks. The categories
carry COCO's names and ids, so MMDetection's stock COCO configs read the set unchanged.
"""
import json
import os
import os.path as osp
from typing import Dict, List

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES = [
    dict(id=1, name='person', supercategory='person'),
    dict(id=2, name='bicycle', supercategory='vehicle'),
    dict(id=3, name='car', supercategory='vehicle'),
]


def _polygon(kind: int, x0: float, y0: float, w: float, h: float) -> List[float]:
    if kind == 0:
        pts = [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)]
    elif kind == 1:
        t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        pts = list(zip(x0 + w / 2 + w / 2 * np.cos(t), y0 + h / 2 + h / 2 * np.sin(t)))
    else:
        pts = [(x0 + w / 2, y0), (x0 + w, y0 + h), (x0, y0 + h)]
    return [float(round(c, 2)) for p in pts for c in p]


def write_split(root: str, split: str, num_images: int, seed: int, size: int = 128) -> str:
    """Write ``{split}2017/*.jpg`` and ``annotations/instances_{split}2017.json`` under root.

    Args:
        root: the data set's root folder (COCO layout).
        split: ``'train'`` or ``'val'``.
        num_images: how many images.
        seed: seed of the drawing.
        size: image width and height in pixels.

    Returns:
        str: path of the annotation file.
    """
    rng = np.random.RandomState(seed)
    img_dir = osp.join(root, f'{split}2017')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images: List[Dict] = []
    annotations: List[Dict] = []
    for img_id in range(1, num_images + 1):
        noise = rng.randint(90, 160, size=(size, size, 3)).astype(np.uint8)
        img = Image.fromarray(noise)
        draw = ImageDraw.Draw(img)
        for _ in range(rng.randint(1, 4)):
            kind = rng.randint(0, 3)
            w, h = rng.uniform(0.2, 0.5, size=2) * size
            x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
            poly = _polygon(kind, x0, y0, w, h)
            colour = tuple(int(c) for c in rng.randint(0, 256, size=3))
            draw.polygon(list(zip(poly[0::2], poly[1::2])), fill=colour)
            xs, ys = poly[0::2], poly[1::2]
            bx, by = min(xs), min(ys)
            bw, bh = max(xs) - bx, max(ys) - by
            annotations.append(
                dict(id=len(annotations) + 1, image_id=img_id, category_id=kind + 1,
                     bbox=[bx, by, bw, bh], area=float(bw * bh), iscrowd=0,
                     segmentation=[poly]))
        file_name = f'{img_id:06d}.jpg'
        img.save(osp.join(img_dir, file_name), quality=95)
        images.append(dict(id=img_id, file_name=file_name, width=size, height=size))
    ann_file = osp.join(root, 'annotations', f'instances_{split}2017.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=CATEGORIES), f)
    return ann_file


def write_tiny_coco(root: str, num_train: int = 24, num_val: int = 15) -> str:
    """Write the train and val splits (an odd val size tests distributed padding)."""
    write_split(root, 'train', num_train, seed=0)
    write_split(root, 'val', num_val, seed=1)
    return root


def coco_cfg_dict(root: str) -> Dict[str, str]:
    """Config fields (dotted keys) that point a stock MMDetection COCO config at ``root``."""
    root = root.rstrip('/') + '/'
    val_ann = f'{root}annotations/instances_val2017.json'
    return {
        'train_dataloader.dataset.data_root': root,
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': val_ann,
        'test_evaluator.ann_file': val_ann,
    }


def coco_cfg_options(root: str) -> List[str]:
    """The same as ``--cfg-options`` arguments."""
    return [f'{key}={value}' for key, value in coco_cfg_dict(root).items()]
