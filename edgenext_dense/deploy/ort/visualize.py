"""The demos' drawn outputs with OpenCV only: boxes with class and score, blended masks.

Boxes follow mmdet's ``DetLocalVisualizer`` (one colour per class, class and score above each
box); masks mmseg's ``SegLocalVisualizer`` blend, with the legend of the classes present that
the PyTorch segmentation demo draws (:func:`edgenext_dense.apis.seg_demo.render`).
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

import cv2
import numpy as np

# Pixels of one strip of the blend (its float64 temporaries take 24 bytes a pixel).
_STRIP_PIXELS = 1 << 21
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _palette(meta: Dict[str, Any]) -> np.ndarray:
    """``(num_classes, 3)`` RGB colours: the metadata's, else a fixed random palette."""
    classes, palette = meta["classes"], meta.get("palette") or []
    if len(palette) != len(classes):
        return np.random.default_rng(42).integers(0, 256, (len(classes), 3)).astype(np.uint8)
    return np.asarray(palette, np.uint8).reshape(-1, 3)


def draw_detections(
    image_bgr: np.ndarray, detections: Sequence[Dict[str, Any]], meta: Dict[str, Any]
) -> np.ndarray:
    """A copy of the image with boxes, class names and scores.

    Args:
        image_bgr (np.ndarray): ``(H, W, 3)`` uint8 BGR image.
        detections (Sequence[dict]): Records with ``label``, ``class``, ``score``, ``bbox``.
        meta (dict): Model metadata (``classes``, ``palette``).
    """
    canvas, palette = image_bgr.copy(), _palette(meta)
    thick = max(1, round(min(canvas.shape[:2]) / 300))
    for det in detections:
        r, g, b = (int(c) for c in palette[det["label"] % len(palette)])
        x1, y1, x2, y2 = (int(round(v)) for v in det["bbox"])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (b, g, r), thick)
        text = f"{det['class']}: {det['score']:.2f}"
        (tw, th), base = cv2.getTextSize(text, _FONT, 0.45, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2, top + th + base + 2), (0, 0, 0), -1)
        cv2.putText(canvas, text, (x1 + 1, top + th + 1), _FONT, 0.45, (255,) * 3, 1, cv2.LINE_AA)
    return canvas


def _legend(labels: np.ndarray, classes: Sequence[str], palette: np.ndarray, height: int):
    """A white panel, at least ``height`` high, of the classes present (largest share first)
    with their colour and share of the pixels."""
    counts = np.bincount(labels.ravel(), minlength=len(classes))[: len(classes)]
    present = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    row, pad, swatch = 22, 8, 14
    lines = [f"{classes[i]} {100.0 * counts[i] / labels.size:.1f}%" for i in present]
    text_w = max([cv2.getTextSize(t, _FONT, 0.5, 1)[0][0] for t in lines] + [60])
    rows = max(height, pad * 2 + row * (len(lines) + 1))
    panel = np.full((rows, pad * 3 + swatch + text_w, 3), 255, np.uint8)
    cv2.putText(panel, "classes", (pad, pad + 12), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (i, text) in enumerate(zip(present, lines), start=1):
        y = pad + k * row
        cv2.rectangle(panel, (pad, y), (pad + swatch, y + swatch), tuple(palette[i].tolist()), -1)
        cv2.rectangle(panel, (pad, y), (pad + swatch, y + swatch), (0, 0, 0), 1)
        cv2.putText(panel, text, (2 * pad + swatch, y + 12), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def blend_classes(
    image: np.ndarray, labels: np.ndarray, palette: np.ndarray, opacity: float
) -> np.ndarray:
    """mmseg's blend ``(image * (1 - opacity) + colour * opacity).astype(uint8)``.

    Computed a strip of rows at a time: the same pixels as mmseg's without its full-size
    float64 copies (and its ``IndexError`` on a 1x1 image); labels outside the palette stay
    black.

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8, in the palette's channel order.
        labels (np.ndarray): ``(H, W)`` class labels.
        palette (np.ndarray): ``(num_classes, 3)`` uint8 colours.
        opacity (float): Opacity of the class colours, in (0, 1].
    """
    lut = np.concatenate([palette, np.zeros((1, 3), np.uint8)])  # last row: unknown labels
    out = np.empty_like(image)
    step = max(1, _STRIP_PIXELS // max(1, image.shape[1]))
    for top in range(0, image.shape[0], step):
        rows = slice(top, top + step)
        strip = labels[rows]
        mask = lut[np.where((strip >= 0) & (strip < len(palette)), strip, len(palette))]
        out[rows] = (image[rows] * (1 - opacity) + mask * opacity).astype(np.uint8)
    return out


def draw_segmentation(
    image_bgr: np.ndarray, labels: np.ndarray, meta: Dict[str, Any], opacity: float = 0.5
) -> np.ndarray:
    """The class colours blended over the BGR image, with the legend on its right.

    Args:
        image_bgr (np.ndarray): ``(H, W, 3)`` uint8 BGR image.
        labels (np.ndarray): ``(H, W)`` predicted labels.
        meta (dict): Model metadata (``classes``, ``palette``).
        opacity (float): Opacity of the class colours. Defaults to 0.5.
    """
    palette = np.ascontiguousarray(_palette(meta)[:, ::-1])  # draw in BGR: no full-size copy
    legend = _legend(labels, meta["classes"], palette, image_bgr.shape[0])
    height, width = image_bgr.shape[:2]
    canvas = np.full((legend.shape[0], width + legend.shape[1], 3), 255, np.uint8)
    canvas[:height, :width] = blend_classes(image_bgr, labels, palette, opacity)
    canvas[:, width:] = legend
    return canvas
