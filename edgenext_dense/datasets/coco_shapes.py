"""The COCO 2017 detection layout of the synthetic shapes (:func:`make_coco_shapes`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from edgenext_dense.datasets.shapes_render import (
    COCO_SCENE,
    SHAPE_CLASSES,
    ImageSize,
    Scene,
    SceneConfig,
    mask_to_polygons,
    render_scene,
    scene_rng,
)
from edgenext_dense.datasets.shapes_writer import (
    GENERATOR_VERSION,
    _check_request,
    _generate,
    _Request,
    _result,
    _save_jpeg,
    _write_json,
)

__all__ = ["make_coco_shapes"]

# ---------------------------------------------------------------------------------------------
# COCO detection
# ---------------------------------------------------------------------------------------------


def _coco_annotations(
    scene: Scene, image_id: int, first_ann_id: int, category_ids: Dict[str, int]
) -> List[dict]:
    """COCO annotations of a scene's visible shapes.

    Args:
        scene (Scene): The rendered scene.
        image_id (int): COCO id of the image.
        first_ann_id (int): Id of the first annotation.
        category_ids (dict[str, int]): Category id of each shape class.

    Returns:
        list[dict]: Annotations with ``bbox`` (visible pixels, ``[x, y, w, h]``), ``area``
        (visible pixel count), ``segmentation`` polygons and ``iscrowd=0``.
    """
    annotations = []
    for i, inst in enumerate(scene.instances):
        mask = scene.instance_map == i + 1
        area = int(mask.sum())
        if area == 0:
            continue
        ys = np.flatnonzero(mask.any(1))
        xs = np.flatnonzero(mask.any(0))
        x, y = int(xs[0]), int(ys[0])
        w, h = int(xs[-1]) + 1 - x, int(ys[-1]) + 1 - y
        if area == inst.full_area:
            # Untouched: the drawn polygon, moved from pixel indices to COCO's pixel centres.
            segmentation = [[float(v) + 0.5 for v in inst.polygon.reshape(-1)]]
        else:
            segmentation = mask_to_polygons(mask)
        annotations.append(
            dict(
                id=first_ann_id + len(annotations),
                image_id=image_id,
                category_id=category_ids[inst.label],
                bbox=[float(x), float(y), float(w), float(h)],
                area=float(area),
                iscrowd=0,
                segmentation=segmentation,
            )
        )
    return annotations


def _coco_split(
    out_dir: Path,
    split: str,
    num_images: int,
    size: Tuple[int, int],
    seed: int,
    classes: Tuple[str, ...],
    scene_config: SceneConfig,
) -> Tuple[Path, List[Path], int]:
    """Render one COCO split: images into ``{split}2017/``, then its annotation file.

    Args:
        out_dir (Path): Dataset directory.
        split (str): ``'train'`` or ``'val'``.
        num_images (int): Number of images.
        size (tuple[int, int]): ``(height, width)``.
        seed (int): Dataset seed.
        classes (tuple[str, ...]): Shape classes; category ids follow this order from 1.
        scene_config (SceneConfig): Counts, sizes and overlap of the shapes.

    Returns:
        tuple[Path, list[Path], int]: The annotation file, every file written and the number of
        annotations.
    """
    img_dir = out_dir / f"{split}2017"
    img_dir.mkdir(parents=True, exist_ok=True)
    category_ids = {name: i + 1 for i, name in enumerate(classes)}
    images, annotations, files = [], [], []
    for index in range(num_images):
        rng = scene_rng(seed, "coco", split, index)
        scene = render_scene(rng, size, classes, scene_config)
        image_id = index + 1
        file_name = f"{image_id:012d}.jpg"
        _save_jpeg(scene.image, img_dir / file_name)
        files.append(img_dir / file_name)
        images.append(dict(id=image_id, file_name=file_name, height=size[0], width=size[1]))
        annotations += _coco_annotations(scene, image_id, len(annotations) + 1, category_ids)
    coco = dict(
        info=dict(
            description=f"Synthetic shapes ({split}), made by {__name__}",
            version=str(GENERATOR_VERSION),
            year=2017,
            contributor="edgenext_dense",
            date_created="2017-01-01",
        ),
        licenses=[],
        images=images,
        annotations=annotations,
        categories=[dict(id=i, name=n, supercategory="shape") for n, i in category_ids.items()],
    )
    ann_file = out_dir / "annotations" / f"instances_{split}2017.json"
    ann_file.parent.mkdir(parents=True, exist_ok=True)
    _write_json(coco, ann_file)
    return ann_file, files + [ann_file], len(annotations)


def _write_coco(req: _Request, scene: SceneConfig) -> Tuple[List[Path], dict]:
    """Render both COCO splits.

    Args:
        req (_Request): Checked arguments.
        scene (SceneConfig): Counts, sizes and overlap of the shapes.

    Returns:
        tuple[list[Path], dict]: Every file written, and the summary.
    """
    files: List[Path] = []
    num_annotations = {}
    for split, n in req.counts.items():
        _, written, num_annotations[split] = _coco_split(
            req.out, split, n, req.size, req.seed, req.classes, scene
        )
        files += written
    return files, dict(
        num_images=req.counts, num_annotations=num_annotations, classes=list(req.classes)
    )


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
    """Write a synthetic shape-detection dataset in the COCO 2017 layout.

    Layout, as mmdet's ``CocoDataset`` and pycocotools read it (``data_root=out_dir``,
    ``data_prefix=dict(img='train2017/')``, ``metainfo=dict(classes=classes)``)::

        out_dir/train2017/000000000001.jpg ...
        out_dir/val2017/000000000001.jpg ...
        out_dir/annotations/instances_train2017.json
        out_dir/annotations/instances_val2017.json
        out_dir/shapes_manifest.json

    When ``out_dir`` already holds a complete dataset made with the same arguments, nothing is
    written and the summary says ``reused=True``.

    Args:
        out_dir (str | os.PathLike): Output directory (created if missing).
        num_train (int): Number of training images. Defaults to 800.
        num_val (int): Number of validation images. Defaults to 100.
        img_size (int | Sequence[int]): Square side, or ``(height, width)``, at least
            :data:`~.shapes_render.MIN_IMAGE_SIDE`. Defaults to 320.
        seed (int): Seed; the same seed gives the same files. Defaults to 0.
        classes (Sequence[str]): Shape classes, category ids 1, 2, ... in this order.
            Defaults to :data:`SHAPE_CLASSES`.
        scene (SceneConfig): Number, size and overlap of the shapes per image (e.g. fewer and
            larger shapes for an easier set). Defaults to :data:`COCO_SCENE`.
        force (bool): Regenerate even when a matching dataset exists. Defaults to False.

    Returns:
        dict: ``out_dir``, ``reused``, ``classes``, ``num_images`` and ``num_annotations`` per
        split, and the paths ``train_img_dir``, ``val_img_dir``, ``train_ann_file``,
        ``val_ann_file`` and ``manifest``.

    Raises:
        ValueError: When a count, the image size, the seed or a class name is invalid.
        FileExistsError: When ``out_dir`` holds other data at the paths the dataset writes.
    """
    req = _check_request("coco", out_dir, num_train, num_val, img_size, seed, classes, scene)
    ann_dir = req.out / "annotations"
    outputs = [req.out / "train2017", req.out / "val2017"]
    outputs += [ann_dir / f"instances_{split}2017.json" for split in req.counts]
    reused, manifest = _generate(req, force, outputs, lambda: _write_coco(req, scene))
    return _result(
        req,
        reused,
        manifest,
        train_img_dir=str(req.out / "train2017"),
        val_img_dir=str(req.out / "val2017"),
        train_ann_file=str(ann_dir / "instances_train2017.json"),
        val_ann_file=str(ann_dir / "instances_val2017.json"),
    )
