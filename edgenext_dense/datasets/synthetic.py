"""Deterministic synthetic shape datasets for a no-download demo.

Two generators write small datasets of coloured geometric shapes in the on-disk layouts that
the OpenMMLab loaders read unchanged, so the detector and the segmenter can be trained and
evaluated on a CPU with nothing downloaded:

* :func:`make_coco_shapes` writes the COCO 2017 detection layout read by mmdet's
  ``CocoDataset`` and by pycocotools (``train2017/``, ``val2017/``,
  ``annotations/instances_{train,val}2017.json``).
* :func:`make_voc_shapes` writes the Pascal VOC 2012 segmentation layout read by mmseg's
  ``PascalVOCDataset`` with the settings of ``mmseg::_base_/datasets/pascal_voc12.py``
  (``VOC2012/JPEGImages``, ``VOC2012/SegmentationClass``, ``VOC2012/ImageSets/Segmentation``).

Each image is drawn from its own random stream, seeded by ``(seed, split, index)``, so a dataset
is the same byte for byte for the same arguments (JPEG quality is fixed; other Pillow/libjpeg
builds may encode the same pixels into other bytes), and a larger dataset begins with the images
of a smaller one. Only numpy, Pillow and json are used.

What the images hold, and the choices made:

* Shapes of up to five classes (:data:`SHAPE_CLASSES`) with random colours, so that a model has
  to learn the shape; the colour of each shape keeps a minimum distance from what lies under it,
  so that every annotated object is visible.
* Sizes are mostly medium to large (log-uniform between fractions of the shorter image side),
  objects lie wholly inside the image, and later shapes may partly hide earlier ones. An object
  keeps at least ``1 - max_occlusion`` of its pixels, and occlusion never cuts a hole in it.
* Boxes and areas describe the *visible* pixels, as in COCO: ``bbox`` is the tight box around
  the pixels an object shows in the image, ``area`` counts them. ``segmentation`` is the drawn
  polygon for an object nothing hides, and the traced outline of the visible pixels otherwise
  (one polygon per visible piece).
* Backgrounds are flat colours, linear gradients, smooth colour noise, or clutter lines over a
  flat colour or gradient; mild pixel noise covers the whole image.
* VOC masks are palettised PNGs with the standard VOC palette. Each shape class stands for one
  VOC class (:data:`VOC_ID_OF_SHAPE`), 0 is background, and a thin band of 255 (ignored by
  mmseg) runs along every object boundary, as in the real VOC masks.

A small manifest (:data:`MANIFEST_NAME`) written last records the parameters and the files, so
that asking again for the same dataset returns at once instead of regenerating it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from edgenext_dense.datasets.shapes_render import (
    COCO_SCENE,
    SHAPE_CLASSES,
    VOC_SCENE,
    ImageSize,
    Scene,
    SceneConfig,
    ShapeInstance,
    _check_classes,
    _check_count,
    _check_seed,
    _normalize_size,
    mask_to_polygons,
    render_scene,
    scene_rng,
)

__all__ = [
    "COCO_SCENE",
    "DEFAULT_SEG_CLASSES",
    "MANIFEST_NAME",
    "SHAPE_CLASSES",
    "VOC_CLASSES",
    "VOC_ID_OF_SHAPE",
    "VOC_SCENE",
    "Scene",
    "SceneConfig",
    "ShapeInstance",
    "make_coco_shapes",
    "make_voc_shapes",
    "mask_to_polygons",
    "render_scene",
    "scene_rng",
    "voc_palette",
]

#: Bumped whenever a change alters the generated files, so that old manifests stop matching.
GENERATOR_VERSION = 1

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

#: Name of the manifest written into the output directory once a dataset is complete.
MANIFEST_NAME = "shapes_manifest.json"

JPEG_QUALITY = 90
_IGNORE_LABEL = 255


# ---------------------------------------------------------------------------------------------
# Files and manifest
# ---------------------------------------------------------------------------------------------


def _save_jpeg(image: np.ndarray, path: Path) -> None:
    """Write an RGB array as a JPEG of fixed quality (same bytes for the same array).

    Args:
        image (np.ndarray): (H, W, 3) uint8 image.
        path (Path): Output file.
    """
    Image.fromarray(image).save(path, format="JPEG", quality=JPEG_QUALITY, subsampling=0)


def _write_json(obj: dict, path: Path) -> None:
    """Write JSON compactly (deterministic key order: insertion order).

    Args:
        obj (dict): Content.
        path (Path): Output file.
    """
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, separators=(",", ":"))


def _scene_params(scene: SceneConfig) -> dict:
    """The fields of a scene configuration, checked to be one.

    Args:
        scene (SceneConfig): Scene settings.

    Returns:
        dict: Its fields.
    """
    if not isinstance(scene, SceneConfig):
        raise ValueError(f"scene must be a SceneConfig, got {scene!r}")
    return dataclasses.asdict(scene)


def _manifest_params(kind: str, **params) -> dict:
    """The parameters that identify a generated dataset.

    Args:
        kind (str): ``'coco'`` or ``'voc'``.
        **params: Generator arguments (JSON-serialisable).

    Returns:
        dict: What the manifest stores and compares.
    """
    params = dict(generator=__name__, version=GENERATOR_VERSION, kind=kind, **params)
    return json.loads(json.dumps(params))  # as read back from the manifest (lists, not tuples)


def _load_manifest(out_dir: Path) -> dict | None:
    """Read the manifest in ``out_dir``, or None when there is none or it is unreadable.

    Args:
        out_dir (Path): Dataset directory.

    Returns:
        dict | None: The manifest.
    """
    try:
        with open(out_dir / MANIFEST_NAME, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _complete_dataset(out_dir: Path, params: dict) -> dict | None:
    """Return the manifest when ``out_dir`` holds a complete dataset made with ``params``.

    Args:
        out_dir (Path): Dataset directory.
        params (dict): Parameters from :func:`_manifest_params`.

    Returns:
        dict | None: The manifest, or None when the dataset must be (re)generated.
    """
    manifest = _load_manifest(out_dir)
    if manifest is None or manifest.get("params") != params or manifest.get("complete") is not True:
        return None
    for rel, size in manifest.get("files", {}).items():
        path = out_dir / rel
        if not path.is_file() or path.stat().st_size != size:
            return None
    return manifest


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    """Write the manifest atomically (a crash leaves the old one or the new one, never half).

    Args:
        out_dir (Path): Dataset directory.
        manifest (dict): Content.
    """
    tmp = out_dir / (MANIFEST_NAME + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, out_dir / MANIFEST_NAME)


def _start_generation(out_dir: Path, params: dict, outputs: Sequence[Path]) -> None:
    """Prepare ``out_dir`` for a new dataset and mark it as being generated.

    Files listed by a previous manifest of this generator are removed, so no stale images are
    left behind. A directory holding data this generator did not write (e.g. the real COCO or
    VOC) is refused rather than overwritten.

    Args:
        out_dir (Path): Dataset directory.
        params (dict): Parameters from :func:`_manifest_params`.
        outputs (Sequence[Path]): Files and image folders the dataset writes.
    """
    old = _load_manifest(out_dir)
    if old is not None and old.get("params", {}).get("generator") == __name__:
        root = out_dir.resolve()
        for rel in old.get("files", {}):
            path = (out_dir / rel).resolve()
            if root in path.parents:
                path.unlink(missing_ok=True)
    else:
        taken = [p for p in outputs if p.is_file() or (p.is_dir() and any(p.iterdir()))]
        if taken:
            raise FileExistsError(
                f"{out_dir} already holds data that {__name__} did not write "
                f"({', '.join(str(p) for p in taken[:3])}); the synthetic dataset would overwrite "
                "or mix with it. Choose a new or empty directory, or delete that data first."
            )
    _write_manifest(out_dir, dict(params=params, complete=False))


def _finish_generation(out_dir: Path, params: dict, files: List[Path], summary: dict) -> dict:
    """Write the manifest that marks ``out_dir`` complete.

    Args:
        out_dir (Path): Dataset directory.
        params (dict): Parameters from :func:`_manifest_params`.
        files (list[Path]): Every file written.
        summary (dict): Counts and class names returned to the caller.

    Returns:
        dict: The manifest.
    """
    manifest = dict(
        params=params,
        complete=True,
        summary=summary,
        files={p.relative_to(out_dir).as_posix(): p.stat().st_size for p in files},
    )
    _write_manifest(out_dir, manifest)
    return manifest


@dataclass(frozen=True)
class _Request:
    """The checked arguments of a generator and the manifest parameters they make.

    Args:
        out (Path): Dataset directory.
        counts (dict[str, int]): Number of images of the ``'train'`` and ``'val'`` splits.
        size (tuple[int, int]): ``(height, width)``.
        seed (int): Dataset seed.
        classes (tuple[str, ...]): Shape classes.
        params (dict): Parameters from :func:`_manifest_params`.
    """

    out: Path
    counts: Dict[str, int]
    size: Tuple[int, int]
    seed: int
    classes: Tuple[str, ...]
    params: dict


def _check_request(
    kind: str,
    out_dir: Union[str, os.PathLike],
    num_train: int,
    num_val: int,
    img_size: ImageSize,
    seed: int,
    classes: Sequence[str],
    scene: SceneConfig,
) -> _Request:
    """Check the arguments shared by :func:`make_coco_shapes` and :func:`make_voc_shapes`.

    Args:
        kind (str): ``'coco'`` or ``'voc'``.
        out_dir (str | os.PathLike): Output directory.
        num_train (int): Number of training images.
        num_val (int): Number of validation images.
        img_size (int | Sequence[int]): Square side, or ``(height, width)``.
        seed (int): Dataset seed.
        classes (Sequence[str]): Shape classes.
        scene (SceneConfig): Scene settings.

    Returns:
        _Request: The checked arguments and the parameters the manifest records.
    """
    counts = {
        "train": _check_count("num_train", num_train),
        "val": _check_count("num_val", num_val),
    }
    size = _normalize_size(img_size)
    seed = _check_seed(seed)
    classes = _check_classes(classes)
    out = Path(out_dir)
    params = _manifest_params(
        kind, num_train=counts["train"], num_val=counts["val"], img_size=list(size), seed=seed,
        classes=list(classes), scene=_scene_params(scene),
    )  # fmt: skip
    return _Request(out, counts, size, seed, classes, params)


def _generate(
    req: _Request,
    force: bool,
    outputs: Sequence[Path],
    write: Callable[[], Tuple[List[Path], dict]],
) -> Tuple[bool, dict]:
    """Reuse the complete dataset in ``req.out`` made with ``req.params``, or write it anew.

    Args:
        req (_Request): Checked arguments.
        force (bool): Regenerate even when a matching dataset exists.
        outputs (Sequence[Path]): Files and image folders the dataset writes.
        write (Callable[[], tuple[list[Path], dict]]): Writes the dataset and returns every
            file written and the summary returned to the caller.

    Returns:
        tuple[bool, dict]: Whether the dataset was reused, and its manifest.
    """
    manifest = None if force else _complete_dataset(req.out, req.params)
    if manifest is not None:
        return True, manifest
    req.out.mkdir(parents=True, exist_ok=True)
    _start_generation(req.out, req.params, outputs)
    files, summary = write()
    return False, _finish_generation(req.out, req.params, files, summary)


def _result(req: _Request, reused: bool, manifest: dict, **paths: str) -> dict:
    """What a generator returns: the directory, whether it was reused, the summary and paths.

    Args:
        req (_Request): Checked arguments.
        reused (bool): Whether the dataset was reused.
        manifest (dict): The dataset's manifest.
        **paths (str): Paths of the layout, in the order they are listed.

    Returns:
        dict: ``out_dir``, ``reused``, the manifest summary, ``paths`` and ``manifest``.
    """
    return dict(
        out_dir=str(req.out),
        reused=reused,
        **manifest["summary"],
        **paths,
        manifest=str(req.out / MANIFEST_NAME),
    )


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


# ---------------------------------------------------------------------------------------------
# Pascal VOC segmentation
# ---------------------------------------------------------------------------------------------


def voc_palette() -> List[int]:
    """The standard 256-colour Pascal VOC palette, flat ``[r0, g0, b0, r1, ...]``.

    Colours 0-20 are the ones mmseg's ``PascalVOCDataset`` lists; 255 is the cream of the
    ignored borders.

    Returns:
        list[int]: 768 values.
    """
    palette = []
    for label in range(256):
        rgb = [0, 0, 0]
        c = label
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << (7 - bit)
            c >>= 3
        palette += rgb
    return palette


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


def _save_voc_png(labels: np.ndarray, path: Path) -> None:
    """Write a label map as a palettised ('P' mode) PNG with the VOC palette.

    Args:
        labels (np.ndarray): (H, W) uint8 label map.
        path (Path): Output file.
    """
    img = Image.fromarray(labels)
    img.putpalette(voc_palette())  # turns the 'L' image into a 'P' one
    img.save(path, format="PNG")


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
            _save_voc_png(_voc_label_map(rendered), seg_dir / f"{name}.png")
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
