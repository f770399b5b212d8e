"""The demos' drawn outputs with OpenCV only: boxes with class and score, blended masks.

The layouts follow ``tools/demo/image_demo.py`` (mmdet's ``DetLocalVisualizer``: one colour
per class, the class name and score above each box) and mmseg's ``SegLocalVisualizer`` for
segmentation (the blend ``image * (1 - opacity) + colour * opacity``, see
:func:`blend_classes`), plus a legend of the classes present with their share of the pixels,
as the PyTorch segmentation demo draws it (:func:`edgenext_dense.apis.seg_demo.render`).
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Union

import cv2
import numpy as np

Palette = Union[np.ndarray, Sequence[Sequence[int]]]


def _palette(meta: Dict[str, Any]) -> np.ndarray:
    """``(num_classes, 3)`` RGB colours: the metadata's, else a fixed random palette."""
    classes = meta["classes"]
    palette = meta.get("palette") or []
    if len(palette) != len(classes):
        rng = np.random.default_rng(42)
        return rng.integers(0, 256, size=(len(classes), 3)).astype(np.uint8)
    return np.asarray(palette, np.uint8).reshape(-1, 3)


def draw_detections(
    image_bgr: np.ndarray, detections: Sequence[Dict[str, Any]], meta: Dict[str, Any]
) -> np.ndarray:
    """Draw boxes, class names and scores.

    Args:
        image_bgr (np.ndarray): ``(H, W, 3)`` uint8 BGR image.
        detections (Sequence[dict]): Records with ``label``, ``class``, ``score``, ``bbox``.
        meta (dict): Model metadata (``classes``, ``palette``).

    Returns:
        np.ndarray: The drawn BGR image (a copy).
    """
    canvas = image_bgr.copy()
    palette = _palette(meta)
    thick = max(1, round(min(canvas.shape[:2]) / 300))
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    for det in detections:
        r, g, b = (int(c) for c in palette[det["label"] % len(palette)])
        x1, y1, x2, y2 = (int(round(v)) for v in det["bbox"])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (b, g, r), thick)
        text = f"{det['class']}: {det['score']:.2f}"
        (tw, th), base = cv2.getTextSize(text, font, scale, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 2, top + th + base + 2), (0, 0, 0), -1)
        cv2.putText(
            canvas, text, (x1 + 1, top + th + 1), font, scale, (255, 255, 255), 1, cv2.LINE_AA
        )
    return canvas


def draw_legend(
    labels: np.ndarray, classes: Sequence[str], palette: Palette, height: int
) -> np.ndarray:
    """A white RGB panel listing the classes present, largest share first, with their colour.

    Args:
        labels (np.ndarray): ``(H, W)`` predicted labels.
        classes (Sequence[str]): Class names.
        palette (np.ndarray | Sequence[Sequence[int]]): ``(num_classes, 3)`` RGB colours.
        height (int): Least panel height (the image's).

    Returns:
        np.ndarray: ``(max(height, rows), W_legend, 3)`` uint8 RGB.
    """
    counts = np.bincount(labels.ravel(), minlength=len(classes))[: len(classes)]
    present = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    row, pad, swatch = 22, 8, 14
    lines = [f"{classes[i]} {100.0 * counts[i] / labels.size:.1f}%" for i in present]
    text_w = max([cv2.getTextSize(t, font, scale, thick)[0][0] for t in lines] + [60])
    panel = np.full(
        (max(height, pad * 2 + row * (len(lines) + 1)), pad * 3 + swatch + text_w, 3),
        255,
        np.uint8,
    )
    cv2.putText(panel, "classes", (pad, pad + 12), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
    for k, (i, text) in enumerate(zip(present, lines), start=1):
        y = pad + k * row
        color = tuple(int(c) for c in palette[i])
        cv2.rectangle(panel, (pad, y), (pad + swatch, y + swatch), color, -1)
        cv2.rectangle(panel, (pad, y), (pad + swatch, y + swatch), (0, 0, 0), 1)
        cv2.putText(
            panel, text, (2 * pad + swatch, y + 12), font, scale, (0, 0, 0), thick, cv2.LINE_AA
        )
    return panel


def add_legend(
    blended_rgb: np.ndarray, labels: np.ndarray, classes: Sequence[str], palette: Palette
) -> np.ndarray:
    """Put the legend of :func:`draw_legend` on the right of a blended picture.

    Args:
        blended_rgb (np.ndarray): ``(H, W, 3)`` uint8 RGB, the class colours over the image
            (or BGR, with a BGR palette).
        labels (np.ndarray): ``(H, W)`` predicted labels.
        classes (Sequence[str]): Class names.
        palette (np.ndarray | Sequence[Sequence[int]]): ``(num_classes, 3)`` RGB colours.

    Returns:
        np.ndarray: ``(max(H, legend rows), W + W_legend, 3)`` uint8 on white, in the
        picture's channel order.
    """
    legend = draw_legend(labels, classes, palette, blended_rgb.shape[0])
    canvas = np.full((legend.shape[0], blended_rgb.shape[1] + legend.shape[1], 3), 255, np.uint8)
    canvas[: blended_rgb.shape[0], : blended_rgb.shape[1]] = blended_rgb
    canvas[:, blended_rgb.shape[1] :] = legend
    return canvas


# Pixels of one strip of the blend (its float64 temporaries take 24 bytes a pixel).
_STRIP_PIXELS = 1 << 21


def blend_classes(
    image: np.ndarray, labels: np.ndarray, palette: Palette, opacity: float
) -> np.ndarray:
    """Blend the class colours over an image, as mmseg's ``SegLocalVisualizer`` without labels.

    ``(image * (1 - opacity) + colour * opacity).astype(uint8)``, labels outside the palette
    left black, computed a strip of rows at a time: the same pixels as mmseg's, without its
    full-size float64 copies (3.5 GB for a 48-megapixel photo) and its ``IndexError`` on a
    1x1 image.

    Args:
        image (np.ndarray): ``(H, W, 3)`` uint8, in the palette's channel order.
        labels (np.ndarray): ``(H, W)`` class labels.
        palette (np.ndarray | Sequence[Sequence[int]]): ``(num_classes, 3)`` colours.
        opacity (float): Opacity of the class colours, in (0, 1].

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8, the blended image.
    """
    colors = np.asarray(palette, np.uint8).reshape(-1, 3)
    lut = np.concatenate([colors, np.zeros((1, 3), np.uint8)])  # last row: unknown labels
    out = np.empty_like(image)
    step = max(1, _STRIP_PIXELS // max(1, image.shape[1]))
    for top in range(0, image.shape[0], step):
        rows = slice(top, top + step)
        strip = labels[rows]
        known = (strip >= 0) & (strip < len(colors))
        mask = lut[np.where(known, strip, len(colors))]
        out[rows] = (image[rows] * (1 - opacity) + mask * opacity).astype(np.uint8)
    return out


def draw_segmentation(
    image_bgr: np.ndarray, labels: np.ndarray, meta: Dict[str, Any], opacity: float = 0.5
) -> np.ndarray:
    """Blend the class colours over the image and add the legend.

    Args:
        image_bgr (np.ndarray): ``(H, W, 3)`` uint8 BGR image.
        labels (np.ndarray): ``(H, W)`` predicted labels.
        meta (dict): Model metadata (``classes``, ``palette``).
        opacity (float): Opacity of the class colours. Defaults to 0.5.

    Returns:
        np.ndarray: The BGR picture: the blended image with the legend on its right.
    """
    palette_bgr = np.ascontiguousarray(_palette(meta)[:, ::-1])  # draw in BGR: no full copy
    blended = blend_classes(image_bgr, labels, palette_bgr, opacity)
    return add_legend(blended, labels, meta["classes"], palette_bgr)
