"""Numpy post-processing of the exported graphs' outputs, as mmdet/mmseg/the classifier do it:
the detections rescaled to the image (the graph ran mmdet's filtering and NMS), segmentation
logits resized bilinearly to the image and arg-maxed as mmseg's ``postprocess_result``.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import numpy as np

# Elements of one float32 strip of resized logits (32 MB): bounds the memory of big images.
_STRIP_ELEMENTS = 1 << 23


def detection_postprocess(
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    scale_factor: Sequence[float] = (1.0, 1.0),
) -> Dict[str, np.ndarray]:
    """One image's detections in original-image pixels, padding rows (label -1) dropped.

    Args:
        boxes (np.ndarray): ``(K, 4)`` boxes in network-input pixels.
        scores (np.ndarray): ``(K,)`` scores, best first.
        labels (np.ndarray): ``(K,)`` class indices.
        scale_factor (Sequence[float]): The resize's ``(w_scale, h_scale)``, divided out as
            mmdet's rescale. Defaults to ``(1.0, 1.0)``.

    Returns:
        dict: ``bboxes`` ``(K', 4)`` float32, ``scores`` float32, ``labels`` int64.
    """
    keep = labels >= 0
    inv = np.asarray([1.0 / s for s in scale_factor], np.float32)
    return dict(
        bboxes=boxes[keep].astype(np.float32).reshape(-1, 4) * np.tile(inv, 2),
        scores=scores[keep].astype(np.float32),
        labels=labels[keep].astype(np.int64),
    )


def _source_index(out_size: int, in_size: int, align_corners: bool) -> Tuple[np.ndarray, ...]:
    """PyTorch's bilinear source indices and weights along one axis (float32)."""
    dst = np.arange(out_size, dtype=np.float32)
    if align_corners:
        src = dst * np.float32((in_size - 1) / (out_size - 1) if out_size > 1 else 0)
    else:
        scale = np.float32(in_size / out_size)
        src = np.maximum(scale * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    i0 = np.minimum(src.astype(np.int64), in_size - 1)
    lam1 = np.minimum(src - i0.astype(np.float32), np.float32(1))
    return i0, np.minimum(i0 + 1, in_size - 1), np.float32(1) - lam1, lam1


def resize_bilinear(
    x: np.ndarray, size: Tuple[int, int], align_corners: bool = False, rows: slice = slice(None)
) -> np.ndarray:
    """``F.interpolate(x, size, mode='bilinear', align_corners=...)`` for ``(C, H, W)`` arrays.

    Args:
        x (np.ndarray): ``(C, H, W)`` float array.
        size (tuple[int, int]): Output ``(height, width)``.
        align_corners (bool): PyTorch's ``align_corners``. Defaults to False.
        rows (slice): The output rows to compute (the same numbers as from the whole map).
            Defaults to all.

    Returns:
        np.ndarray: ``(C, rows, width)`` float32.
    """
    x = np.asarray(x, np.float32)
    if x.shape[1:] == (int(size[0]), int(size[1])):
        return x[:, rows]
    w0, w1, lw0, lw1 = _source_index(int(size[1]), x.shape[2], align_corners)
    h0, h1, lh0, lh1 = (a[rows] for a in _source_index(int(size[0]), x.shape[1], align_corners))
    top, bottom = x[:, h0], x[:, h1]
    top = lw0 * top[:, :, w0] + lw1 * top[:, :, w1]
    bottom = lw0 * bottom[:, :, w0] + lw1 * bottom[:, :, w1]
    return lh0[:, None] * top + lh1[:, None] * bottom


def segmentation_labels(
    logits: np.ndarray, ori_shape: Tuple[int, int], post: Dict[str, Any]
) -> np.ndarray:
    """mmseg's ``postprocess_result`` for one image: resize to the original size, arg-max.

    A strip of rows at a time: a big photo never holds its full-size float logits.

    Args:
        logits (np.ndarray): ``(C, h, w)`` logits at the network input's size.
        ori_shape (tuple[int, int]): The original image's ``(H, W)``.
        post (dict): ``metadata['postprocess']`` (``align_corners``, ``threshold`` for
            single-class models).

    Returns:
        np.ndarray: ``(H, W)`` int64 class labels.
    """
    logits = np.asarray(logits, np.float32)
    height, width = int(ori_shape[0]), int(ori_shape[1])
    labels = np.empty((height, width), np.int64)
    step = max(1, _STRIP_ELEMENTS // max(1, logits.shape[0] * width))
    for top in range(0, height, step):
        rows = slice(top, min(height, top + step))
        align_corners = bool(post.get("align_corners", False))
        strip = resize_bilinear(logits, (height, width), align_corners, rows)
        if strip.shape[0] == 1:  # binary segmentation: sigmoid against the head's threshold
            labels[rows] = 1.0 / (1.0 + np.exp(-strip[0])) > post.get("threshold", 0.3)
        else:
            labels[rows] = strip.argmax(axis=0)
    return labels


def classification_topk(
    logits: np.ndarray, classes: Sequence[str], topk: int = 5
) -> Dict[str, Any]:
    """Softmax and the ``topk`` best classes, as :func:`edgenext_dense.apis.inference_classifier`.

    Args:
        logits (np.ndarray): ``(num_classes,)`` logits.
        classes (Sequence[str]): Class names by label.
        topk (int): How many classes to list. Defaults to 5.

    Returns:
        dict: ``pred_label``, ``pred_score``, ``pred_class`` and ``topk`` (a list of
        ``{'label', 'score', 'class'}``).
    """
    z = np.asarray(logits, np.float64)
    prob = np.exp(z - z.max())
    prob /= prob.sum()
    order = np.argsort(-prob, kind="stable")[:topk]
    top = [{"label": int(i), "score": float(prob[i]), "class": str(classes[i])} for i in order]
    best = top[0]
    return dict(
        pred_label=best["label"], pred_score=best["score"], pred_class=best["class"], topk=top
    )
