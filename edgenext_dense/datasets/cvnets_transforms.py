"""Three augmentations of apple/ml-cvnets (tag cvnets-v0.1), the EdgeNeXt paper's recipe.

They have no exact mmdet/mmseg counterpart and are transcribed from ``data/transforms/image.py``
(line numbers in docs/protocol.md): HWC uint8 BGR images, numpy's global generator (mmengine
seeds it per worker).
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS


class _ArgsRepr:
    def __repr__(self) -> str:  # the constructor's arguments, as mmcv's transforms print them
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def _iou_with_rect(boxes: np.ndarray, rect: np.ndarray) -> np.ndarray:
    """IoU of each (x1, y1, x2, y2) box with one rectangle (cvnets' ``jaccard_numpy``)."""
    lt = np.maximum(boxes[:, :2], rect[:2])
    rb = np.minimum(boxes[:, 2:], rect[2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=1)
    area_boxes = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    area_rect = (rect[2] - rect[0]) * (rect[3] - rect[1])
    return inter / (area_boxes + area_rect - inter)


@DET_TRANSFORMS.register_module()
class CvnetsSSDRandomCrop(_ArgsRepr, BaseTransform):
    """cvnets' ``SSDCroping``: random crops that zoom in on objects.

    Each round draws a threshold from ``min_ious`` (0: no crop; 1.0 only makes another draw, as
    in cvnets) and tries ``trials`` crops; the first whose LARGEST IoU with a box reaches it
    (mmdet's ``MinIoURandomCrop`` asks the smallest) and holds a box centre is kept. Boxes
    centred outside are dropped, the others clipped; ignored boxes (crowds) take no part.

    Args:
        min_ious (Sequence[float]): Thresholds drawn uniformly; one must be 0 (no crop).
        min_crop_size (float): Smallest crop side as a fraction of the image's. Defaults to 0.3.
        aspect_ratio_range (tuple[float, float]): Allowed crop h/w. Defaults to (0.5, 2.0).
        trials (int): Crops tried per threshold. Defaults to 40.
    """

    def __init__(
        self,
        min_ious: Sequence[float] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0),
        min_crop_size: float = 0.3,
        aspect_ratio_range: Tuple[float, float] = (0.5, 2.0),
        trials: int = 40,
    ) -> None:
        if not any(t <= 0 for t in min_ious):
            raise ValueError(
                f"min_ious={tuple(min_ious)} needs a 0 (no crop): without it an image whose boxes "
                "no crop can satisfy would be tried forever"
            )
        if not 0 < min_crop_size <= 1:
            raise ValueError(f"min_crop_size must be in (0, 1], got {min_crop_size}")
        self.min_ious = tuple(float(t) for t in min_ious)
        self.min_crop_size = min_crop_size
        self.aspect_ratio_range = tuple(aspect_ratio_range)
        self.trials = trials

    def _sample_rect(self, height: int, width: int) -> np.ndarray | None:
        w = np.random.uniform(self.min_crop_size * width, width)
        h = np.random.uniform(self.min_crop_size * height, height)
        if not self.aspect_ratio_range[0] <= h / w <= self.aspect_ratio_range[1]:
            return None
        left = np.random.uniform(0, width - w)
        top = np.random.uniform(0, height - h)
        return np.array([int(left), int(top), int(left + w), int(top + h)])

    def transform(self, results: Dict[str, Any]) -> Dict[str, Any]:
        """Crop ``results`` in place."""
        boxes = results["gt_bboxes"].numpy()
        ignored = results.get("gt_ignore_flags")
        valid = np.ones(len(boxes), bool) if ignored is None else ~np.asarray(ignored, bool)
        if not valid.any():
            return results
        height, width = results["img"].shape[:2]
        centers = (boxes[:, :2] + boxes[:, 2:]) * 0.5
        valid_boxes = boxes[valid]
        while True:
            threshold = self.min_ious[np.random.randint(len(self.min_ious))]
            if threshold <= 0:
                return results
            for _ in range(self.trials):
                rect = self._sample_rect(height, width)
                if rect is None or _iou_with_rect(valid_boxes, rect).max() < threshold:
                    continue
                inside = ((rect[:2] < centers) & (centers < rect[2:])).all(axis=1)
                if not (inside & valid).any():
                    continue
                return self._crop(results, rect, inside)

    @staticmethod
    def _crop(results: Dict[str, Any], rect: np.ndarray, keep: np.ndarray) -> Dict[str, Any]:
        x1, y1, x2, y2 = (int(v) for v in rect)
        results["img"] = results["img"][y1:y2, x1:x2]
        results["img_shape"] = results["img"].shape[:2]
        boxes = results["gt_bboxes"][keep]
        boxes.translate_([-x1, -y1])
        boxes.clip_(results["img_shape"])
        results["gt_bboxes"] = boxes
        for key in ("gt_bboxes_labels", "gt_ignore_flags"):
            if results.get(key) is not None:
                results[key] = results[key][keep]
        return results


@DET_TRANSFORMS.register_module()
class CvnetsPhotoMetricDistortion(_ArgsRepr, BaseTransform):
    """cvnets' ``PhotometricDistort`` of a BGR uint8 image.

    Each step with probability ``prob``: contrast and brightness; in OpenCV's 8-bit HSV,
    saturation and hue (clipped, not wrapped); contrast again if the first was skipped; a
    random permutation of the channels.

    Args:
        contrast_range (tuple[float, float]): alpha. Defaults to (0.5, 1.5).
        brightness_range (tuple[float, float]): beta, a fraction of 255. Defaults to (-0.2, 0.2).
        saturation_range (tuple[float, float]): gamma. Defaults to (0.5, 1.5).
        hue_range (tuple[float, float]): delta, a fraction of 255. Defaults to (-0.05, 0.05).
        prob (float): Probability of each step. Defaults to 0.5.
    """

    def __init__(
        self,
        contrast_range: Tuple[float, float] = (0.5, 1.5),
        brightness_range: Tuple[float, float] = (-0.2, 0.2),
        saturation_range: Tuple[float, float] = (0.5, 1.5),
        hue_range: Tuple[float, float] = (-0.05, 0.05),
        prob: float = 0.5,
    ) -> None:
        self.contrast_range, self.brightness_range = tuple(contrast_range), tuple(brightness_range)
        self.saturation_range, self.hue_range = tuple(saturation_range), tuple(hue_range)
        self.prob = prob

    def transform(self, results: Dict[str, Any]) -> Dict[str, Any]:
        """Distort ``results['img']``."""
        img = results["img"]
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(
                f"CvnetsPhotoMetricDistortion needs an HxWx3 uint8 BGR image, got "
                f"{img.dtype} {img.shape} ({results.get('img_path', 'no path')})"
            )
        draws = np.random.rand(6)
        image = img.astype(np.float32)
        alpha = np.random.uniform(*self.contrast_range) if draws[0] < self.prob else 1.0
        image *= alpha
        if draws[1] < self.prob:
            image += np.random.uniform(*self.brightness_range) * 255
        hsv = cv2.cvtColor(_to_uint8(image), cv2.COLOR_BGR2HSV).astype(np.float32)
        if draws[2] < self.prob:
            hsv[..., 1] *= np.random.uniform(*self.saturation_range)
        if draws[3] < self.prob:
            hsv[..., 0] += int(np.random.uniform(*self.hue_range) * 255)
        image = cv2.cvtColor(_to_uint8(hsv), cv2.COLOR_HSV2BGR)
        if alpha == 1.0 and draws[4] < self.prob:
            image = _to_uint8(image.astype(np.float32) * np.random.uniform(*self.contrast_range))
        if draws[5] < self.prob:
            image = np.ascontiguousarray(image[..., np.random.permutation(3)])
        results["img"] = image
        return results


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).astype(np.uint8)


def _resize_short_side(results: Dict[str, Any], size: int) -> None:
    """cvnets' ``_resize_fn`` with an int size: short side to ``size``, the long one truncated."""
    h, w = results["img"].shape[:2]
    if min(h, w) == size:
        return
    if w < h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    results["img"] = cv2.resize(results["img"], (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    for key in results.get("seg_fields", []):
        results[key] = cv2.resize(results[key], (new_w, new_h), interpolation=cv2.INTER_NEAREST)


@SEG_TRANSFORMS.register_module()
class CvnetsRandomResizeCrop(_ArgsRepr, BaseTransform):
    """cvnets' ``RandomResize`` + ``RandomCrop(resize_if_needed=True)`` for segmentation.

    The short side goes to ``randint(min_size, max_size)`` (bilinear, masks nearest), then up
    to the crop if a side is below it, then a random window is cut; no padding.

    Args:
        crop_size (tuple[int, int]): (height, width) of the crop. Defaults to (512, 512).
        min_size (int): Smallest short side drawn. Defaults to 256.
        max_size (int): Largest short side drawn. Defaults to 1024.
    """

    def __init__(
        self, crop_size: Tuple[int, int] = (512, 512), min_size: int = 256, max_size: int = 1024
    ) -> None:
        if not 0 < min_size <= max_size:
            raise ValueError(f"need 0 < min_size <= max_size, got {min_size} and {max_size}")
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.min_size, self.max_size = min_size, max_size

    def transform(self, results: Dict[str, Any]) -> Dict[str, Any]:
        """Resize and crop ``results``."""
        crop_h, crop_w = self.crop_size
        _resize_short_side(results, int(np.random.randint(self.min_size, self.max_size + 1)))
        h, w = results["img"].shape[:2]
        _resize_short_side(results, min(max(h, crop_h), max(w, crop_w)))
        h, w = results["img"].shape[:2]
        if h < crop_h or w < crop_w:
            raise ValueError(
                f"{results.get('img_path', 'an image')} is {w}x{h} after resizing, smaller than "
                f"the {crop_w}x{crop_h} crop: a crop this far from square needs another resize"
            )
        top = int(np.random.randint(0, h - crop_h + 1))
        left = int(np.random.randint(0, w - crop_w + 1))
        window = (slice(top, top + crop_h), slice(left, left + crop_w))
        results["img"] = results["img"][window]
        for key in results.get("seg_fields", []):
            results[key] = results[key][window]
        results["img_shape"] = results["img"].shape[:2]
        return results
