"""Scene description and rendering of the synthetic shape images.

A scene is a background (flat colour, gradient, smooth colour noise or clutter lines) with up to
a few coloured geometric shapes of :data:`SHAPE_CLASSES` on it, drawn with a per-pixel instance
map. Each image is drawn from its own random stream (:func:`scene_rng`), so that a dataset is
the same for the same arguments. The pixel-level drawing (outlines, colours, backgrounds) is in
:mod:`edgenext_dense.datasets.shapes_drawing`. Mask outlines as COCO polygons are in
:mod:`edgenext_dense.datasets.mask_polygons`. The writers of the COCO and VOC layouts, which
turn scenes into files, live in :mod:`edgenext_dense.datasets.synthetic`; its docstring lists
the choices made about what the images hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

import numpy as np

from edgenext_dense.datasets.mask_polygons import mask_to_polygons
from edgenext_dense.datasets.shapes_drawing import (
    SHAPE_CLASSES,
    contrasting_color,
    paint_background,
    rasterize,
    shape_outline,
    uniform_noise,
)

__all__ = [
    "COCO_SCENE",
    "MIN_IMAGE_SIDE",
    "SHAPE_CLASSES",
    "VOC_SCENE",
    "ImageSize",
    "Scene",
    "SceneConfig",
    "ShapeInstance",
    "mask_to_polygons",
    "render_scene",
    "scene_rng",
]


#: Smallest image side accepted, in pixels.
MIN_IMAGE_SIDE = 32

_SPLIT_CODES = {"train": 0, "val": 1}
_KIND_CODES = {"coco": 1, "voc": 2, "cls": 3}

ImageSize = Union[int, Sequence[int]]

# ---------------------------------------------------------------------------------------------
# Scene description
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneConfig:
    """How many shapes a scene holds, how large they are and how much they may overlap.

    Args:
        num_objects (tuple[int, int]): Inclusive range of the number of shapes placed per image.
            Defaults to (1, 6).
        size_range (tuple[float, float]): Range of the shape diameter as a fraction of the shorter
            image side, sampled log-uniformly. Defaults to (0.15, 0.6).
        max_occlusion (float): Largest fraction of an object's pixels that later shapes may hide.
            Defaults to 0.35.
        min_contrast (float): Smallest RGB distance between a shape's colour and what lies under
            it. Defaults to 90.0.
        noise_std (tuple[float, float]): Range of the standard deviation of the (uniform) pixel
            noise added to the whole image. Defaults to (0.0, 6.0).
    """

    num_objects: Tuple[int, int] = (1, 6)
    size_range: Tuple[float, float] = (0.15, 0.6)
    max_occlusion: float = 0.35
    min_contrast: float = 90.0
    noise_std: Tuple[float, float] = (0.0, 6.0)

    def __post_init__(self) -> None:
        lo, hi = self.num_objects
        if not 1 <= lo <= hi <= 254:
            raise ValueError(f"num_objects={self.num_objects!r}: need 1 <= min <= max <= 254")
        lo, hi = self.size_range
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"size_range={self.size_range!r}: need 0 < min <= max <= 1")
        if not 0 <= self.max_occlusion < 1:
            raise ValueError(f"max_occlusion={self.max_occlusion!r}: need 0 <= value < 1")
        lo, hi = self.noise_std
        if not 0 <= lo <= hi:
            raise ValueError(f"noise_std={self.noise_std!r}: need 0 <= min <= max")


#: Detection scenes: 1-6 medium to large shapes.
COCO_SCENE = SceneConfig()
#: Segmentation scenes: 1-3 large shapes, little occlusion.
VOC_SCENE = SceneConfig(num_objects=(1, 3), size_range=(0.3, 0.7), max_occlusion=0.25)


@dataclass
class ShapeInstance:
    """One drawn shape.

    Args:
        label (str): Shape class, one of :data:`SHAPE_CLASSES`.
        polygon (np.ndarray): (N, 2) integer vertices (x, y) in pixel-index coordinates, exactly
            as rasterised (pixel ``(r, c)`` is filled when ``(c, r)`` lies in the polygon).
        color (tuple[int, int, int]): RGB fill colour.
        full_area (int): Number of pixels the shape covered when it was drawn.
    """

    label: str
    polygon: np.ndarray
    color: Tuple[int, int, int]
    full_area: int


@dataclass
class Scene:
    """A rendered image with its per-pixel instance map.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB image.
        instance_map (np.ndarray): (H, W) uint8 map; 0 is background and ``i + 1`` marks the
            visible pixels of ``instances[i]``.
        instances (list[ShapeInstance]): Shapes in drawing order (later ones on top).
    """

    image: np.ndarray
    instance_map: np.ndarray
    instances: List[ShapeInstance]


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------


def _normalize_size(img_size: ImageSize) -> Tuple[int, int]:
    """Return ``(height, width)`` from an int or a pair, checking both are large enough.

    Args:
        img_size (int | Sequence[int]): Square side, or ``(height, width)``.

    Returns:
        tuple[int, int]: Height and width in pixels.
    """
    if isinstance(img_size, (int, np.integer)) and not isinstance(img_size, bool):
        size = (int(img_size), int(img_size))
    elif (
        isinstance(img_size, Sequence)
        and len(img_size) == 2
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in img_size)
    ):
        size = (int(img_size[0]), int(img_size[1]))
    else:
        raise ValueError(
            f"img_size must be an int or a (height, width) pair of ints, got {img_size!r}"
        )
    if min(size) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"img_size={img_size!r} is too small: both sides must be at least "
            f"{MIN_IMAGE_SIDE} pixels for the shapes to be recognisable"
        )
    return size


def _check_count(name: str, value: int) -> int:
    """Check that an image count is a positive int.

    Args:
        name (str): Argument name, for the error message.
        value (int): The count.

    Returns:
        int: The count.
    """
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _check_seed(seed: int) -> int:
    """Check that a seed is a non-negative int.

    Args:
        seed (int): The seed.

    Returns:
        int: The seed.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    return int(seed)


def _check_classes(classes: Sequence[str]) -> Tuple[str, ...]:
    """Check that ``classes`` names distinct known shapes.

    Args:
        classes (Sequence[str]): Shape class names.

    Returns:
        tuple[str, ...]: The names, as a tuple.
    """
    if isinstance(classes, str):
        raise ValueError(f"classes must be a sequence of shape names, got the string {classes!r}")
    names = tuple(classes)
    unknown = [c for c in names if c not in SHAPE_CLASSES]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(
            f"classes={names!r} is invalid: give one or more distinct names from {SHAPE_CLASSES}"
            + (f" (unknown: {unknown})" if unknown else "")
        )
    return names


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def scene_rng(seed: int, kind: str, split: str, index: int) -> np.random.Generator:
    """Return the random stream of one image.

    Each image has its own stream, so images do not depend on how many others are generated.

    Args:
        seed (int): Dataset seed.
        kind (str): ``'coco'``, ``'voc'`` or ``'cls'`` (the single-shape classification
            images of :mod:`edgenext_dense.apis.shapes_pretrain`).
        split (str): ``'train'`` or ``'val'``.
        index (int): Index of the image within its split (0-based).

    Returns:
        np.random.Generator: A PCG64 generator.
    """
    if kind not in _KIND_CODES or split not in _SPLIT_CODES:
        raise ValueError(
            f"unknown kind {kind!r} or split {split!r}: kinds are {sorted(_KIND_CODES)}, "
            f"splits {sorted(_SPLIT_CODES)}"
        )
    return np.random.default_rng([seed, _KIND_CODES[kind], _SPLIT_CODES[split], index])


def _place(
    rng: np.random.Generator,
    label: str,
    height: int,
    width: int,
    config: SceneConfig,
) -> np.ndarray:
    """Draw a random shape of class ``label`` at a random place wholly inside the image.

    Args:
        rng (np.random.Generator): Random stream.
        label (str): Shape class.
        height (int): Image height.
        width (int): Image width.
        config (SceneConfig): Size range.

    Returns:
        np.ndarray: (N, 2) integer polygon in pixel-index coordinates.
    """
    lo, hi = config.size_range
    diameter = min(height, width) * math.exp(rng.uniform(math.log(lo), math.log(hi)))
    outline = shape_outline(label, max(diameter / 2, 3.0), rng)
    span = outline.max(0) - outline.min(0)
    limit = np.array([width - 1, height - 1], dtype=np.float64)
    outline = outline * min(1.0, float(np.min(limit / np.maximum(span, 1e-6))))
    low = -outline.min(0)
    high = limit - outline.max(0)
    offset = rng.uniform(low, np.maximum(high, low))
    return np.clip(np.floor(outline + offset + 0.5), 0, limit).astype(np.int64)


def render_scene(
    rng: np.random.Generator,
    img_size: ImageSize,
    classes: Sequence[str] = SHAPE_CLASSES,
    config: SceneConfig = COCO_SCENE,
) -> Scene:
    """Render one image of random shapes with its instance map.

    Args:
        rng (np.random.Generator): Random stream (see :func:`scene_rng`).
        img_size (int | Sequence[int]): Square side, or ``(height, width)``.
        classes (Sequence[str]): Shape classes to draw from. Defaults to :data:`SHAPE_CLASSES`.
        config (SceneConfig): Counts, sizes and overlap. Defaults to the detection settings.

    Returns:
        Scene: The image, its instance map and the shapes, at least one of them.
    """
    height, width = _normalize_size(img_size)
    classes = _check_classes(classes)
    canvas = paint_background(rng, height, width).copy()
    background = canvas.copy()
    instance_map = np.zeros((height, width), dtype=np.uint8)
    instances: List[ShapeInstance] = []
    wanted = int(rng.integers(config.num_objects[0], config.num_objects[1] + 1))
    for _ in range(wanted):
        label = classes[int(rng.integers(len(classes)))]
        for _attempt in range(30):
            polygon = _place(rng, label, height, width, config)
            (x0, y0), (x1, y1) = polygon.min(0), polygon.max(0) + 1
            local = rasterize(polygon - [x0, y0], y1 - y0, x1 - x0)
            under = instance_map[y0:y1, x0:x1][local]
            if local.any() and _occlusion_ok(instance_map, instances, under, config):
                break
        else:
            continue  # no room for this shape; the scene keeps fewer
        region = (slice(y0, y1), slice(x0, x1))
        avoid = [background[region][local].mean(0)]
        avoid += [np.asarray(instances[i - 1].color, np.float32) for i in np.unique(under) if i]
        color = contrasting_color(rng, avoid, config.min_contrast)
        canvas[region][local] = color
        instance_map[region][local] = len(instances) + 1
        instances.append(
            ShapeInstance(label, polygon, tuple(int(v) for v in color), int(local.sum()))
        )
    canvas += uniform_noise(rng, canvas.shape, rng.uniform(*config.noise_std))
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return Scene(image, instance_map, instances)


def _occlusion_ok(
    instance_map: np.ndarray,
    instances: List[ShapeInstance],
    under: np.ndarray,
    config: SceneConfig,
) -> bool:
    """Whether a new shape drawn over ``under`` leaves every earlier shape visible enough.

    Args:
        instance_map (np.ndarray): Current instance map.
        instances (list[ShapeInstance]): Shapes drawn so far.
        under (np.ndarray): Instance ids under the new shape's pixels (0 for background).
        config (SceneConfig): Occlusion limit.

    Returns:
        bool: True when each covered shape keeps ``1 - max_occlusion`` of its pixels, and none
        is left with a hole.
    """
    ids, hidden = np.unique(under[under > 0], return_counts=True)
    if len(ids) == 1 and len(under) == hidden[0]:
        # NOTE: the new shape is connected, so it cuts a hole into a shape only when it lies
        # wholly on it; otherwise what it uncovers joins the background around.
        return False
    for i, n_hidden in zip(ids.tolist(), hidden.tolist()):
        visible = int(np.count_nonzero(instance_map == i))
        if visible - n_hidden < (1 - config.max_occlusion) * instances[i - 1].full_area:
            return False
    return True
