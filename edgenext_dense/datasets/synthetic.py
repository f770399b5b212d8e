"""Deterministic synthetic shape datasets, so the demos train on a CPU with nothing downloaded.

The scenes are :mod:`.shapes_render`'s. :func:`make_coco_shapes` writes the COCO 2017 layout
(``bbox`` and ``area`` of the visible pixels, polygons traced with OpenCV);
:func:`make_voc_shapes` the Pascal VOC 2012 layout, each shape a VOC class
(:data:`VOC_ID_OF_SHAPE`) with a band of 255 along the boundaries. A manifest
(:data:`MANIFEST_NAME`) lets a second call with the same arguments return at once, and data the
generator did not write is refused.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
from PIL import Image

from edgenext_dense.datasets.seg_converters import save_voc_mask, voc_palette
from edgenext_dense.datasets.shapes_render import (
    COCO_SCENE,
    DEFAULT_SEG_CLASSES,
    SHAPE_CLASSES,
    VOC_SCENE,
    ImageSize,
    Scene,
    SceneConfig,
    ShapeInstance,
    check_classes,
    check_int,
    check_size,
    mask_to_polygons,
    render_scene,
    scene_rng,
)

__all__ = [
    "COCO_SCENE", "DEFAULT_SEG_CLASSES", "MANIFEST_NAME", "SHAPE_CLASSES", "VOC_CLASSES",
    "VOC_ID_OF_SHAPE", "VOC_SCENE", "Scene", "SceneConfig", "ShapeInstance", "make_coco_shapes",
    "make_voc_shapes", "mask_to_polygons", "render_scene", "scene_rng", "voc_palette",
]  # fmt: skip

#: The 21 Pascal VOC classes, in label order (as mmseg's ``PascalVOCDataset``).
VOC_CLASSES: Tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
#: The VOC label each shape is written as (a triangle is a paper plane, a circle a wheel, ...).
VOC_ID_OF_SHAPE: Dict[str, int] = dict(triangle=1, circle=2, star=3, cross=15, rectangle=20)

#: Bumped whenever a change alters the generated files, so that old manifests stop matching.
GENERATOR_VERSION = 2
#: Name of the manifest written into the output directory once a dataset is complete.
MANIFEST_NAME = "shapes_manifest.json"


def _save_jpeg(image: np.ndarray, path: Path) -> None:
    """Fixed quality and no chroma subsampling: the same pixels give the same bytes."""
    Image.fromarray(image).save(path, format="JPEG", quality=90, subsampling=0)


def _write_manifest(out: Path, manifest: dict) -> None:
    """Write atomically: a crash leaves the old manifest or the new one, never half of one."""
    tmp = out / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(tmp, out / MANIFEST_NAME)


def _make(
    kind: str,
    out_dir: Union[str, os.PathLike],
    counts: Tuple[int, int],
    img_size: ImageSize,
    seed: int,
    classes: Sequence[str],
    scene: SceneConfig,
    force: bool,
    outputs: Sequence[str],
    write: Callable[..., tuple],
) -> dict:
    """Check the arguments, then reuse the complete dataset in ``out_dir`` or write it anew.

    ``outputs`` (relative to ``out_dir``) are where the layout writes: data found there that the
    generator did not write is never replaced. ``write(out, counts, size, seed, classes, scene)``
    writes the dataset and returns every file written and the summary.
    """
    counts = dict(
        train=check_int("num_train", counts[0], 1), val=check_int("num_val", counts[1], 1)
    )
    size, seed = check_size(img_size), check_int("seed", seed, 0)
    classes = check_classes(classes)
    if not isinstance(scene, SceneConfig):
        raise ValueError(f"scene must be a SceneConfig, got {scene!r}")
    out = Path(out_dir)
    params = dict(generator=__name__, version=GENERATOR_VERSION, kind=kind, seed=seed)
    params.update(num_train=counts["train"], num_val=counts["val"], img_size=list(size))
    params.update(classes=list(classes), scene=dataclasses.asdict(scene))
    params = json.loads(json.dumps(params))  # as read back from a manifest: lists, not tuples
    try:
        manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    manifest = manifest if isinstance(manifest, dict) else {}
    done = manifest.get("params") == params and manifest.get("complete") is True
    files = manifest.get("files", {}).items()
    reused = not force and done and all((out / r).is_file() and (out / r).stat().st_size == n
                                        for r, n in files)  # fmt: skip
    if not reused:
        out.mkdir(parents=True, exist_ok=True)
        # Earlier versions wrote from other modules of this package: their files are ours too.
        if manifest and str(manifest.get("params", {}).get("generator")).startswith(__package__):
            for rel in manifest.get("files", {}):
                if out.resolve() in (out / rel).resolve().parents:
                    (out / rel).unlink(missing_ok=True)
        else:
            taken = [out / p for p in outputs]
            taken = [p for p in taken if p.is_file() or (p.is_dir() and any(p.iterdir()))]
            if taken:
                raise FileExistsError(
                    f"{out} already holds data that {__name__} did not write "
                    f"({', '.join(map(str, taken[:3]))}); the synthetic dataset would overwrite "
                    "or mix with it. Choose a new or empty directory, or delete that data first."
                )
        _write_manifest(out, dict(params=params, complete=False))
        files, summary = write(out, counts, size, seed, classes, scene)
        files = {p.relative_to(out).as_posix(): p.stat().st_size for p in files}
        manifest = dict(params=params, complete=True, summary=summary, files=files)
        _write_manifest(out, manifest)
    summary = manifest["summary"]
    return dict(out_dir=str(out), reused=reused, **summary, manifest=str(out / MANIFEST_NAME))


def _coco_annotation(scene: Scene, k: int, inst: ShapeInstance) -> dict:
    """``bbox`` and ``area`` of the visible pixels, and their outline as ``segmentation``."""
    mask = scene.instance_map == k + 1
    area = int(mask.sum())
    if area == inst.full_area:  # unoccluded: the drawn polygon, moved to COCO's pixel centres
        segmentation = [(inst.polygon + 0.5).reshape(-1).tolist()]
    else:
        segmentation = mask_to_polygons(mask)
    bbox = [float(v) for v in scene.visible_box(k)]
    return dict(bbox=bbox, area=float(area), iscrowd=0, segmentation=segmentation)


def _write_coco(out: Path, counts, size, seed, classes, scene) -> tuple:
    category_ids = {name: i + 1 for i, name in enumerate(classes)}
    files, num_annotations = [], {}
    for split, n in counts.items():
        (out / f"{split}2017").mkdir(exist_ok=True)
        images, annotations = [], []
        for image_id in range(1, n + 1):
            rendered = render_scene(scene_rng(seed, "coco", split, image_id - 1), size, classes,
                                    scene)  # fmt: skip
            file_name = f"{image_id:012d}.jpg"
            files.append(out / f"{split}2017" / file_name)
            _save_jpeg(rendered.image, files[-1])
            images.append(dict(id=image_id, file_name=file_name, height=size[0], width=size[1]))
            for k, inst in enumerate(rendered.instances):
                ann = _coco_annotation(rendered, k, inst)
                ids = dict(id=len(annotations) + 1, image_id=image_id)
                annotations.append(dict(ids, category_id=category_ids[inst.label], **ann))
        info = dict(description=f"Synthetic shapes ({split}), made by {__name__}",
                    version=str(GENERATOR_VERSION), year=2017, contributor="edgenext_dense",
                    date_created="2017-01-01")  # fmt: skip
        categories = [dict(id=i, name=c, supercategory="shape") for c, i in category_ids.items()]
        coco = dict(info=info, licenses=[], images=images, annotations=annotations,
                    categories=categories)  # fmt: skip
        files.append(out / "annotations" / f"instances_{split}2017.json")
        files[-1].parent.mkdir(exist_ok=True)
        files[-1].write_text(json.dumps(coco, separators=(",", ":")), encoding="utf-8")
        num_annotations[split] = len(annotations)
    return files, dict(num_images=counts, num_annotations=num_annotations, classes=list(classes))


def make_coco_shapes(
    out_dir: Union[str, os.PathLike],
    num_train: int = 800,
    num_val: int = 100,
    img_size: ImageSize = 320,
    seed: int = 0,
    classes: Sequence[str] = SHAPE_CLASSES,
    scene: SceneConfig = COCO_SCENE,
    force: bool = False,
) -> dict:
    """Write a synthetic shape-detection dataset in the COCO 2017 layout, or reuse it.

    ``{train,val}2017/*.jpg`` and ``annotations/instances_{train,val}2017.json``, as mmdet's
    ``CocoDataset`` reads them; a complete dataset made with the same arguments is reused.

    Args:
        out_dir (str | os.PathLike): Output directory (created if missing).
        num_train (int): Training images. Defaults to 800.
        num_val (int): Validation images. Defaults to 100.
        img_size (int | Sequence[int]): Side, or ``(height, width)``, >= 32. Defaults to 320.
        seed (int): Seed; the same seed gives the same files. Defaults to 0.
        classes (Sequence[str]): Shape classes, category ids 1, 2, ... Defaults to all five.
        scene (SceneConfig): Number, size and overlap of the shapes. Defaults to COCO_SCENE.
        force (bool): Regenerate even when a matching dataset exists. Defaults to False.

    Returns:
        dict: ``out_dir``, ``reused``, ``manifest``, ``classes``, ``num_images`` and
        ``num_annotations`` per split, ``{train,val}_img_dir`` and ``{train,val}_ann_file``.

    Raises:
        ValueError: For an invalid count, image size, seed, class or scene.
        FileExistsError: When ``out_dir`` holds data not written here where the set goes.
    """
    anns = [f"annotations/instances_{s}2017.json" for s in ("train", "val")]
    outputs = ["train2017", "val2017", *anns]
    counts = (num_train, num_val)
    result = _make("coco", out_dir, counts, img_size, seed, classes, scene, force, outputs,
                   _write_coco)  # fmt: skip
    paths = ("train_img_dir", "val_img_dir", "train_ann_file", "val_ann_file")
    return dict(result, **{key: str(Path(out_dir) / p) for key, p in zip(paths, outputs)})


def _voc_labels(scene: Scene) -> np.ndarray:
    """VOC label map: 0 background, each shape's VOC id, 255 in a band along boundaries."""
    lut = np.array([0] + [VOC_ID_OF_SHAPE[i.label] for i in scene.instances], dtype=np.uint8)
    labels = lut[scene.instance_map]
    radius = max(1, round(min(labels.shape) / 200))  # about 1 % of the side, as in real VOC
    kernel = np.ones((2 * radius + 1,) * 2, np.uint8)
    labels[cv2.dilate(labels, kernel) != cv2.erode(labels, kernel)] = 255
    return labels


def _write_voc(out: Path, counts, size, seed, classes, scene) -> tuple:
    root = out / "VOC2012"
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    files: List[Path] = []
    names = {split: [f"{split}_{i:06d}" for i in range(n)] for split, n in counts.items()}
    for split, split_names in names.items():
        for index, name in enumerate(split_names):
            rendered = render_scene(scene_rng(seed, "voc", split, index), size, classes, scene)
            files += [root / f"JPEGImages/{name}.jpg", root / f"SegmentationClass/{name}.png"]
            _save_jpeg(rendered.image, files[-2])
            save_voc_mask(_voc_labels(rendered), files[-1])
    names["trainval"] = names["train"] + names["val"]
    for split, split_names in names.items():
        files.append(root / f"ImageSets/Segmentation/{split}.txt")
        files[-1].write_text("".join(f"{n}\n" for n in split_names), encoding="utf-8")
    class_ids = {c: VOC_ID_OF_SHAPE[c] for c in classes}
    return files, dict(num_images=counts, classes=list(classes), class_ids=class_ids)


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
    """Write a synthetic shape-segmentation dataset in the Pascal VOC 2012 layout, or reuse it.

    ``VOC2012/{JPEGImages,SegmentationClass}`` and ``ImageSets/Segmentation/{train,val,
    trainval}.txt``, as ``mmseg::_base_/datasets/pascal_voc12.py`` reads them with
    ``data_root=out_dir/VOC2012``; a complete dataset made with the same arguments is reused.

    Args:
        out_dir (str | os.PathLike): Output directory (created if missing).
        num_train (int): Training images. Defaults to 500.
        num_val (int): Validation images. Defaults to 100.
        img_size (int | Sequence[int]): Side, or ``(height, width)``, >= 32. Defaults to 256.
        seed (int): Seed; the same seed gives the same files. Defaults to 0.
        classes (Sequence[str]): Shape classes drawn. Defaults to :data:`DEFAULT_SEG_CLASSES`.
        scene (SceneConfig): Number, size and overlap of the shapes. Defaults to VOC_SCENE.
        force (bool): Regenerate even when a matching dataset exists. Defaults to False.

    Returns:
        dict: ``out_dir``, ``reused``, ``manifest``, ``classes``, ``class_ids`` (VOC labels),
        ``num_images`` per split, ``data_root``, ``img_dir``, ``seg_map_dir`` and
        ``{train,val,trainval}_split``.

    Raises:
        ValueError: For an invalid count, image size, seed, class or scene.
        FileExistsError: When ``out_dir`` holds data not written here where the set goes.
    """
    splits = [f"VOC2012/ImageSets/Segmentation/{s}.txt" for s in ("train", "val", "trainval")]
    outputs = ["VOC2012", "VOC2012/JPEGImages", "VOC2012/SegmentationClass", *splits]
    counts = (num_train, num_val)
    result = _make("voc", out_dir, counts, img_size, seed, classes, scene, force, outputs[1:],
                   _write_voc)  # fmt: skip
    keys = ("data_root", "img_dir", "seg_map_dir", "train_split", "val_split", "trainval_split")
    return dict(result, **{key: str(Path(out_dir) / p) for key, p in zip(keys, outputs)})
