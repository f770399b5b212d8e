"""Pixel-level drawing of the synthetic shape images: shape outlines, rasterising, colours
and backgrounds.

What a scene is made of and how it is composed (sizes, placement, occlusion) is in
:mod:`edgenext_dense.datasets.shapes_render`; this module only draws, from the random stream it
is given.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "SHAPE_CLASSES",
    "paint_background",
    "contrasting_color",
    "rasterize",
    "shape_outline",
    "uniform_noise",
]

#: Shape classes, in the order of their COCO category ids (1, 2, ...) by default.
SHAPE_CLASSES: Tuple[str, ...] = ("circle", "rectangle", "triangle", "star", "cross")

# ---------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------


def _polar(radii: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Return (N, 2) points at the given radii and angles (radians) around the origin.

    Args:
        radii (np.ndarray): (N,) distances from the origin.
        angles (np.ndarray): (N,) angles in radians.

    Returns:
        np.ndarray: (N, 2) float points (x, y).
    """
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    """Rotate (N, 2) points about the origin by ``angle`` radians.

    Args:
        points (np.ndarray): (N, 2) points.
        angle (float): Rotation in radians.

    Returns:
        np.ndarray: The rotated points.
    """
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def shape_outline(label: str, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Return a random instance of a shape class, centred on the origin, within ``radius``.

    Args:
        label (str): Shape class, one of :data:`SHAPE_CLASSES`.
        radius (float): Half of the shape's largest extent, in pixels.
        rng (np.random.Generator): Random stream.

    Returns:
        np.ndarray: (N, 2) float polygon vertices.
    """
    if label == "circle":
        n = int(np.clip(round(radius / 2), 16, 64))
        return _polar(np.full(n, radius), np.linspace(0, 2 * math.pi, n, endpoint=False))
    if label == "rectangle":
        aspect = rng.uniform(0.45, 1.0)  # short side / long side; 1.0 is a square
        half_long = radius / math.hypot(1.0, aspect)
        hx, hy = half_long, half_long * aspect
        if rng.random() < 0.5:  # upright instead of lying
            hx, hy = hy, hx
        corners = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        return _rotate(corners, rng.uniform(-0.3, 0.3))
    if label == "triangle":
        angles = np.array([0.0, 2.0, 4.0]) * math.pi / 3 + rng.uniform(-0.2, 0.2, 3)
        radii = radius * rng.uniform(0.85, 1.0, 3)
        return _polar(radii, angles + rng.uniform(0, 2 * math.pi))
    if label == "star":
        inner = rng.uniform(0.38, 0.5)
        radii = radius * np.tile([1.0, inner], 5)
        return _polar(radii, np.arange(10) * math.pi / 5 + rng.uniform(0, 2 * math.pi))
    if label == "cross":
        t = radius * rng.uniform(0.2, 0.3)  # half the arm width
        h = math.sqrt(radius**2 - t**2)  # half the arm length
        # The top arm's end and its inner corner, repeated for the four arms.
        quarter = np.array([[-t, -h], [t, -h], [t, -t]])
        pts = np.concatenate([_rotate(quarter, k * math.pi / 2) for k in range(4)])
        return _rotate(pts, rng.uniform(-0.35, 0.35))
    raise ValueError(f"unknown shape class {label!r}; expected one of {SHAPE_CLASSES}")


def rasterize(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterise an integer polygon (pixel-index coordinates) into a boolean mask.

    Args:
        polygon (np.ndarray): (N, 2) integer vertices (x, y).
        height (int): Mask height.
        width (int): Mask width.

    Returns:
        np.ndarray: (height, width) boolean mask.
    """
    img = Image.new("L", (width, height), 0)
    ImageDraw.Draw(img).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(img, dtype=bool)


# ---------------------------------------------------------------------------------------------
# Colours and backgrounds
# ---------------------------------------------------------------------------------------------


def _random_color(rng: np.random.Generator) -> np.ndarray:
    """Return a uniformly random RGB colour as a float array."""
    return rng.integers(0, 256, 3).astype(np.float32)


def uniform_noise(rng: np.random.Generator, shape: Tuple[int, ...], std: float) -> np.ndarray:
    """Zero-mean uniform pixel noise (cheaper to draw than Gaussian noise).

    Args:
        rng (np.random.Generator): Random stream.
        shape (tuple[int, ...]): Array shape.
        std (float): Standard deviation.

    Returns:
        np.ndarray: float32 noise.
    """
    noise = rng.random(shape, dtype=np.float32) - np.float32(0.5)
    return noise * np.float32(std * math.sqrt(12.0))


def _gradient(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A linear gradient between two random colours in a random direction.

    Args:
        rng (np.random.Generator): Random stream.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: (H, W, 3) float32 image.
    """
    c0, c1 = _random_color(rng), _random_color(rng)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xx * math.cos(angle) + yy * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return c0 + t[..., None] * (c1 - c0)


def _smooth_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth colour blotches (a small random grid upsampled) plus fine grain.

    Args:
        rng (np.random.Generator): Random stream.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: (H, W, 3) float32 image.
    """
    cells = int(rng.integers(3, 9))
    grid = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
    smooth = Image.fromarray(grid).resize((width, height), Image.BICUBIC)
    grain = uniform_noise(rng, (height, width, 3), rng.uniform(5.0, 20.0))
    return np.asarray(smooth, dtype=np.float32) + grain


def _clutter(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Random thin lines over a flat colour or a gradient.

    Args:
        rng (np.random.Generator): Random stream.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: (H, W, 3) float32 image.
    """
    if rng.random() < 0.5:
        base = np.broadcast_to(_random_color(rng), (height, width, 3))
    else:
        base = _gradient(rng, height, width)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    max_width = max(1, min(height, width) // 100)
    for _ in range(int(rng.integers(4, 15))):
        xs = rng.uniform(0, width, 2)
        ys = rng.uniform(0, height, 2)
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.line(
            [(xs[0], ys[0]), (xs[1], ys[1])], fill=color, width=int(rng.integers(1, max_width + 1))
        )
    return np.asarray(img, dtype=np.float32)


def paint_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random background: flat, gradient, smooth noise or clutter lines, equally likely.

    Args:
        rng (np.random.Generator): Random stream.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: (H, W, 3) float32 image with values in [0, 255].
    """
    kind = int(rng.integers(0, 4))
    if kind == 0:
        bg = np.broadcast_to(_random_color(rng), (height, width, 3))
    elif kind == 1:
        bg = _gradient(rng, height, width)
    elif kind == 2:
        bg = _smooth_noise(rng, height, width)
    else:
        bg = _clutter(rng, height, width)
    return np.clip(bg, 0, 255).astype(np.float32)


def contrasting_color(
    rng: np.random.Generator, avoid: Sequence[np.ndarray], min_contrast: float
) -> np.ndarray:
    """Pick a random colour at least ``min_contrast`` away from every colour in ``avoid``.

    Args:
        rng (np.random.Generator): Random stream.
        avoid (Sequence[np.ndarray]): RGB colours to keep away from.
        min_contrast (float): Required RGB distance.

    Returns:
        np.ndarray: RGB colour (float32); the most distant of 32 tries if none is far enough.
    """
    best, best_dist = None, -1.0
    for _ in range(32):
        color = _random_color(rng)
        dist = min(float(np.linalg.norm(color - a)) for a in avoid)
        if dist >= min_contrast:
            return color
        if dist > best_dist:
            best, best_dist = color, dist
    return best
