"""cvnets-v0.1's augmentations as registered transforms, checked against its rules.

The SSD crop is compared with mmdet's ``MinIoURandomCrop`` on two boxes, one large and one tiny;
the photometric distortion and the segmentation resize-crop against a line-by-line
transcription of cvnets' ``data/transforms/image.py`` (python's ``random`` swapped for numpy's,
which the transforms use).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from mmdet.registry import TRANSFORMS as DET_TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS

import edgenext_dense.datasets.cvnets_transforms  # noqa: F401  (registers the transforms)

H, W = 200, 240
LARGE = [20.0, 30.0, 200.0, 180.0]
TINY = [5.0, 5.0, 11.0, 11.0]


def _position_image() -> np.ndarray:
    """Channel 0 holds x, channel 1 holds y: a crop tells where it was cut."""
    ys, xs = np.mgrid[0:H, 0:W]
    return np.stack([xs, ys, np.zeros_like(xs)], axis=-1).astype(np.uint8)


def _det_results(boxes, ignore=None) -> dict:
    boxes = np.array(boxes, np.float32)
    return dict(
        img=_position_image(),
        img_shape=(H, W),
        gt_bboxes=HorizontalBoxes(boxes),
        gt_bboxes_labels=np.arange(len(boxes)),
        gt_ignore_flags=np.zeros(len(boxes), bool) if ignore is None else np.array(ignore),
    )


def _iou(box, rect) -> float:
    x1, y1 = max(box[0], rect[0]), max(box[1], rect[1])
    x2, y2 = min(box[2], rect[2]), min(box[3], rect[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    return inter / (area(box) + area(rect) - inter)


def _crop_rect(img: np.ndarray):
    x, y = int(img[0, 0, 0]), int(img[0, 0, 1])
    return [x, y, x + img.shape[1], y + img.shape[0]]


def _large_box_ious(transform, runs: int = 300):
    """IoU of each output crop with the large box (None when the image came back whole)."""
    np.random.seed(0)
    out = []
    for _ in range(runs):
        res = transform(_det_results([LARGE, TINY]))
        cropped = res["img"].shape[:2] != (H, W)
        out.append(_iou(LARGE, _crop_rect(res["img"])) if cropped else None)
    return out


def test_ssd_crop_zooms_on_objects_where_min_iou_crop_cannot():
    ours = _large_box_ious(DET_TRANSFORMS.build(dict(type="mmdet.CvnetsSSDRandomCrop")))
    mmdet = _large_box_ious(
        DET_TRANSFORMS.build(
            dict(
                type="mmdet.MinIoURandomCrop", min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3
            )
        )
    )
    # cvnets: no crop only when 0 is drawn (1/7; 1.0 only redraws): about 1 in 6
    uncropped = sum(v is None for v in ours) / len(ours)
    assert 0.08 < uncropped < 0.3
    # every crop meets at least the smallest threshold through the large box
    assert all(v >= 0.1 for v in ours if v is not None)
    zoom_ours = sum(v is not None and v >= 0.5 for v in ours) / len(ours)
    zoom_mmdet = sum(v is not None and v >= 0.5 for v in mmdet) / len(mmdet)
    # mmdet needs the tiny box's IoU too, so only its unconstrained mode ever crops
    assert zoom_ours > 0.4 and zoom_mmdet < zoom_ours / 2


def test_ssd_crop_keeps_boxes_with_centre_inside_clipped_and_shifted():
    transform = DET_TRANSFORMS.build(dict(type="mmdet.CvnetsSSDRandomCrop"))
    np.random.seed(1)
    for _ in range(50):
        res = transform(_det_results([LARGE, TINY]))
        x1, y1, x2, y2 = _crop_rect(res["img"])
        kept = {int(v) for v in res["gt_bboxes_labels"]}
        for label, box in enumerate([LARGE, TINY]):
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            assert (label in kept) == (x1 < cx < x2 and y1 < cy < y2) or (x1, y1) == (0, 0)
        expected = [
            [max(b[0], x1) - x1, max(b[1], y1) - y1, min(b[2], x2) - x1, min(b[3], y2) - y1]
            for i, b in enumerate([LARGE, TINY])
            if i in kept
        ]
        np.testing.assert_allclose(res["gt_bboxes"].numpy(), np.array(expected).reshape(-1, 4))
        assert res["img_shape"] == res["img"].shape[:2]
        assert len(res["gt_ignore_flags"]) == len(res["gt_bboxes_labels"])


def test_ssd_crop_ignores_crowds_and_needs_a_no_crop_option():
    transform = DET_TRANSFORMS.build(dict(type="mmdet.CvnetsSSDRandomCrop"))
    res = transform(_det_results([LARGE], ignore=[True]))
    assert res["img"].shape[:2] == (H, W)  # only ignored boxes: as cvnets with no boxes
    empty = transform(_det_results(np.zeros((0, 4))))
    assert empty["img"].shape[:2] == (H, W)
    with pytest.raises(ValueError, match="needs a 0"):
        DET_TRANSFORMS.build(dict(type="mmdet.CvnetsSSDRandomCrop", min_ious=(0.5, 0.9)))


def _cvnets_photometric(image: np.ndarray, p: float = 0.5) -> np.ndarray:
    """cvnets-v0.1 data/transforms/image.py, PhotometricDistort.apply_transformations."""

    def convert_to_uint8(img):
        return np.clip(img, 0, 255).astype(np.uint8)

    rand_nums = np.random.rand(6)
    image = image.astype(np.float32)
    alpha = np.random.uniform(0.5, 1.5) if rand_nums[0] < p else 1.0
    image *= alpha
    beta = (np.random.uniform(-0.2, 0.2) * 255) if rand_nums[1] < p else 0.0
    image += beta
    image = convert_to_uint8(image)
    image = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    image = image.astype(np.float32)
    gamma = np.random.uniform(0.5, 1.5) if rand_nums[2] < p else 1.0
    image[..., 1] *= gamma
    delta = int(np.random.uniform(-0.05, 0.05) * 255) if rand_nums[3] < p else 0.0
    image[..., 0] += delta
    image = convert_to_uint8(image)
    image = cv2.cvtColor(image, cv2.COLOR_HSV2BGR)
    if alpha == 1.0 and rand_nums[4] < p:
        image = image.astype(np.float32)
        alpha = np.random.uniform(0.5, 1.5)
        image *= alpha
        image = convert_to_uint8(image)
    channels = image.shape[-1]
    swap = np.random.permutation(range(channels)) if rand_nums[5] < p else None
    if swap is not None:
        image = image[..., swap]
    return image


@pytest.mark.parametrize("seed", range(12))
def test_photometric_distortion_is_cvnets(seed):
    img = np.random.default_rng(seed).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    np.random.seed(seed)
    expected = _cvnets_photometric(img.copy())
    np.random.seed(seed)
    out = DET_TRANSFORMS.build(dict(type="mmdet.CvnetsPhotoMetricDistortion"))(dict(img=img.copy()))
    np.testing.assert_array_equal(out["img"], expected)


def test_photometric_distortion_refuses_non_uint8_images():
    transform = DET_TRANSFORMS.build(dict(type="mmdet.CvnetsPhotoMetricDistortion"))
    with pytest.raises(ValueError, match=r"uint8 BGR image.*x\.png"):
        transform(dict(img=np.zeros((4, 4, 3), np.float32), img_path="x.png"))


def _cvnets_resize(data: dict, size: int) -> dict:
    """cvnets-v0.1 ``_resize_fn`` with an int size."""
    img = data["image"]
    h, w, _ = img.shape
    if (w <= h and w == size) or (h <= w and h == size):
        return data
    if w < h:
        size_h, size_w = int(size * h / w), size
    else:
        size_w, size_h = int(size * w / h), size
    data["image"] = cv2.resize(img, dsize=(size_w, size_h), interpolation=cv2.INTER_LINEAR)
    data["mask"] = cv2.resize(data["mask"], dsize=(size_w, size_h), interpolation=cv2.INTER_NEAREST)
    return data


def _cvnets_seg_crop(image: np.ndarray, mask: np.ndarray, crop: int = 512) -> tuple:
    """cvnets' RandomResize(256, 1024) then RandomCrop(512, resize_if_needed=True)."""
    data = _cvnets_resize(dict(image=image, mask=mask), np.random.randint(256, 1025))
    h, w = data["image"].shape[:2]
    data = _cvnets_resize(data, min(h + max(0, crop - h), w + max(0, crop - w)))
    h, w = data["image"].shape[:2]
    i, j = (0, 0) if (h, w) == (crop, crop) else (
        np.random.randint(0, h - crop + 1), np.random.randint(0, w - crop + 1)
    )  # fmt: skip
    return data["image"][i : i + crop, j : j + crop], data["mask"][i : i + crop, j : j + crop]


@pytest.mark.parametrize("shape", [(375, 500), (500, 333), (120, 700), (1200, 900)])
def test_seg_resize_crop_is_cvnets(shape):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    mask = rng.integers(0, 21, shape, dtype=np.uint8)
    transform = SEG_TRANSFORMS.build(dict(type="mmseg.CvnetsRandomResizeCrop"))
    for seed in range(5):
        np.random.seed(seed)
        want_img, want_mask = _cvnets_seg_crop(image, mask)
        np.random.seed(seed)
        out = transform(
            dict(img=image, gt_seg_map=mask, seg_fields=["gt_seg_map"], img_shape=shape)
        )
        np.testing.assert_array_equal(out["img"], want_img)
        np.testing.assert_array_equal(out["gt_seg_map"], want_mask)
        assert out["img_shape"] == (512, 512)
        assert set(np.unique(out["gt_seg_map"])) <= set(range(21))  # nothing padded with 255


def test_seg_resize_crop_refuses_bad_sizes():
    with pytest.raises(ValueError, match="min_size <= max_size"):
        SEG_TRANSFORMS.build(dict(type="mmseg.CvnetsRandomResizeCrop", min_size=600, max_size=500))
