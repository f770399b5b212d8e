"""The demos' drawings with OpenCV only: boxes as mmdet's ``DetLocalVisualizer`` (one colour per
class, class and score above each box), class colours blended as mmseg's ``SegLocalVisualizer``
with the segmentation demo's legend.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

import cv2
import numpy as np

from .images import draw_legend

# Pixels of one strip of the blend (its float64 temporaries take 24 bytes a pixel).
_STRIP_PIXELS = 1 << 21
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_detections(
    image_bgr: np.ndarray, detections: Sequence[Dict[str, Any]], meta: Dict[str, Any]
) -> np.ndarray:
    """A copy of the BGR image with the records' (``label``, ``class``, ``score``, ``bbox``)
    boxes, class names and scores, in the colours of ``meta['palette']`` (RGB, one a class)."""
    canvas, palette = image_bgr.copy(), meta["palette"]
    thick = max(1, round(min(canvas.shape[:2]) / 300))
    for det in detections:
        r, g, b = (int(c) for c in palette[det["label"]])
        x1, y1, x2, y2 = (int(round(v)) for v in det["bbox"])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (b, g, r), thick)
        text = f"{det['class']}: {det['score']:.2f}"
        (tw, th), base = cv2.getTextSize(text, _FONT, 0.45, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2, top + th + base + 2), (0, 0, 0), -1)
        cv2.putText(canvas, text, (x1 + 1, top + th + 1), _FONT, 0.45, (255,) * 3, 1, cv2.LINE_AA)
    return canvas


def draw_segmentation(
    image_bgr: np.ndarray, labels: np.ndarray, meta: Dict[str, Any], opacity: float = 0.5
) -> np.ndarray:
    """The class colours blended over the BGR image, with the legend on its right.

    The blend is mmseg's ``(image * (1 - opacity) + colour * opacity).astype(uint8)``, a strip
    of rows at a time (the same pixels without its full-size float64 copies).

    Args:
        image_bgr (np.ndarray): ``(H, W, 3)`` uint8 BGR image.
        labels (np.ndarray): ``(H, W)`` predicted labels.
        meta (dict): Model metadata (``classes``, ``palette``).
        opacity (float): Opacity of the class colours. Defaults to 0.5.
    """
    palette = np.asarray(meta["palette"], np.uint8)[:, ::-1]  # draw in BGR: no full-size copy
    legend = draw_legend(labels, meta["classes"], palette, image_bgr.shape[0])
    height, width = image_bgr.shape[:2]
    canvas = np.full((legend.shape[0], width + legend.shape[1], 3), 255, np.uint8)
    canvas[:, width:] = legend
    step = max(1, _STRIP_PIXELS // max(1, width))
    for top in range(0, height, step):
        rows = slice(top, min(height, top + step))
        blended = image_bgr[rows] * (1 - opacity) + palette[labels[rows]] * opacity
        canvas[rows, :width] = blended.astype(np.uint8)
    return canvas
