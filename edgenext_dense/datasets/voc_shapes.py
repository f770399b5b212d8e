"""The Pascal VOC 2012 segmentation layout of the synthetic shapes (:func:`make_voc_shapes`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from edgenext_dense.datasets.seg_converters import save_voc_mask
from edgenext_dense.datasets.shapes_render import (
    VOC_SCENE,
    ImageSize,
    Scene,
    SceneConfig,
    render_scene,
    scene_rng,
)
from edgenext_dense.datasets.shapes_writer import (
    _check_request,
    _generate,
    _Request,
    _result,
    _save_jpeg,
)

__all__ = ["DEFAULT_SEG_CLASSES", "VOC_CLASSES", "VOC_ID_OF_SHAPE", "make_voc_shapes"]

#: Shape classes of the default segmentation set: few and very different, to learn quickly.
DEFAULT_SEG_CLASSES: Tuple[str, ...] = ("circle", "rectangle", "triangle")

#: The 21 Pascal VOC classes, in label order (as mmseg's ``PascalVOCDataset``).
VOC_CLASSES: Tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip

#: The VOC label each shape class is written as in the segmentation masks (a loose likeness:
#: a triangle is a paper plane, a circle a wheel, a rectangle a screen, a cross a person).
VOC_ID_OF_SHAPE: Dict[str, int] = {
    "triangle": 1,  # aeroplane
    "circle": 2,  # bicycle
    "star": 3,  # bird
    "cross": 15,  # person
    "rectangle": 20,  # tvmonitor
}

_IGNORE_LABEL = 255

# ---------------------------------------------------------------------------------------------
# Pascal VOC segmentation
# ---------------------------------------------------------------------------------------------


def _boundary_band(labels: np.ndarray, radius: int) -> np.ndarray:
    """Pixels with a different label within ``radius`` (Chebyshev distance).

    Args:
        labels (np.ndarray): (H, W) label map.
        radius (int): Half the band width, in pixels.

    Returns:
        np.ndarray: (H, W) boolean band straddling every boundary between labels.
    """
    pad = np.pad(labels, radius, mode="edge")
    height, width = labels.shape
    band = np.zeros(labels.shape, dtype=bool)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy or dx:
                shifted = pad[radius + dy : radius + dy + height, radius + dx : radius + dx + width]
                band |= shifted != labels
    return band


def _voc_label_map(scene: Scene) -> np.ndarray:
    """VOC class map of a scene: background 0, each shape's VOC id, 255 along boundaries.

    The ignored band is about 1 % of the shorter image side wide (as in the real VOC masks).

    Args:
        scene (Scene): The rendered scene.

    Returns:
        np.ndarray: (H, W) uint8 label map.
    """
    lut = np.zeros(len(scene.instances) + 1, dtype=np.uint8)
    for i, inst in enumerate(scene.instances):
        lut[i + 1] = VOC_ID_OF_SHAPE[inst.label]
    labels = lut[scene.instance_map]
    radius = max(1, round(min(labels.shape) / 200))
    labels[_boundary_band(labels, radius)] = _IGNORE_LABEL
    return labels


def _write_voc(
    req: _Request, scene: SceneConfig, img_dir: Path, seg_dir: Path, split_dir: Path
) -> Tuple[List[Path], dict]:
    """Render both VOC splits: images, label maps, then the split lists.

    Args:
        req (_Request): Checked arguments.
        scene (SceneConfig): Counts, sizes and overlap of the shapes.
        img_dir (Path): Folder of the JPEG images.
        seg_dir (Path): Folder of the PNG label maps.
        split_dir (Path): Folder of the ``{train,val,trainval}.txt`` split lists.

    Returns:
        tuple[list[Path], dict]: Every file written, and the summary.
    """
    for d in (img_dir, seg_dir, split_dir):
        d.mkdir(parents=True, exist_ok=True)
    files: List[Path] = []
    names: Dict[str, List[str]] = {}
    for split, n in req.counts.items():
        names[split] = [f"{split}_{index:06d}" for index in range(n)]
        for index, name in enumerate(names[split]):
            rng = scene_rng(req.seed, "voc", split, index)
            rendered = render_scene(rng, req.size, req.classes, scene)
            _save_jpeg(rendered.image, img_dir / f"{name}.jpg")
            save_voc_mask(_voc_label_map(rendered), seg_dir / f"{name}.png")
            files += [img_dir / f"{name}.jpg", seg_dir / f"{name}.png"]
    names["trainval"] = names["train"] + names["val"]
    for split, split_names in names.items():
        path = split_dir / f"{split}.txt"
        path.write_text("".join(f"{n}\n" for n in split_names), encoding="utf-8")
        files.append(path)
    summary = dict(
        num_images=req.counts,
        classes=list(req.classes),
        class_ids={c: VOC_ID_OF_SHAPE[c] for c in req.classes},
    )
    return files, summary


def make_voc_shapes(
    out_dir: Union[str, os.PathLike],
    num_train: int = 500,
    num_val: int = 100,
    img_size: ImageSize = 256,
    seed: int = 0,
    classes: Sequence[str] = DEFAULT_SEG_CLASSES,
    scene: SceneConfig = VOC_SCENE,
    force: bool = False,
) -> dict:
    """Write a synthetic shape-segmentation dataset in the Pascal VOC 2012 layout.

    The layout is what ``mmseg::_base_/datasets/pascal_voc12.py`` reads with
    ``data_root=out_dir/VOC2012`` (so ``out_dir='data/VOCdevkit'`` matches its default)::

        out_dir/VOC2012/JPEGImages/train_000000.jpg ...
        out_dir/VOC2012/SegmentationClass/train_000000.png ...  # 'P' mode, VOC palette
        out_dir/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
        out_dir/shapes_manifest.json

    Each shape class is written as its VOC label (:data:`VOC_ID_OF_SHAPE`), so the VOC class
    names and palette apply; 0 is background and 255 marks thin ignored borders.
    When ``out_dir`` already holds a complete dataset made with the same arguments, nothing is
    written and the summary says ``reused=True``.

    Args:
        out_dir (str | os.PathLike): Output directory (created if missing).
        num_train (int): Number of training images. Defaults to 500.
        num_val (int): Number of validation images. Defaults to 100.
        img_size (int | Sequence[int]): Square side, or ``(height, width)``, at least
            :data:`~.shapes_render.MIN_IMAGE_SIDE`. Defaults to 256.
        seed (int): Seed; the same seed gives the same files. Defaults to 0.
        classes (Sequence[str]): Shape classes drawn. Defaults to :data:`DEFAULT_SEG_CLASSES`.
        scene (SceneConfig): Number, size and overlap of the shapes per image.
            Defaults to :data:`VOC_SCENE`.
        force (bool): Regenerate even when a matching dataset exists. Defaults to False.

    Returns:
        dict: ``out_dir``, ``reused``, ``classes``, ``class_ids`` (VOC label of each class),
        ``num_images`` per split, and the paths ``data_root``, ``img_dir``, ``seg_map_dir``,
        ``train_split``, ``val_split``, ``trainval_split`` and ``manifest``.

    Raises:
        ValueError: When a count, the image size, the seed or a class name is invalid.
        FileExistsError: When ``out_dir`` holds other data at the paths the dataset writes.
    """
    req = _check_request("voc", out_dir, num_train, num_val, img_size, seed, classes, scene)
    root = req.out / "VOC2012"
    img_dir, seg_dir = root / "JPEGImages", root / "SegmentationClass"
    split_dir = root / "ImageSets" / "Segmentation"
    outputs = [img_dir, seg_dir] + [split_dir / f"{s}.txt" for s in ("train", "val", "trainval")]
    reused, manifest = _generate(
        req, force, outputs, lambda: _write_voc(req, scene, img_dir, seg_dir, split_dir)
    )
    return _result(
        req,
        reused,
        manifest,
        data_root=str(root),
        img_dir=str(img_dir),
        seg_map_dir=str(seg_dir),
        train_split=str(split_dir / "train.txt"),
        val_split=str(split_dir / "val.txt"),
        trainval_split=str(split_dir / "trainval.txt"),
    )
