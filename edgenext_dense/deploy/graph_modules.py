"""The graph modules that wrap each model for export and timing (see :mod:`.graphs`).

Each takes the normalised ``(B, 3, H, W)`` float32 RGB batch and returns plain tensors:
classifier logits, a detector's decoded boxes and per-class scores, a segmentor's logits.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BackboneGraph", "ClassifierGraph", "DetectorGraph", "ExportError", "SegmentorGraph"]


class ExportError(ValueError):
    """A model that cannot be exported as asked; the message says why and what to do."""


class ClassifierGraph(nn.Module):
    """``images -> logits``: :class:`~edgenext_dense.apis.EdgeNeXtClassifier` as is.

    Args:
        classifier (nn.Module): The classifier.
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)``."""
        return self.classifier(images)


class BackboneGraph(nn.Module):
    """``images -> feature maps``: a backbone's outputs (for benchmarking).

    Args:
        backbone (nn.Module): A backbone returning a tuple of NCHW maps.
    """

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The backbone's maps."""
        return tuple(self.backbone(images))


class DetectorGraph(nn.Module):
    """``images -> (boxes, scores)`` of an mmdet anchor-based single-stage detector.

    The priors of the traced input size are computed once (the head's ``get_anchors``, after
    one probe forward in eval mode for the feature-map sizes) and stored as a constant; the
    deltas are decoded as mmdet's ``delta2bbox`` (same operations, so the same float results)
    and the boxes clipped to the input.

    Args:
        detector (nn.Module): An mmdet ``SingleStageDetector`` whose head has a
            ``DeltaXYWHBBoxCoder`` (SSD, SSDLite, RetinaNet...).
        input_size (tuple[int, int]): ``(H, W)`` of the network input.

    Raises:
        ExportError: For a detector without ``bbox_head`` or with another box coder.
    """

    def __init__(self, detector: nn.Module, input_size: Tuple[int, int]) -> None:
        super().__init__()
        from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
        from mmdet.structures.bbox import get_box_tensor

        head = getattr(detector, "bbox_head", None)
        if head is None or not hasattr(head, "get_anchors"):
            raise ExportError(
                f"{type(detector).__name__} has no anchor-based bbox_head: only single-stage "
                "anchor detectors (SSDLite, SSD, RetinaNet) export with decoded boxes"
            )
        if not isinstance(head.bbox_coder, DeltaXYWHBBoxCoder):
            raise ExportError(
                f"the head's box coder is {type(head.bbox_coder).__name__}; the export decodes "
                "DeltaXYWHBBoxCoder deltas only"
            )
        self.detector = detector
        self.input_size = (int(input_size[0]), int(input_size[1]))
        coder = head.bbox_coder
        self.means = tuple(float(m) for m in coder.means)
        self.stds = tuple(float(s) for s in coder.stds)
        self.clip_border = bool(coder.clip_border)
        self.add_ctr_clamp = bool(coder.add_ctr_clamp)
        self.ctr_clamp = float(coder.ctr_clamp)
        self.max_ratio = float(np.abs(np.log(16 / 1000)))  # delta2bbox's wh_ratio_clip

        h, w = self.input_size
        detector.eval()  # the probe below must not update BN statistics
        with torch.no_grad():
            cls_scores, _ = head(detector.extract_feat(torch.zeros(1, 3, h, w)))
        featmap_sizes = [tuple(s.shape[-2:]) for s in cls_scores]
        shape = (h, w)
        img_meta = dict(img_shape=shape, pad_shape=shape, batch_input_shape=shape)
        anchors, _ = head.get_anchors(featmap_sizes, [img_meta], device="cpu")
        level_priors = [get_box_tensor(a).float() for a in anchors[0]]
        self.level_sizes: Tuple[int, ...] = tuple(int(p.shape[0]) for p in level_priors)
        self.register_buffer("priors", torch.cat(level_priors), persistent=False)

    def _decode(self, deltas: torch.Tensor) -> torch.Tensor:
        """mmdet ``delta2bbox`` on ``(B, N, 4)`` deltas against the stored priors."""
        means = deltas.new_tensor(self.means)
        stds = deltas.new_tensor(self.stds)
        denorm = deltas * stds + means
        dxy, dwh = denorm[..., :2], denorm[..., 2:]
        pxy = (self.priors[:, :2] + self.priors[:, 2:]) * 0.5
        pwh = self.priors[:, 2:] - self.priors[:, :2]
        dxy_wh = pwh * dxy
        if self.add_ctr_clamp:
            dxy_wh = torch.clamp(dxy_wh, max=self.ctr_clamp, min=-self.ctr_clamp)
            dwh = torch.clamp(dwh, max=self.max_ratio)
        else:
            dwh = dwh.clamp(min=-self.max_ratio, max=self.max_ratio)
        gxy = pxy + dxy_wh
        gwh = pwh * dwh.exp()
        boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
        if self.clip_border:
            h, w = self.input_size
            upper = deltas.new_tensor([w, h, w, h])
            boxes = torch.minimum(boxes.clamp(min=0), upper)
        return boxes

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decoded boxes ``(B, N, 4)`` and class scores ``(B, N, num_classes)``."""
        head = self.detector.bbox_head
        cls_scores, bbox_preds = head(self.detector.extract_feat(images))
        batch = images.shape[0]
        channels = head.cls_out_channels
        logits = torch.cat(
            [s.permute(0, 2, 3, 1).reshape(batch, -1, channels) for s in cls_scores], dim=1
        )
        deltas = torch.cat([d.permute(0, 2, 3, 1).reshape(batch, -1, 4) for d in bbox_preds], 1)
        if head.use_sigmoid_cls:
            scores = logits.sigmoid()
        else:
            scores = logits.softmax(-1)[..., :-1]
        return self._decode(deltas), scores


class SegmentorGraph(nn.Module):
    """``images -> seg_logits`` at the input size: mmseg ``EncoderDecoder.encode_decode``.

    Args:
        segmentor (nn.Module): An mmseg ``EncoderDecoder``.
    """

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor
        self.align_corners = bool(segmentor.decode_head.align_corners)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes, H, W)``."""
        logits = self.segmentor.decode_head(self.segmentor.extract_feat(images))
        return F.interpolate(
            logits, size=images.shape[2:], mode="bilinear", align_corners=self.align_corners
        )
