"""The shapes scenes: a background (flat, gradient, colour blotches or clutter lines) with a few
coloured :data:`SHAPE_CLASSES` over it, drawn with Pillow, and a per-pixel instance map.

Each image has its own random stream (:func:`scene_rng`), so a scene depends only on the seed,
the set and its index. :mod:`.synthetic` writes them as COCO and VOC datasets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple, Union

import cv2
import numpy as np
from PIL import Image, ImageDraw

#: Shape classes, in the order of their COCO category ids (1, 2, ...) by default.
SHAPE_CLASSES: Tuple[str, ...] = ("circle", "rectangle", "triangle", "star", "cross")
#: Shape classes of the default segmentation set: few and very different, to learn quickly.
DEFAULT_SEG_CLASSES: Tuple[str, ...] = ("circle", "rectangle", "triangle")

MIN_IMAGE_SIDE = 32  # smaller, the shapes are not recognisable

_KIND_CODES = {"coco": 1, "voc": 2, "cls": 3}
_SPLIT_CODES = {"train": 0, "val": 1}

ImageSize = Union[int, Sequence[int]]


@dataclass(frozen=True)
class SceneConfig:
    """How many shapes a scene holds, how large they are and how much they may overlap.

    Args:
        num_objects (tuple[int, int]): Inclusive range of shapes per image. Defaults to (1, 6).
        size_range (tuple[float, float]): Shape diameter as a fraction of the shorter side,
            log-uniform. Defaults to (0.15, 0.6).
        max_occlusion (float): Largest fraction of a shape later ones may hide. Defaults to 0.35.
        min_contrast (float): Smallest RGB distance between a shape's colour and what lies
            under it. Defaults to 90.0.
        noise_std (tuple[float, float]): Range of the pixel noise std. Defaults to (0.0, 6.0).
    """

    num_objects: Tuple[int, int] = (1, 6)
    size_range: Tuple[float, float] = (0.15, 0.6)
    max_occlusion: float = 0.35
    min_contrast: float = 90.0
    noise_std: Tuple[float, float] = (0.0, 6.0)

    def __post_init__(self) -> None:
        checks = (
            ("num_objects", 1 <= self.num_objects[0] <= self.num_objects[1] <= 254,
             "1 <= min <= max <= 254"),
            ("size_range", 0 < self.size_range[0] <= self.size_range[1] <= 1,
             "0 < min <= max <= 1"),
            ("max_occlusion", 0 <= self.max_occlusion < 1, "0 <= value < 1"),
            ("noise_std", 0 <= self.noise_std[0] <= self.noise_std[1], "0 <= min <= max"),
        )  # fmt: skip
        for name, ok, need in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r}: need {need}")


#: Detection scenes: 1-6 medium to large shapes.
COCO_SCENE = SceneConfig()
#: Segmentation scenes: 1-3 large shapes, little occlusion.
VOC_SCENE = SceneConfig(num_objects=(1, 3), size_range=(0.3, 0.7), max_occlusion=0.25)


@dataclass
class ShapeInstance:
    """One drawn shape: its class, (N, 2) int32 polygon as filled, RGB colour and drawn area."""

    label: str
    polygon: np.ndarray
    color: Tuple[int, int, int]
    full_area: int


@dataclass
class Scene:
    """An (H, W, 3) uint8 RGB image; its (H, W) uint8 map, ``i + 1`` where ``instances[i]``
    shows and 0 on the background; the shapes in drawing order (later ones on top)."""

    image: np.ndarray
    instance_map: np.ndarray
    instances: List[ShapeInstance]

    def visible_box(self, i: int) -> Tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the pixels ``instances[i]`` shows (all 0 when it is hidden)."""
        return cv2.boundingRect((self.instance_map == i + 1).astype(np.uint8))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)  # True is no int


def check_int(name: str, value: int, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def check_size(img_size: ImageSize) -> Tuple[int, int]:
    """``(height, width)`` from a square side or a pair, both at least MIN_IMAGE_SIDE."""
    pair = isinstance(img_size, Sequence) and len(img_size) == 2
    if not (_is_int(img_size) or (pair and all(map(_is_int, img_size)))):
        raise ValueError(
            f"img_size must be an int or a (height, width) pair of ints, got {img_size!r}"
        )
    size = (int(img_size[0]), int(img_size[1])) if pair else (int(img_size), int(img_size))
    if min(size) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"img_size={img_size!r} is too small: both sides must be at least "
            f"{MIN_IMAGE_SIDE} pixels for the shapes to be recognisable"
        )
    return size


def check_classes(classes: Sequence[str]) -> Tuple[str, ...]:
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


def _polar(radii, angles) -> np.ndarray:
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _outline(label: str, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A random (N, 2) polygon of class ``label``, centred on the origin, within ``radius``."""
    if label == "circle":
        n = int(np.clip(round(radius / 2), 16, 64))
        return _polar(np.full(n, radius), np.linspace(0, 2 * math.pi, n, endpoint=False))
    if label == "rectangle":
        aspect = rng.uniform(0.45, 1.0)  # short side / long side
        hx = radius / math.hypot(1.0, aspect)
        hx, hy = (hx, hx * aspect) if rng.random() >= 0.5 else (hx * aspect, hx)
        corners = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        return _rotate(corners, rng.uniform(-0.3, 0.3))
    if label == "triangle":
        angles = np.array([0.0, 2.0, 4.0]) * math.pi / 3 + rng.uniform(-0.2, 0.2, 3)
        radii = radius * rng.uniform(0.85, 1.0, 3)
        return _polar(radii, angles + rng.uniform(0, 2 * math.pi))
    if label == "star":
        radii = radius * np.tile([1.0, rng.uniform(0.38, 0.5)], 5)
        return _polar(radii, np.arange(10) * math.pi / 5 + rng.uniform(0, 2 * math.pi))
    t = radius * rng.uniform(0.2, 0.3)  # cross: half the arm width, then half its length
    h = math.sqrt(radius**2 - t**2)
    quarter = np.array([[-t, -h], [t, -h], [t, -t]])  # one arm's end and inner corner
    pts = np.concatenate([_rotate(quarter, k * math.pi / 2) for k in range(4)])
    return _rotate(pts, rng.uniform(-0.35, 0.35))


def _color(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _noise(rng: np.random.Generator, shape: Tuple[int, ...], std: float) -> np.ndarray:
    """Zero-mean uniform noise of the given std (cheaper to draw than Gaussian noise)."""
    return (rng.random(shape, dtype=np.float32) - np.float32(0.5)) * np.float32(std * 12**0.5)


def _gradient(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    c0, c1 = _color(rng), _color(rng)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xx * math.cos(angle) + yy * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return c0 + t[..., None] * (c1 - c0)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Flat, gradient, smooth colour noise or clutter lines, equally likely; float32 (H, W, 3)."""
    kind = int(rng.integers(0, 4))
    if kind == 2:  # smooth colour blotches (a small random grid upsampled) plus fine grain
        cells = int(rng.integers(3, 9))
        grid = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(grid).resize((width, height), Image.BICUBIC))
        bg = smooth.astype(np.float32) + _noise(rng, (height, width, 3), rng.uniform(5.0, 20.0))
    elif kind == 1 or (kind == 3 and rng.random() >= 0.5):
        bg = _gradient(rng, height, width)
    else:
        bg = np.broadcast_to(_color(rng), (height, width, 3))
    bg = np.clip(bg, 0, 255)
    if kind == 3:  # clutter: random thin lines over the flat colour or gradient
        img = Image.fromarray(bg.astype(np.uint8))
        draw, max_width = ImageDraw.Draw(img), max(1, min(height, width) // 100)
        for _ in range(int(rng.integers(4, 15))):
            xs, ys = rng.uniform(0, width, 2), rng.uniform(0, height, 2)
            color = tuple(rng.integers(0, 256, 3).tolist())
            line = [(xs[0], ys[0]), (xs[1], ys[1])]
            draw.line(line, fill=color, width=int(rng.integers(1, max_width + 1)))
        bg = np.asarray(img)
    return bg.astype(np.float32)


def _fill(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """The (height, width) boolean mask of an integer polygon, boundary pixels included."""
    # PIL's rule, as the demos' data was always drawn: another rule moves every pixel edge
    img = Image.new("L", (width, height), 0)
    ImageDraw.Draw(img).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(img, dtype=bool)


def _contrasting_color(rng: np.random.Generator, avoid: List[np.ndarray], min_dist: float):
    """The first of up to 32 random colours ``min_dist`` away from all of ``avoid``, else the
    farthest; drawn one at a time, so the stream (and every later shape) stays as it was."""
    best, best_dist = None, -1.0
    for _ in range(32):
        color = rng.integers(0, 256, 3).astype(np.float32)
        dist = float(np.linalg.norm(np.stack(avoid) - color, axis=1).min())
        if dist >= min_dist:
            return color
        if dist > best_dist:
            best, best_dist = color, dist
    return best


def scene_rng(seed: int, kind: str, split: str, index: int) -> np.random.Generator:
    """The random stream of one image, so images do not depend on how many are made.

    Args:
        seed (int): Dataset seed.
        kind (str): ``'coco'``, ``'voc'`` or ``'cls'`` (the pretraining crops).
        split (str): ``'train'`` or ``'val'``.
        index (int): Index of the image within its split.
    """
    if kind not in _KIND_CODES or split not in _SPLIT_CODES:
        raise ValueError(
            f"unknown kind {kind!r} or split {split!r}: kinds are {sorted(_KIND_CODES)}, "
            f"splits {sorted(_SPLIT_CODES)}"
        )
    return np.random.default_rng([seed, _KIND_CODES[kind], _SPLIT_CODES[split], index])


def _place(rng: np.random.Generator, label: str, height: int, width: int, config: SceneConfig):
    """A random int32 polygon of class ``label`` wholly inside the image."""
    lo, hi = config.size_range
    diameter = min(height, width) * math.exp(rng.uniform(math.log(lo), math.log(hi)))
    outline = _outline(label, max(diameter / 2, 3.0), rng)
    span = outline.max(0) - outline.min(0)
    limit = np.array([width - 1, height - 1], dtype=np.float64)
    outline = outline * min(1.0, float(np.min(limit / np.maximum(span, 1e-6))))
    low, high = -outline.min(0), limit - outline.max(0)
    offset = rng.uniform(low, np.maximum(high, low))
    return np.clip(np.floor(outline + offset + 0.5), 0, limit).astype(np.int32)


def _occlusion_ok(instance_map, instances, under: np.ndarray, config: SceneConfig) -> bool:
    """Whether covering ``under`` leaves each shape ``1 - max_occlusion`` of itself, no hole."""
    ids, hidden = np.unique(under[under > 0], return_counts=True)
    if len(ids) == 1 and len(under) == hidden[0]:
        # NOTE: a connected shape cuts a hole only when it lies wholly on another one.
        return False
    for i, n_hidden in zip(ids.tolist(), hidden.tolist()):
        visible = int(np.count_nonzero(instance_map == i))
        if visible - n_hidden < (1 - config.max_occlusion) * instances[i - 1].full_area:
            return False
    return True


def render_scene(
    rng: np.random.Generator,
    img_size: ImageSize,
    classes: Sequence[str] = SHAPE_CLASSES,
    config: SceneConfig = COCO_SCENE,
) -> Scene:
    """Render one image of random shapes (at least one) with its instance map.

    Args:
        rng (np.random.Generator): Random stream (see :func:`scene_rng`).
        img_size (int | Sequence[int]): Square side, or ``(height, width)``.
        classes (Sequence[str]): Shape classes to draw from. Defaults to :data:`SHAPE_CLASSES`.
        config (SceneConfig): Counts, sizes and overlap. Defaults to :data:`COCO_SCENE`.
    """
    height, width = check_size(img_size)
    classes = check_classes(classes)
    background = _background(rng, height, width)
    canvas = background.copy()
    instance_map = np.zeros((height, width), dtype=np.uint8)
    instances: List[ShapeInstance] = []
    for _ in range(int(rng.integers(config.num_objects[0], config.num_objects[1] + 1))):
        label = classes[int(rng.integers(len(classes)))]
        for _attempt in range(30):
            polygon = _place(rng, label, height, width, config)
            (x0, y0), (x1, y1) = polygon.min(0), polygon.max(0) + 1
            local = _fill(polygon - [x0, y0], y1 - y0, x1 - x0)
            under = instance_map[y0:y1, x0:x1][local]
            if local.any() and _occlusion_ok(instance_map, instances, under, config):
                break
        else:
            continue  # no room for this shape; the scene keeps fewer
        region = (slice(y0, y1), slice(x0, x1))
        avoid = [background[region][local].mean(0)]
        avoid += [np.float32(instances[i - 1].color) for i in np.unique(under) if i]
        color = _contrasting_color(rng, avoid, config.min_contrast)
        canvas[region][local] = color
        instance_map[region][local] = len(instances) + 1
        instances.append(ShapeInstance(label, polygon, tuple(map(int, color)), int(local.sum())))
    canvas += _noise(rng, canvas.shape, rng.uniform(*config.noise_std))
    return Scene(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), instance_map, instances)


def mask_to_polygons(mask: np.ndarray, tolerance: float = 0.75) -> List[List[float]]:
    """Outline each piece of a boolean (H, W) mask as a flat COCO polygon (holes are dropped).

    Args:
        mask (np.ndarray): (H, W) boolean mask.
        tolerance (float): Simplification tolerance in pixels. Defaults to 0.75.
    """
    # NOTE: contours run through the centres of the boundary pixels; traced at twice the
    # resolution they lie a quarter pixel inside the mask's edge, so the boundary pixels are kept.
    big = cv2.resize(mask.astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    simple = [cv2.approxPolyDP(c, 2 * tolerance, True).reshape(-1, 2) for c in contours]
    return [((p + 0.5) / 2).reshape(-1).tolist() for p in simple if len(p) >= 3]
