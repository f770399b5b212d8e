"""Outlines of binary masks as COCO polygons (what the synthetic COCO writer stores).

:func:`mask_to_polygons` traces the pixel boundary of every connected piece of a mask and
simplifies it, so that rasterising the polygons gives back the mask up to the tolerance.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np

__all__ = ["mask_to_polygons"]


def _polygon_area(loop: np.ndarray) -> float:
    """Signed shoelace area of a closed polygon (positive when clockwise on screen, y down).

    Args:
        loop (np.ndarray): (N, 2) vertices.

    Returns:
        float: Signed area.
    """
    x, y = loop[:, 0].astype(np.float64), loop[:, 1].astype(np.float64)
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


# ---------------------------------------------------------------------------------------------
# Mask outlines
# ---------------------------------------------------------------------------------------------

# Directions of unit boundary steps: east, south, west, north (clockwise on screen).
_STEPS = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])


def _boundary_loops(mask: np.ndarray) -> List[np.ndarray]:
    """Trace the closed outlines of a boolean mask along pixel edges.

    Vertices are pixel corners in COCO coordinates (pixel ``(r, c)`` spans ``[c, c+1) x [r, r+1)``).
    Outer outlines run clockwise on screen (positive :func:`_polygon_area`), holes the other way.
    Pixels touching only at a corner get separate outlines.

    Args:
        mask (np.ndarray): (H, W) boolean mask.

    Returns:
        list[np.ndarray]: (N, 2) integer loops with only the corner vertices kept.
    """
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return []
    # Trace within the mask's box (faster), then shift the corners back.
    (r0, r1), (c0, c1) = rows[[0, -1]], cols[[0, -1]]
    pad = np.pad(mask[r0 : r1 + 1, c0 : c1 + 1].astype(bool), 1)
    inside = pad[1:-1, 1:-1]
    starts, dirs = [], []
    # For each pixel side facing outside: (neighbour outside, start corner offset, direction).
    for outside, (ox, oy), d in (
        (~pad[:-2, 1:-1], (0, 0), 0),  # top side, heading east
        (~pad[1:-1, 2:], (1, 0), 1),  # right side, heading south
        (~pad[2:, 1:-1], (1, 1), 2),  # bottom side, heading west
        (~pad[1:-1, :-2], (0, 1), 3),  # left side, heading north
    ):
        r, c = np.nonzero(inside & outside)
        starts.append(np.stack([c + c0 + ox, r + r0 + oy], axis=1))
        dirs.append(np.full(len(r), d))
    start = np.concatenate(starts)
    direction = np.concatenate(dirs)
    end = start + _STEPS[direction]
    out: Dict[Tuple[int, int], List[int]] = {}
    for i, key in enumerate(map(tuple, start.tolist())):
        out.setdefault(key, []).append(i)
    end_keys = list(map(tuple, end.tolist()))
    dir_list = direction.tolist()

    used = [False] * len(start)
    loops = []
    for first in range(len(start)):
        if used[first]:
            continue
        edges = []
        e = first
        while not used[e]:
            used[e] = True
            edges.append(e)
            choices = [i for i in out[end_keys[e]] if not used[i]]
            if not choices:
                break
            # Where two outlines meet at a corner, turn right to stay on the same pixel.
            right = (dir_list[e] + 1) % 4
            e = next((i for i in choices if dir_list[i] == right), choices[0])
        # Keep only the vertices where the outline turns.
        idx = np.array(edges)
        turns = direction[idx] != direction[np.roll(idx, 1)]
        loops.append(start[idx[turns]])
    return loops


def _simplify_closed(loop: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker simplification of a closed polygon.

    Args:
        loop (np.ndarray): (N, 2) vertices, first not repeated at the end.
        tolerance (float): Largest distance, in pixels, of a dropped vertex from the result.

    Returns:
        np.ndarray: The kept vertices, in order.
    """
    n = len(loop)
    if n <= 4:
        return loop
    pts = loop.astype(np.float64)
    far = int(np.argmax(np.hypot(*(pts - pts[0]).T)))
    keep = np.zeros(n, dtype=bool)
    keep[[0, far]] = True
    closed = np.concatenate([pts, pts[:1]])
    stack = [(0, far), (far, n)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        seg = closed[b] - closed[a]
        rel = closed[a + 1 : b] - closed[a]
        length = math.hypot(*seg)
        if length == 0:
            dist = np.hypot(rel[:, 0], rel[:, 1])
        else:
            dist = np.abs(seg[0] * rel[:, 1] - seg[1] * rel[:, 0]) / length
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            keep[a + 1 + k] = True
            stack.extend([(a, a + 1 + k), (a + 1 + k, b)])
    return loop[keep]


def mask_to_polygons(mask: np.ndarray, tolerance: float = 0.75) -> List[List[float]]:
    """Outline the pieces of a boolean mask as COCO polygons (holes are not represented).

    Args:
        mask (np.ndarray): (H, W) boolean mask.
        tolerance (float): Simplification tolerance in pixels. Defaults to 0.75.

    Returns:
        list[list[float]]: One flat ``[x1, y1, x2, y2, ...]`` list per outer outline, in COCO
        coordinates.
    """
    polygons = []
    for loop in _boundary_loops(mask):
        if _polygon_area(loop) <= 0:  # a hole
            continue
        simple = _simplify_closed(loop, tolerance)
        if len(simple) >= 3 and _polygon_area(simple) > 0:
            polygons.append([float(v) for v in simple.reshape(-1)])
    return polygons
