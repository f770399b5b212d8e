"""Numpy post-processing of the exported graphs' outputs, as mmdet/mmseg do it in PyTorch.

Detection (:func:`detection_postprocess`): the graph returns, per prior, the decoded box
(x1, y1, x2, y2 in input pixels, clipped to the input) and the per-class softmax scores
(background dropped). What remains is mmdet 3.3's ``BaseDenseHead._predict_by_feat_single``
and ``_bbox_post_process`` with the config's ``test_cfg``:

1. per feature level, keep the (prior, class) pairs scoring above ``score_thr`` and, of those,
   the ``nms_pre`` best (``filter_scores_and_topk``);
2. rescale the boxes to the original image (divide by the resize's ``scale_factor``);
3. drop boxes not wider and taller than ``min_bbox_size`` (when it is >= 0);
4. per-class NMS at ``iou_threshold`` (mmcv's ``batched_nms``: boxes offset by class so that
   classes never suppress each other, then greedy NMS with IoU ``> iou_threshold``
   suppressing), best first;
5. keep the first ``max_per_img``, then the first ``max_per_class`` of each class (when > 0,
   our SSDLiteHead's cvnets top-k).

Segmentation (:func:`segmentation_labels`): mmseg's ``postprocess_result``: the logits
(already at the network input's size) are resized bilinearly to the original image, then
arg-maxed over the classes, a strip of rows at a time.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS as mmcv's CPU kernel (float32 arithmetic, no +1 offset).

    Args:
        boxes (np.ndarray): ``(N, 4)`` float32 x1, y1, x2, y2.
        scores (np.ndarray): ``(N,)`` scores.
        iou_threshold (float): A box whose IoU with a kept, better box is above this is
            suppressed.

    Returns:
        np.ndarray: int64 indices of the kept boxes, best score first.
    """
    boxes = np.asarray(boxes, np.float32)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")
    threshold = np.float32(iou_threshold)
    keep: List[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(iou > threshold)]
    return np.asarray(keep, dtype=np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float
) -> np.ndarray:
    """Per-class NMS with mmcv's coordinate-offset trick.

    Args:
        boxes (np.ndarray): ``(N, 4)`` float32 boxes.
        scores (np.ndarray): ``(N,)`` scores.
        labels (np.ndarray): ``(N,)`` class indices.
        iou_threshold (float): NMS IoU threshold.

    Returns:
        np.ndarray: int64 indices of the kept boxes, best score first.
    """
    if boxes.shape[0] == 0:
        return np.zeros((0,), np.int64)
    boxes = np.asarray(boxes, np.float32)
    offsets = labels.astype(np.float32) * (boxes.max() + np.float32(1))
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def _rank_within_class(labels: np.ndarray) -> np.ndarray:
    """Position of each entry among the entries of its class, in the given order."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    rank = np.empty(len(labels), np.int64)
    rank[order] = np.arange(len(labels)) - np.searchsorted(sorted_labels, sorted_labels)
    return rank


def _filter_scores_and_topk(
    scores: np.ndarray, score_thr: float, topk: int
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mmdet's ``filter_scores_and_topk`` on one level: ``(scores, prior_idx, labels)``."""
    valid = scores > np.float32(score_thr)
    prior_idx, labels = np.nonzero(valid)  # row-major, as torch.nonzero
    values = scores[prior_idx, labels]
    order = np.argsort(-values, kind="stable")
    if topk > 0:
        order = order[:topk]
    return values[order], prior_idx[order], labels[order]


def detection_postprocess(
    boxes: np.ndarray,
    scores: np.ndarray,
    post: Dict[str, Any],
    scale_factor: Sequence[float] = (1.0, 1.0),
) -> Dict[str, np.ndarray]:
    """Turn one image's graph outputs into final detections (see the module docstring).

    Args:
        boxes (np.ndarray): ``(N, 4)`` decoded boxes in network-input pixels.
        scores (np.ndarray): ``(N, num_classes)`` class scores.
        post (dict): ``metadata['postprocess']``: ``score_thr``, ``nms_pre``,
            ``iou_threshold``, ``max_per_img``, ``max_per_class`` (optional),
            ``min_bbox_size`` and ``level_sizes``.
        scale_factor (Sequence[float]): The resize's ``(w_scale, h_scale)``; boxes are
            divided by it. Defaults to ``(1.0, 1.0)``.

    Returns:
        dict: ``bboxes`` ``(K, 4)`` float32 in original-image pixels, ``scores`` ``(K,)``
        float32 and ``labels`` ``(K,)`` int64, best score first.

    Raises:
        ValueError: When the level sizes do not add up to the number of priors.
    """
    level_sizes = [int(n) for n in post["level_sizes"]]
    if sum(level_sizes) != boxes.shape[0] or scores.shape[0] != boxes.shape[0]:
        raise ValueError(
            f"the metadata's level_sizes add up to {sum(level_sizes)} priors but the model "
            f"returned {boxes.shape[0]} boxes and {scores.shape[0]} score rows"
        )
    kept_scores, kept_boxes, kept_labels = [], [], []
    start = 0
    for size in level_sizes:
        values, prior_idx, labels = _filter_scores_and_topk(
            scores[start : start + size], post["score_thr"], int(post["nms_pre"])
        )
        kept_scores.append(values)
        kept_boxes.append(boxes[start : start + size][prior_idx])
        kept_labels.append(labels)
        start += size
    det_scores = np.concatenate(kept_scores).astype(np.float32)
    det_boxes = np.concatenate(kept_boxes).astype(np.float32).reshape(-1, 4)
    det_labels = np.concatenate(kept_labels).astype(np.int64)

    inv = np.asarray([1.0 / s for s in scale_factor], np.float32)
    det_boxes = det_boxes * np.tile(inv, 2)
    min_size = post.get("min_bbox_size", -1)
    if min_size is not None and min_size >= 0:
        w = det_boxes[:, 2] - det_boxes[:, 0]
        h = det_boxes[:, 3] - det_boxes[:, 1]
        valid = (w > min_size) & (h > min_size)
        det_boxes, det_scores, det_labels = det_boxes[valid], det_scores[valid], det_labels[valid]
    keep = batched_nms(det_boxes, det_scores, det_labels, post["iou_threshold"])
    keep = keep[: int(post["max_per_img"])]
    max_per_class = int(post.get("max_per_class", -1))
    if max_per_class > 0:
        keep = keep[_rank_within_class(det_labels[keep]) < max_per_class]
    return dict(bboxes=det_boxes[keep], scores=det_scores[keep], labels=det_labels[keep])


def _source_index(out_size: int, in_size: int, align_corners: bool) -> Tuple[np.ndarray, ...]:
    """PyTorch's bilinear source indices and weights along one axis (float32)."""
    dst = np.arange(out_size, dtype=np.float32)
    if align_corners:
        scale = np.float32((in_size - 1) / (out_size - 1)) if out_size > 1 else np.float32(0)
        src = dst * scale
    else:
        scale = np.float32(in_size / out_size)
        src = np.maximum(scale * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0))
    i0 = np.minimum(src.astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    lam1 = np.minimum(src - i0.astype(np.float32), np.float32(1))
    return i0, i1, np.float32(1) - lam1, lam1


def _bilinear_rows(
    x: np.ndarray, size: Tuple[int, int], rows: slice, align_corners: bool
) -> np.ndarray:
    """Rows ``rows`` of :func:`resize_bilinear`'s output, computed alone: the same numbers."""
    out_h, out_w = int(size[0]), int(size[1])
    w0, w1, lw0, lw1 = _source_index(out_w, x.shape[2], align_corners)
    h0, h1, lh0, lh1 = (a[rows] for a in _source_index(out_h, x.shape[1], align_corners))
    rows0, rows1 = x[:, h0], x[:, h1]
    top = lw0 * rows0[:, :, w0] + lw1 * rows0[:, :, w1]
    bottom = lw0 * rows1[:, :, w0] + lw1 * rows1[:, :, w1]
    return lh0[:, None] * top + lh1[:, None] * bottom


def resize_bilinear(
    x: np.ndarray, size: Tuple[int, int], align_corners: bool = False
) -> np.ndarray:
    """``F.interpolate(x, size, mode='bilinear', align_corners=...)`` for ``(C, H, W)`` arrays.

    Args:
        x (np.ndarray): ``(C, H, W)`` float array.
        size (tuple[int, int]): Output ``(height, width)``.
        align_corners (bool): PyTorch's ``align_corners``. Defaults to False.

    Returns:
        np.ndarray: ``(C, height, width)`` float32.
    """
    x = np.asarray(x, np.float32)
    if x.shape[1:] == (int(size[0]), int(size[1])):
        return x
    return _bilinear_rows(x, size, slice(None), align_corners)


# Elements of one float32 strip of resized logits (32 MB): bounds the memory of big images.
_STRIP_ELEMENTS = 1 << 23


def segmentation_labels(
    logits: np.ndarray, ori_shape: Tuple[int, int], post: Dict[str, Any]
) -> np.ndarray:
    """mmseg's ``postprocess_result`` for one image: resize to the original size, arg-max.

    The logits are resized and arg-maxed a strip of rows at a time, so that a big photo never
    holds its ``(C, H, W)`` float logits (4 GB for 21 classes at 48 megapixels); each output
    pixel is the same number as from the whole map at once.

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
    align_corners = bool(post.get("align_corners", False))
    labels = np.empty((height, width), np.int64)
    step = max(1, _STRIP_ELEMENTS // max(1, logits.shape[0] * width))
    for top in range(0, height, step):
        rows = slice(top, min(height, top + step))
        if logits.shape[1:] == (height, width):
            strip = logits[:, rows]
        else:
            strip = _bilinear_rows(logits, (height, width), rows, align_corners)
        if strip.shape[0] == 1:  # binary segmentation: sigmoid against the head's threshold
            prob = 1.0 / (1.0 + np.exp(-strip[0]))
            labels[rows] = prob > post.get("threshold", 0.3)
        else:
            labels[rows] = strip.argmax(axis=0)
    return labels


def classification_topk(
    logits: np.ndarray, classes: Sequence[str], topk: int = 5
) -> Dict[str, Any]:
    """Softmax and the ``topk`` best classes of one image's logits.

    Args:
        logits (np.ndarray): ``(num_classes,)`` logits.
        classes (Sequence[str]): Class names by label.
        topk (int): How many classes to list. Defaults to 5.

    Returns:
        dict: ``pred_label``, ``pred_score``, ``pred_class`` and ``topk`` (a list of
        ``{'label', 'score', 'class'}``), as :func:`edgenext_dense.apis.inference_classifier`.
    """
    z = np.asarray(logits, np.float64)
    prob = np.exp(z - z.max())
    prob /= prob.sum()
    order = np.argsort(-prob, kind="stable")[: min(topk, prob.size)]
    top = [{"label": int(i), "score": float(prob[i]), "class": str(classes[i])} for i in order]
    return dict(
        pred_label=top[0]["label"],
        pred_score=top[0]["score"],
        pred_class=top[0]["class"],
        topk=top,
    )
