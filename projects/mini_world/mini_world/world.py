"""The mini visual world: coloured, textured shapes on cluttered backgrounds.

A class of the world is one ``(shape, colour, texture)`` combination, e.g. ``red_striped_star``:
telling classes apart takes shape, colour and texture together, as a natural image classifier's
features must. Everything is drawn with NumPy and PIL from a :class:`numpy.random.Generator`,
so an image is a pure function of its seed: the same seed gives the same pixels on any machine.

Both halves of the mini reproduction draw from here: the classification set (one object per
image, the mini world's "ImageNet") and the long-tailed detection set (several objects per
image, with boxes and polygon masks).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw


def _regular_polygon(sides: int, phase: float = 0.0) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(sides) / sides
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    outer = _regular_polygon(2 * points, -np.pi / 2)
    radii = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return outer * radii[:, None]


def _crescent(samples: int = 16) -> np.ndarray:
    # The outer arc of the unit circle, back along the arc of a circle shifted right.
    outer = np.linspace(np.pi * 0.35, np.pi * 1.65, samples)
    inner = np.linspace(np.pi * 1.45, np.pi * 0.55, samples)
    return np.concatenate([
        np.stack([np.cos(outer), np.sin(outer)], axis=1),
        np.stack([0.55 + 0.8 * np.cos(inner), 0.8 * np.sin(inner)], axis=1)])


def _heart(samples: int = 28) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, samples, endpoint=False)
    x = 16 * np.sin(t)**3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return np.stack([x, y + 2.5], axis=1) / 17.0


#: Outlines in unit coordinates (about [-1, 1]^2), one simple polygon each.
SHAPES: Dict[str, np.ndarray] = {
    'circle': _regular_polygon(24),
    'square': _regular_polygon(4, np.pi / 4) * np.sqrt(2) * 0.8,
    'triangle': _regular_polygon(3, -np.pi / 2),
    'star': _star(),
    'cross': np.array([[-0.3, -1], [0.3, -1], [0.3, -0.3], [1, -0.3], [1, 0.3], [0.3, 0.3],
                       [0.3, 1], [-0.3, 1], [-0.3, 0.3], [-1, 0.3], [-1, -0.3], [-0.3, -0.3]]),
    'crescent': _crescent(),
    'heart': _heart(),
    'arrow': np.array([[-1, -0.3], [0.1, -0.3], [0.1, -0.75], [1, 0], [0.1, 0.75], [0.1, 0.3],
                       [-1, 0.3]]),
    'diamond': np.array([[0, -1], [0.6, 0], [0, 1], [-0.6, 0]]),
    'hexagon': _regular_polygon(6),
    'semicircle': _regular_polygon(24)[:13] - [0, 0.45],
    'bar': np.array([[-1, -0.32], [1, -0.32], [1, 0.32], [-1, 0.32]]),
}

#: Saturated base colours (RGB); clutter is drawn desaturated so objects stand out from it.
COLOURS: Dict[str, Tuple[int, int, int]] = {
    'red': (215, 45, 40),
    'green': (40, 165, 70),
    'blue': (45, 85, 215),
    'yellow': (235, 205, 45),
    'magenta': (200, 50, 190),
    'cyan': (40, 195, 205),
}

TEXTURES: Tuple[str, ...] = ('solid', 'striped', 'checkered')


@dataclass(frozen=True)
class ObjectClass:
    """One class of the world: a shape painted in a colour with a texture."""

    shape: str
    colour: str
    texture: str

    @property
    def name(self) -> str:
        """E.g. ``'red_striped_star'``."""
        return f'{self.colour}_{self.texture}_{self.shape}'

    @property
    def description(self) -> str:
        """E.g. ``'a red striped star'``."""
        return f'a {self.colour} {self.texture} {self.shape}'


@dataclass
class PlacedObject:
    """An object drawn in an image: its class index, outline and box (COCO ``xywh``)."""

    label: int
    polygon: np.ndarray
    bbox: Tuple[float, float, float, float]


def world_classes(num_shapes: int = 8, num_colours: int = 4,
                  num_textures: int = 2) -> List[ObjectClass]:
    """The classes of a world, in a fixed order: shape-major, then colour, then texture.

    Args:
        num_shapes: how many of :data:`SHAPES` (in their listed order) the world uses.
        num_colours: how many of :data:`COLOURS`.
        num_textures: how many of :data:`TEXTURES`.

    Returns:
        list[ObjectClass]: ``num_shapes * num_colours * num_textures`` classes.
    """
    for what, wanted, available in (('shapes', num_shapes, len(SHAPES)),
                                    ('colours', num_colours, len(COLOURS)),
                                    ('textures', num_textures, len(TEXTURES))):
        if not 1 <= wanted <= available:
            raise ValueError(f'the mini world has 1 to {available} {what}, not {wanted}')
    return [ObjectClass(shape, colour, texture)
            for shape in list(SHAPES)[:num_shapes]
            for colour in list(COLOURS)[:num_colours]
            for texture in TEXTURES[:num_textures]]


def image_rng(seed: int, *key: int) -> np.random.Generator:
    """The generator of one image: independent of the order in which images are drawn."""
    return np.random.default_rng([seed, *key])


def render_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A cluttered, low-saturation background: gradient, strokes, blobs and noise.

    Args:
        rng: the image's generator.
        size: side of the square image in pixels.

    Returns:
        np.ndarray: ``(size, size, 3)`` uint8 RGB.
    """
    base = rng.uniform(60, 190)
    tint = rng.normal(0, 12, size=3)
    ramp = np.linspace(-1, 1, size)
    direction = rng.uniform(0, 2 * np.pi)
    gradient = (np.cos(direction) * ramp[None, :] + np.sin(direction) * ramp[:, None]) * 30
    canvas = base + tint[None, None, :] + gradient[..., None]
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(6, 16))):
        grey = rng.uniform(30, 230)
        colour = tuple(int(c) for c in np.clip(grey + rng.normal(0, 18, size=3), 0, 255))
        kind = rng.integers(3)
        if kind == 0:
            points = rng.uniform(-0.1, 1.1, size=(2, 2)) * size
            draw.line([tuple(p) for p in points], fill=colour,
                      width=int(rng.integers(1, max(2, size // 24))))
        elif kind == 1:
            center = rng.uniform(0, size, size=2)
            radii = rng.uniform(0.03, 0.15, size=2) * size
            draw.ellipse([tuple(center - radii), tuple(center + radii)], fill=colour)
        else:
            vertices = rng.integers(3, 7)
            center = rng.uniform(0, size, size=2)
            angles = np.sort(rng.uniform(0, 2 * np.pi, size=vertices))
            radius = rng.uniform(0.04, 0.16, size=vertices) * size
            points = center + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radius[:, None]
            draw.polygon([tuple(p) for p in points], fill=colour)
    noisy = np.asarray(image, dtype=np.float32) + rng.normal(0, 5, size=(size, size, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def object_outline(rng: np.random.Generator, shape: str, center: Sequence[float],
                   extent: float) -> np.ndarray:
    """A shape's outline rotated, slightly stretched and scaled to fit ``extent`` pixels.

    Args:
        rng: the image's generator.
        shape: a key of :data:`SHAPES`.
        center: ``(x, y)`` of the outline's box centre in pixels.
        extent: the longer side of the outline's box in pixels.

    Returns:
        np.ndarray: ``(N, 2)`` vertices ``(x, y)`` in pixels.
    """
    angle = rng.uniform(0, 2 * np.pi)
    stretch = np.array([rng.uniform(0.85, 1.15), 1.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = (SHAPES[shape] * stretch) @ rotation.T
    low, high = points.min(axis=0), points.max(axis=0)
    points = (points - (low + high) / 2) * (extent / (high - low).max())
    return points + np.asarray(center, dtype=np.float64)


def _texture(rng: np.random.Generator, colour: Tuple[int, int, int], texture: str,
             size: int) -> np.ndarray:
    base = np.clip(np.asarray(colour, dtype=np.float32) * rng.uniform(0.85, 1.1)
                   + rng.normal(0, 10, size=3), 0, 255)
    if texture == 'solid':
        return np.broadcast_to(base, (size, size, 3)).copy()
    dark = base * 0.3
    period = rng.uniform(4.0, 6.0)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    u = np.cos(angle) * xs + np.sin(angle) * ys
    if texture == 'striped':
        on = (np.floor(u / (period / 2)) % 2) == 0
    elif texture == 'checkered':
        v = -np.sin(angle) * xs + np.cos(angle) * ys
        on = ((np.floor(u / (period / 2)) + np.floor(v / (period / 2))) % 2) == 0
    else:
        raise KeyError(f'unknown texture {texture!r}; the world has {TEXTURES}')
    return np.where(on[..., None], base, dark)


def paint_object(canvas: np.ndarray, rng: np.random.Generator, cls: ObjectClass,
                 outline: np.ndarray) -> None:
    """Paint ``cls`` filled with its colour and texture inside ``outline``, in place.

    Args:
        canvas: ``(H, W, 3)`` uint8 RGB image, square.
        rng: the image's generator.
        cls: the object's class.
        outline: ``(N, 2)`` vertices in pixels.
    """
    size = canvas.shape[0]
    mask_image = Image.new('L', (canvas.shape[1], size), 0)
    ImageDraw.Draw(mask_image).polygon([tuple(p) for p in outline], fill=255)
    mask = np.asarray(mask_image) > 0
    fill = _texture(rng, COLOURS[cls.colour], cls.texture, max(canvas.shape[:2]))
    canvas[mask] = fill[:canvas.shape[0], :canvas.shape[1]][mask].astype(np.uint8)


def _overlaps(box: np.ndarray, boxes: List[np.ndarray], margin: float) -> bool:
    for other in boxes:
        if (box[0] < other[2] + margin and other[0] < box[2] + margin
                and box[1] < other[3] + margin and other[1] < box[3] + margin):
            return True
    return False


def render_scene(rng: np.random.Generator, classes: Sequence[ObjectClass], size: int,
                 labels: Sequence[int], extent_range: Tuple[float, float],
                 required: Optional[int] = None,
                 attempts: int = 60) -> Tuple[np.ndarray, List[PlacedObject]]:
    """Draw a scene: a cluttered background and non-overlapping objects of the given labels.

    Objects do not overlap, so each one's polygon is exactly its visible mask.

    Args:
        rng: the image's generator.
        classes: the world's classes; ``labels`` index into them.
        size: side of the square image in pixels.
        labels: the objects to draw, in order of importance.
        extent_range: ``(min, max)`` of an object's longer box side in pixels.
        required: how many of the first ``labels`` must be placed; they shrink down to
            ``extent_range[0] / 2`` before giving up. The rest are dropped when they do not fit.
            Defaults to all.
        attempts: placement tries per object and size.

    Returns:
        tuple: the ``(size, size, 3)`` uint8 RGB image and the objects placed.

    Raises:
        RuntimeError: a required object could not be placed.
    """
    required = len(labels) if required is None else required
    canvas = render_background(rng, size)
    boxes: List[np.ndarray] = []
    placed: List[PlacedObject] = []
    margin = 2.0
    for index, label in enumerate(labels):
        extent = rng.uniform(*extent_range)
        outline = None
        while outline is None and extent >= extent_range[0] / 2:
            for _ in range(attempts):
                center = rng.uniform(extent / 2 + 1, size - extent / 2 - 1, size=2)
                candidate = object_outline(rng, classes[label].shape, center, extent)
                box = np.concatenate([candidate.min(axis=0), candidate.max(axis=0)])
                if not _overlaps(box, boxes, margin):
                    outline = candidate
                    break
            if outline is None:
                if index >= required:
                    break
                extent *= 0.85
        if outline is None:
            if index < required:
                raise RuntimeError(f'could not place object {index} ({classes[label].name}) '
                                   f'in a {size}px image with {len(boxes)} objects')
            continue
        outline = np.clip(outline, 0, size - 1)
        box = np.concatenate([outline.min(axis=0), outline.max(axis=0)])
        boxes.append(box)
        paint_object(canvas, rng, classes[label], outline)
        placed.append(PlacedObject(label=int(label), polygon=outline,
                                   bbox=(float(box[0]), float(box[1]), float(box[2] - box[0]),
                                         float(box[3] - box[1]))))
    return canvas, placed


def render_object_image(rng: np.random.Generator, classes: Sequence[ObjectClass], label: int,
                        size: int) -> np.ndarray:
    """A classification image: one object of class ``label``, large and near the centre.

    Args:
        rng: the image's generator.
        classes: the world's classes.
        label: index of the object's class.
        size: side of the square image in pixels.

    Returns:
        np.ndarray: ``(size, size, 3)`` uint8 RGB.
    """
    canvas = render_background(rng, size)
    extent = rng.uniform(0.45, 0.85) * size
    slack = (size - extent) / 2
    center = size / 2 + rng.uniform(-slack, slack, size=2)
    paint_object(canvas, rng, classes[label],
                 object_outline(rng, classes[label].shape, center, extent))
    return canvas
