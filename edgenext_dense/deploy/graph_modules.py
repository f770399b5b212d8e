"""The graph modules that wrap each model for export and timing (see :mod:`.graphs`).

Each takes the normalised ``(B, 3, H, W)`` float32 RGB batch and returns plain tensors: a
backbone's maps, a detector's final detections (NMS in the graph), a segmentor's logits. The
classifier is exported as it is.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# NonMaxSuppression's max_output_boxes_per_class, iou_threshold and score_threshold
NmsSettings = Tuple[int, float, float]


class ExportError(ValueError):
    """A model that cannot be exported as asked; the message says why and what to do."""


class BackboneGraph(nn.Module):
    """``images -> feature maps``: a backbone's outputs as a tuple (for benchmarking)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, images: Tensor) -> Tuple[Tensor, ...]:
        return tuple(self.backbone(images))


class _NonMaxSuppression(torch.autograd.Function):
    """ONNX ``NonMaxSuppression`` as mmdeploy exports NMS, run eagerly with mmcv's ``nms``.

    Per image and class, greedy NMS of the boxes scoring above ``score_thr`` keeps at most
    ``max_per_class``; returns ``(K, 3)`` int64 rows ``(image, class, box)``.
    """

    @staticmethod
    def forward(ctx: Any, boxes: Tensor, scores: Tensor, settings: NmsSettings) -> Tensor:
        """Eager NMS on ``(B, N, 4)`` boxes and ``(B, C, N)`` scores."""
        from mmcv.ops import nms

        max_per_class, iou_threshold, score_thr = settings
        rows = [boxes.new_zeros((0, 3), dtype=torch.long)]
        for image, label in itertools.product(range(scores.shape[0]), range(scores.shape[1])):
            box = torch.nonzero(scores[image, label] > score_thr).squeeze(1)
            if box.numel():
                _, kept = nms(boxes[image, box], scores[image, label, box], iou_threshold)
                box = box[kept[:max_per_class]]
            rows.append(
                torch.stack([torch.full_like(box, image), torch.full_like(box, label), box], 1)
            )
        return torch.cat(rows)

    @staticmethod
    def symbolic(g: Any, boxes: Any, scores: Any, settings: NmsSettings) -> Any:
        """The ONNX operator with its settings as constants (int64, float32, float32)."""
        values = (torch.tensor([value]) for value in settings)
        return g.op(
            "NonMaxSuppression", boxes, scores, *(g.op("Constant", value_t=v) for v in values)
        )


def multiclass_nms(
    boxes: Tensor,
    scores: Tensor,
    score_thr: float,
    iou_threshold: float,
    max_per_img: int,
    max_per_class: int = -1,
) -> Tuple[Tensor, Tensor, Tensor]:
    """mmdet's per-class NMS and caps on a batch, tracing to ONNX ``NonMaxSuppression``.

    As mmdet's ``_bbox_post_process`` with :class:`~edgenext_dense.models.SSDLiteHead`'s
    ``max_per_class``: per-class NMS, each image's ``max_per_img`` best, then of those each
    class's ``max_per_class`` best.

    Args:
        boxes (Tensor): ``(B, N, 4)`` x1, y1, x2, y2.
        scores (Tensor): ``(B, C, N)`` class scores; a box competes above ``score_thr``.
        score_thr (float): Lowest score (excluded) a box competes with.
        iou_threshold (float): NMS suppresses an IoU above this with a better kept box.
        max_per_img (int): Detections kept per image, best first.
        max_per_class (int): Then kept per image and class; <= 0 keeps all. Defaults to -1.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``boxes (B, K, 4)``, ``scores (B, K)``, int64 ``labels
        (B, K)``: each image's best first, then padding (label -1, score 0, box 0).
    """
    settings = (int(max_per_img), float(iou_threshold), float(score_thr))
    selected = _NonMaxSuppression.apply(boxes, scores, settings)
    image, label, box = selected.unbind(1)
    # one row per image, scored -1 where a selection belongs to another image
    rows = torch.where(
        image == torch.arange(boxes.shape[0], device=boxes.device)[:, None],
        scores[image, label, box],
        -1.0,
    )
    top, order = rows.sort(dim=1, descending=True)
    top, order = top[:, :max_per_img], order[:, :max_per_img]
    keep = top >= 0
    if max_per_class > 0:
        labels = label[order]
        classes = torch.arange(scores.shape[1], device=scores.device)
        one_hot = (labels[..., None] == classes) & keep[..., None]
        rank = one_hot.long().cumsum(1).gather(2, labels[..., None]).squeeze(2)
        keep = keep & (rank <= max_per_class)
    top, moved = torch.where(keep, top, -1.0).sort(dim=1, descending=True)
    # as many columns as the batch's most detections (a data-dependent size that traces)
    columns = (top >= 0).any(0).nonzero().squeeze(1)
    top, order = top[:, columns], order.gather(1, moved)[:, columns]
    keep = top >= 0
    found = boxes.reshape(-1, 4)[(image * boxes.shape[1] + box)[order]]
    return (
        torch.where(keep[..., None], found, 0.0),
        torch.where(keep, top, 0.0),
        torch.where(keep, label[order], -1),
    )


class DetectorGraph(nn.Module):
    """``images -> (boxes, scores, labels)``: an mmdet anchor-based single-stage detector's
    ``predict`` with its ``test_cfg``, NMS included.

    As mmdet 3.3's ``_predict_by_feat_single`` and ``_bbox_post_process``: per level the
    ``nms_pre`` best (prior, class) scores, the head's ``bbox_coder.decode`` on the traced
    size's priors (a constant), clipped to the input, ``min_bbox_size`` (-1 or 0 only) and
    :func:`multiclass_nms`. Boxes stay in network-input pixels (the runtime rescales them) and
    NMS has no per-class offsets, so an IoU within float rounding of ``iou_threshold``, or boxes
    tied in score at a cut, may be decided differently from PyTorch.

    Args:
        detector (nn.Module): An mmdet ``SingleStageDetector`` whose head has a
            ``DeltaXYWHBBoxCoder`` (SSD, SSDLite, RetinaNet...).
        input_size (tuple[int, int]): ``(H, W)`` of the network input.

    Raises:
        ExportError: For a detector without an anchor head, with another box coder, or a
            ``test_cfg`` the graph cannot follow.
    """

    OUTPUT_NAMES = ("boxes", "scores", "labels")

    def __init__(self, detector: nn.Module, input_size: Tuple[int, int]) -> None:
        super().__init__()
        from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
        from mmdet.structures.bbox import get_box_tensor

        head = getattr(detector, "bbox_head", None)
        if head is None or not hasattr(head, "get_anchors"):
            raise ExportError(
                f"{type(detector).__name__} has no anchor-based bbox_head: only single-stage "
                "anchor detectors (SSDLite, SSD, RetinaNet) export"
            )
        if not isinstance(head.bbox_coder, DeltaXYWHBBoxCoder):
            raise ExportError(
                f"the head's box coder is {type(head.bbox_coder).__name__}; the export decodes "
                "DeltaXYWHBBoxCoder deltas only"
            )
        cfg = head.test_cfg or {}
        nms_cfg = dict(cfg.get("nms") or {})
        allowed = {"type", "iou_threshold", "split_thr"}
        if nms_cfg.get("type", "nms") != "nms" or not {"iou_threshold"} <= set(nms_cfg) <= allowed:
            raise ExportError(
                f"test_cfg.nms is {nms_cfg}; the graph runs ONNX NonMaxSuppression, which is "
                "mmcv's plain nms: use dict(type='nms', iou_threshold=...)"
            )
        self.min_bbox_size = float(cfg.get("min_bbox_size", -1))
        if self.min_bbox_size > 0:
            raise ExportError(
                f"test_cfg.min_bbox_size={self.min_bbox_size} is in original-image pixels, which "
                "the graph (network-input pixels) does not know: set it to -1 or 0 to export"
            )
        self.nms_pre = int(cfg.get("nms_pre", -1))
        self.nms = dict(
            score_thr=float(cfg.get("score_thr", 0.0)),
            iou_threshold=float(nms_cfg["iou_threshold"]),
            max_per_img=int(cfg["max_per_img"]),
            max_per_class=int(cfg.get("max_per_class", -1)),
        )
        self.detector = detector
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.clip_border = bool(head.bbox_coder.clip_border)

        h, w = self.input_size
        detector.eval()  # a probe forward gives the feature-map sizes; no BN update
        with torch.no_grad():
            cls_scores, _ = head(detector.extract_feat(torch.zeros(1, 3, h, w)))
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        img_meta = dict(img_shape=(h, w), pad_shape=(h, w), batch_input_shape=(h, w))
        anchors, _ = head.get_anchors(featmap_sizes, [img_meta], device="cpu")
        level_priors = [get_box_tensor(a).float() for a in anchors[0]]
        self.level_sizes: Tuple[int, ...] = tuple(int(p.shape[0]) for p in level_priors)
        self.register_buffer("priors", torch.cat(level_priors), persistent=False)

    def _passing_per_prior(self) -> int:
        """The most classes of one prior that can score above ``score_thr``: softmax scores sum
        to 1, so fewer than ``1 / score_thr`` of them exceed it (in exact arithmetic)."""
        classes = self.detector.bbox_head.num_classes
        thr = self.nms["score_thr"]
        if self.detector.bbox_head.use_sigmoid_cls or thr <= 0:
            return classes
        return min(classes, math.ceil(1.0 / thr) - 1)

    def _candidates(self, scores: Tensor, boxes: Tensor) -> Tensor:
        """``(B, N, C)`` mask of what mmdet hands to NMS: per level the ``nms_pre`` best
        (prior, class) pairs, boxes wider and taller than ``min_bbox_size``.

        A level whose priors cannot pass ``score_thr`` more than ``nms_pre`` times keeps all
        (a large ``TopK`` costs as much as the backbone on OpenVINO and ONNX Runtime).
        """
        keep = torch.ones_like(scores, dtype=torch.bool)
        if self.nms_pre > 0:
            levels = []
            for level in scores.split(self.level_sizes, dim=1):
                flat = level.reshape(level.shape[0], -1)
                if level.shape[1] * self._passing_per_prior() <= self.nms_pre:
                    levels.append(torch.ones_like(flat))
                    continue
                top = flat.topk(self.nms_pre, dim=1).indices
                levels.append(torch.zeros_like(flat).scatter(1, top, 1.0))
            keep = torch.cat(levels, 1).view_as(scores) > 0
        if self.min_bbox_size >= 0:
            wh = boxes[..., 2:] - boxes[..., :2]
            keep = keep & (wh > self.min_bbox_size).all(-1, keepdim=True)
        return keep

    def forward(self, images: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Detections ``boxes (B, K, 4)`` in input pixels, ``scores (B, K)``, ``labels (B, K)``
        (see :func:`multiclass_nms`)."""
        head = self.detector.bbox_head
        cls_scores, bbox_preds = head(self.detector.extract_feat(images))
        batch = images.shape[0]
        channels = head.cls_out_channels
        # float32 as SSDLiteHead.predict_by_feat decodes an autocast forward's maps
        logits = torch.cat(
            [s.permute(0, 2, 3, 1).reshape(batch, -1, channels) for s in cls_scores], dim=1
        ).float()
        deltas = torch.cat([d.permute(0, 2, 3, 1).reshape(batch, -1, 4) for d in bbox_preds], 1)
        scores = logits.sigmoid() if head.use_sigmoid_cls else logits.softmax(-1)[..., :-1]
        # no max_shape: under ONNX export the coder's clip imports mmdet 2's mmdet.core
        boxes = head.bbox_coder.decode(
            self.priors.repeat(batch, 1), deltas.float().reshape(-1, 4)
        ).reshape(batch, -1, 4)
        if self.clip_border:
            h, w = self.input_size
            boxes = torch.minimum(boxes.clamp(min=0), boxes.new_tensor([w, h, w, h]))
        scores = torch.where(self._candidates(scores, boxes), scores, -1.0)
        return multiclass_nms(boxes, scores.transpose(1, 2), **self.nms)


class SegmentorGraph(nn.Module):
    """``images -> seg_logits`` at the input size: an mmseg ``EncoderDecoder.encode_decode``."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor
        self.align_corners = bool(segmentor.decode_head.align_corners)

    def forward(self, images: Tensor) -> Tensor:
        logits = self.segmentor.decode_head(self.segmentor.extract_feat(images))
        return F.interpolate(
            logits, size=images.shape[2:], mode="bilinear", align_corners=self.align_corners
        )
