"""The test pipelines' preprocessing without mmcv, pixel for pixel, then the data preprocessor's
channel conversion and ``(x - mean) / std`` into a float32 NCHW batch of one.

Resizes: ``stretch`` (mmdet ``Resize(keep_ratio=False)``, ``cv2.resize``), ``keep_ratio``
(``mmcv.imrescale``), ``short_side_crop`` (the classifier's Pillow resize, then ``CenterCrop``)
and ``none``.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import cv2
import numpy as np

_CV2_INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


def _short_side_crop(img: np.ndarray, short: int, crop: int, interpolation: str) -> np.ndarray:
    """The classifier's Pillow resize of the short side (long side truncated), then mmcv's
    ``CenterCrop`` (rounded offsets, clipped to the image)."""
    from PIL import Image

    h, w = img.shape[:2]
    size = (short, int(short * h / w)) if w < h else (int(short * w / h), short)
    resample = getattr(Image.Resampling, interpolation.upper())
    img = np.asarray(Image.fromarray(img).resize(size, resample))
    h, w = img.shape[:2]
    y1, x1 = max(0, int(round((h - crop) / 2.0))), max(0, int(round((w - crop) / 2.0)))
    return img[y1 : min(h, y1 + crop), x1 : min(w, x1 + crop)]


def resize_image(img: np.ndarray, resize: Dict[str, Any]) -> Tuple[np.ndarray, Tuple[float, float]]:
    """Resize as the exported model's test pipeline.

    Args:
        img (np.ndarray): ``(H, W, 3)`` uint8 image.
        resize (dict): ``metadata['preprocess']['resize']``.

    Returns:
        tuple[np.ndarray, tuple[float, float]]: The resized image and mmdet's ``scale_factor``
        ``(new_w / w, new_h / h)`` (``(1, 1)`` when not resized or cropped).

    Raises:
        ValueError: For a resize type or interpolation this runtime does not know, or an image
            so elongated that a side would resize to 0 pixels.
    """
    kind, (h, w) = resize.get("type"), img.shape[:2]
    if kind == "none":
        return img, (1.0, 1.0)
    if kind == "short_side_crop":
        args = int(resize["short_side"]), int(resize["crop_size"])
        return _short_side_crop(img, *args, resize.get("interpolation", "bicubic")), (1.0, 1.0)
    interp = resize.get("interpolation", "bilinear")
    if interp not in _CV2_INTERP:
        raise ValueError(
            f"unsupported interpolation {interp!r}; expected one of {list(_CV2_INTERP)}"
        )
    if kind == "stretch":
        size = (int(resize["size"][0]), int(resize["size"][1]))
    elif kind == "keep_ratio":  # mmcv: long side in max(scale), short side in min(scale)
        scale = resize["scale"]
        factor = float(min(max(scale) / max(h, w), min(scale) / min(h, w)))
        size = (int(w * factor + 0.5), int(h * factor + 0.5))
    else:
        raise ValueError(f"unsupported resize type {kind!r}")
    if min(size) < 1:  # cv2.resize would fail with an assertion naming no size
        raise ValueError(
            f"a {w}x{h} image resizes to {size[0]}x{size[1]} for this model: its sides are "
            "too unequal; crop or pad it nearer to the model's aspect ratio"
        )
    out = cv2.resize(img, size, interpolation=_CV2_INTERP[interp])
    return out, (out.shape[1] / w, out.shape[0] / h)


def preprocess_image(img: np.ndarray, meta: Dict[str, Any]) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Turn a BGR image into the exported model's input, as the config's test pipeline.

    Args:
        img (np.ndarray): ``(H, W, 3)`` uint8 BGR image.
        meta (dict): The model's metadata.

    Returns:
        tuple[np.ndarray, dict]: The ``(1, 3, h, w)`` float32 input and the image meta:
        ``ori_shape`` ``(H, W)``, ``img_shape`` ``(h, w)`` and ``scale_factor``.

    Raises:
        ValueError: When the resized image does not have the size a fixed-size graph takes.
    """
    pre = meta["preprocess"]
    resized, scale_factor = resize_image(img, pre["resize"])
    expected = tuple(int(v) for v in meta["input_size"])
    if not meta.get("dynamic_hw", False) and resized.shape[:2] != expected:
        raise ValueError(
            f"the preprocessed image is {resized.shape[0]}x{resized.shape[1]} but the model "
            f"takes {expected[0]}x{expected[1]}: the metadata's resize does not produce "
            "the graph's input size; re-export the model"
        )
    x = (resized[..., ::-1] if pre.get("to_rgb", True) else resized).astype(np.float32)
    x = (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    info = dict(
        ori_shape=tuple(img.shape[:2]),
        img_shape=tuple(resized.shape[:2]),
        scale_factor=scale_factor,
    )
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None], info
