"""Boxes drawn with OpenCV only as mmdet's ``DetLocalVisualizer`` draws them: one colour per
class, class and score above each box. The segmentation drawing is
:func:`edgenext_dense.image_files.draw_segmentation`.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

import cv2
import numpy as np

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
