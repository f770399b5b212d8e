"""The test pipelines' preprocessing, without mmcv.

Each resize reproduces the mmcv operation the config's test pipeline runs, pixel for pixel:

- ``stretch``: mmdet ``Resize(scale=(W, H), keep_ratio=False)``, ``cv2.resize`` to W x H;
- ``keep_ratio``: mmcv ``Resize(scale=(A, B), keep_ratio=True)`` (``mmcv.imrescale``): the
  largest factor that fits the long side in ``max(A, B)`` and the short side in
  ``min(A, B)``, sizes rounded as ``int(x * factor + 0.5)``;
- ``short_side_crop``: the classifier's bicubic Pillow resize of the short side, then
  mmcv ``CenterCrop``;
- ``none``: the image as read.

Images, read as BGR uint8 by :func:`.images.read_image` (what ``mmcv.imread`` does), are
normalised as the model's data preprocessor does (channel conversion, then ``(x - mean) / std``
in float32) into an NCHW batch of one.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import cv2
import numpy as np

_CV2_INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


def rescale_size(width: int, height: int, scale: Sequence[float]) -> Tuple[int, int]:
    """mmcv's ``rescale_size`` for a ``(A, B)`` scale: the keep-ratio output size.

    Args:
        width (int): Image width.
        height (int): Image height.
        scale (Sequence[float]): ``(A, B)``; the long side fits in ``max(A, B)`` and the
            short side in ``min(A, B)``.

    Returns:
        tuple[int, int]: ``(new_width, new_height)``.
    """
    factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    return int(width * float(factor) + 0.5), int(height * float(factor) + 0.5)


def _center_crop(img: np.ndarray, crop: int) -> np.ndarray:
    """mmcv ``CenterCrop(crop_size=crop)`` (rounded offsets, clipped to the image)."""
    h, w = img.shape[:2]
    y1 = max(0, int(round((h - crop) / 2.0)))
    x1 = max(0, int(round((w - crop) / 2.0)))
    return img[y1 : min(h, y1 + crop), x1 : min(w, x1 + crop)]


def _resize_short_side(img: np.ndarray, short: int, interpolation: str) -> np.ndarray:
    """The classifier's resize: short side to ``short`` with Pillow, long side truncated."""
    from PIL import Image

    h, w = img.shape[:2]
    size = (short, int(short * h / w)) if w < h else (int(short * w / h), short)
    resample = {
        "bicubic": Image.Resampling.BICUBIC,
        "bilinear": Image.Resampling.BILINEAR,
        "nearest": Image.Resampling.NEAREST,
    }[interpolation]
    return np.asarray(Image.fromarray(img).resize(size, resample))


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
    kind = resize.get("type")
    h, w = img.shape[:2]
    if kind == "none":
        return img, (1.0, 1.0)
    if kind == "short_side_crop":
        interp = resize.get("interpolation", "bicubic")
        out = _resize_short_side(img, int(resize["short_side"]), interp)
        return _center_crop(out, int(resize["crop_size"])), (1.0, 1.0)
    interp = resize.get("interpolation", "bilinear")
    if interp not in _CV2_INTERP:
        raise ValueError(
            f"unsupported interpolation {interp!r}; expected one of {list(_CV2_INTERP)}"
        )
    if kind == "stretch":
        size = (int(resize["size"][0]), int(resize["size"][1]))
    elif kind == "keep_ratio":
        size = rescale_size(w, h, resize["scale"])
    else:
        raise ValueError(f"unsupported resize type {kind!r}")
    if min(size) < 1:  # cv2.resize would fail with an assertion naming no size
        raise ValueError(
            f"a {w}x{h} image resizes to {size[0]}x{size[1]} for this model: its sides are "
            "too unequal; crop or pad it nearer to the model's aspect ratio"
        )
    out = cv2.resize(img, size, interpolation=_CV2_INTERP[interp])
    return out, (out.shape[1] / w, out.shape[0] / h)


def normalize(img: np.ndarray, preprocess: Dict[str, Any]) -> np.ndarray:
    """Channel conversion and mean/std normalisation into a ``(1, 3, H, W)`` float32 batch.

    Args:
        img (np.ndarray): ``(H, W, 3)`` uint8 BGR image (already resized).
        preprocess (dict): ``metadata['preprocess']`` (``mean``, ``std``, ``to_rgb``).

    Returns:
        np.ndarray: ``(1, 3, H, W)`` float32, C-contiguous.
    """
    x = img[..., ::-1] if preprocess.get("to_rgb", True) else img
    x = x.astype(np.float32)
    mean = np.asarray(preprocess["mean"], np.float32)
    std = np.asarray(preprocess["std"], np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]


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
    resized, scale_factor = resize_image(img, meta["preprocess"]["resize"])
    if not meta.get("dynamic_hw", False):
        expected = tuple(int(v) for v in meta["input_size"])
        if resized.shape[:2] != expected:
            raise ValueError(
                f"the preprocessed image is {resized.shape[0]}x{resized.shape[1]} but the model "
                f"takes {expected[0]}x{expected[1]}: the metadata's resize does not produce "
                "the graph's input size; re-export the model"
            )
    info = dict(
        ori_shape=tuple(img.shape[:2]),
        img_shape=tuple(resized.shape[:2]),
        scale_factor=scale_factor,
    )
    return normalize(resized, meta["preprocess"]), info
