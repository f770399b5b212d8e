"""A tiny COCO 2017-format dataset with the official 80 categories, for the paper configs.

Images show filled polygons of VOC classes under their COCO names (person, dog, car, ...), with
polygon segmentations and boxes, laid out as ``data/coco`` is:
``annotations/instances_{split}.json`` and ``{split}/*.jpg``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence, Tuple

import cv2
import numpy as np
from mmdet.datasets import CocoDataset

# COCO 2017's category ids: 1..90 without the ten unused ones
MISSING_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
COCO_IDS = [i for i in range(1, 91) if i not in MISSING_IDS]
VOC_CLASSES_IN_IMAGES = ("person", "dog", "car", "cat", "bus", "chair")


def coco_categories() -> list:
    """The 80 COCO 2017 categories with their official ids."""
    names = CocoDataset.METAINFO["classes"]
    return [dict(id=i, name=n, supercategory="thing") for i, n in zip(COCO_IDS, names)]


def _polygon(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    cx, cy = rng.uniform(0.25 * w, 0.75 * w), rng.uniform(0.25 * h, 0.75 * h)
    rx, ry = rng.uniform(0.1 * w, 0.25 * w), rng.uniform(0.1 * h, 0.25 * h)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 6))
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], axis=1)


def write_coco(
    root: Path,
    split: str,
    num_images: int,
    size: Tuple[int, int] = (288, 352),
    classes: Sequence[str] = VOC_CLASSES_IN_IMAGES,
    seed: int = 0,
) -> Path:
    """Write ``num_images`` images with 1-3 polygons each; returns the annotation file."""
    rng = np.random.default_rng(seed)
    cat_id = {c["name"]: c["id"] for c in coco_categories()}
    (root / split).mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for index in range(num_images):
        h, w = size
        img = np.full((h, w, 3), rng.integers(0, 256, 3), np.uint8)
        image_id = 1000 + index
        for _ in range(int(rng.integers(1, 4))):
            poly = _polygon(rng, h, w)
            cv2.fillPoly(img, [poly.round().astype(np.int32)], rng.integers(0, 256, 3).tolist())
            x1, y1 = poly.min(axis=0)
            x2, y2 = poly.max(axis=0)
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=image_id,
                    category_id=cat_id[classes[int(rng.integers(len(classes)))]],
                    segmentation=[poly.ravel().round(2).tolist()],
                    bbox=[float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                    area=float((x2 - x1) * (y2 - y1)),
                    iscrowd=0,
                )
            )
        name = f"{image_id:012d}.jpg"
        cv2.imwrite(str(root / split / name), img)
        images.append(dict(id=image_id, file_name=name, height=h, width=w))
    ann_file = root / "annotations" / f"instances_{split}.json"
    ann_file.parent.mkdir(parents=True, exist_ok=True)
    ann_file.write_text(
        json.dumps(dict(images=images, annotations=anns, categories=coco_categories()))
    )
    return ann_file
