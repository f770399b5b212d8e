"""Deterministic synthetic shape datasets, so the demos train on a CPU with nothing downloaded.

A scene is a background (flat, gradient, colour blotches or clutter lines) with a few coloured
:data:`SHAPE_CLASSES` over it, drawn with Pillow, and a per-pixel instance map.
:func:`make_coco_shapes` writes the COCO 2017 layout (``bbox`` and ``area`` of the visible
pixels, polygons traced with OpenCV); :func:`make_voc_shapes` the Pascal VOC 2012 layout, each
shape a VOC class (:data:`VOC_ID_OF_SHAPE`) with a band of 255 along the boundaries. Each image
has its own random stream (:func:`scene_rng`); a manifest (:data:`MANIFEST_NAME`) lets a second
call with the same arguments return at once, and data the generator did not write is refused.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
from PIL import Image, ImageDraw

from edgenext_dense.datasets.seg_converters import save_voc_mask, voc_palette

__all__ = [
    "COCO_SCENE", "DEFAULT_SEG_CLASSES", "MANIFEST_NAME", "SHAPE_CLASSES", "VOC_CLASSES",
    "VOC_ID_OF_SHAPE", "VOC_SCENE", "Scene", "SceneConfig", "ShapeInstance", "make_coco_shapes",
    "make_voc_shapes", "mask_to_polygons", "render_scene", "scene_rng", "voc_palette",
]  # fmt: skip

#: Shape classes, in the order of their COCO category ids (1, 2, ...) by default.
SHAPE_CLASSES: Tuple[str, ...] = ("circle", "rectangle", "triangle", "star", "cross")
#: Shape classes of the default segmentation set: few and very different, to learn quickly.
DEFAULT_SEG_CLASSES: Tuple[str, ...] = ("circle", "rectangle", "triangle")
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
MIN_IMAGE_SIDE = 32  # smaller, the shapes are not recognisable

_KIND_CODES = {"coco": 1, "voc": 2, "cls": 3}
_SPLIT_CODES = {"train": 0, "val": 1}

ImageSize = Union[int, Sequence[int]]


@dataclass(frozen=True)
class SceneConfig:
    """How many shapes a scene holds, how large they are and how much they may overlap.

    Args:
        num_objects (tuple[int, int]): Inclusive range of shapes per image. Defaults to (1, 6).
        size_range (tuple[float, float]): Shape diameter as a fraction of the shorter side,
            log-uniform. Defaults to (0.15, 0.6).
        max_occlusion (float): Largest fraction of a shape later ones may hide. Defaults to 0.35.
        min_contrast (float): Smallest RGB distance between a shape's colour and what lies
            under it. Defaults to 90.0.
        noise_std (tuple[float, float]): Range of the pixel noise std. Defaults to (0.0, 6.0).
    """

    num_objects: Tuple[int, int] = (1, 6)
    size_range: Tuple[float, float] = (0.15, 0.6)
    max_occlusion: float = 0.35
    min_contrast: float = 90.0
    noise_std: Tuple[float, float] = (0.0, 6.0)

    def __post_init__(self) -> None:
        checks = (
            ("num_objects", 1 <= self.num_objects[0] <= self.num_objects[1] <= 254,
             "1 <= min <= max <= 254"),
            ("size_range", 0 < self.size_range[0] <= self.size_range[1] <= 1,
             "0 < min <= max <= 1"),
            ("max_occlusion", 0 <= self.max_occlusion < 1, "0 <= value < 1"),
            ("noise_std", 0 <= self.noise_std[0] <= self.noise_std[1], "0 <= min <= max"),
        )  # fmt: skip
        for name, ok, need in checks:
            if not ok:
                raise ValueError(f"{name}={getattr(self, name)!r}: need {need}")


#: Detection scenes: 1-6 medium to large shapes.
COCO_SCENE = SceneConfig()
#: Segmentation scenes: 1-3 large shapes, little occlusion.
VOC_SCENE = SceneConfig(num_objects=(1, 3), size_range=(0.3, 0.7), max_occlusion=0.25)


@dataclass
class ShapeInstance:
    """One drawn shape: its class, (N, 2) int32 polygon as filled, RGB colour and drawn area."""

    label: str
    polygon: np.ndarray
    color: Tuple[int, int, int]
    full_area: int


@dataclass
class Scene:
    """An (H, W, 3) uint8 RGB image; its (H, W) uint8 map, ``i + 1`` where ``instances[i]``
    shows and 0 on the background; the shapes in drawing order (later ones on top)."""

    image: np.ndarray
    instance_map: np.ndarray
    instances: List[ShapeInstance]

    def visible_box(self, i: int) -> Tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the pixels ``instances[i]`` shows (all 0 when it is hidden)."""
        return cv2.boundingRect((self.instance_map == i + 1).astype(np.uint8))


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)  # True is no int


def _check_int(name: str, value: int, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_size(img_size: ImageSize) -> Tuple[int, int]:
    """``(height, width)`` from a square side or a pair, both at least MIN_IMAGE_SIDE."""
    pair = isinstance(img_size, Sequence) and len(img_size) == 2
    if not (_is_int(img_size) or (pair and all(map(_is_int, img_size)))):
        raise ValueError(
            f"img_size must be an int or a (height, width) pair of ints, got {img_size!r}"
        )
    size = (int(img_size[0]), int(img_size[1])) if pair else (int(img_size), int(img_size))
    if min(size) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"img_size={img_size!r} is too small: both sides must be at least "
            f"{MIN_IMAGE_SIDE} pixels for the shapes to be recognisable"
        )
    return size


def _check_classes(classes: Sequence[str]) -> Tuple[str, ...]:
    if isinstance(classes, str):
        raise ValueError(f"classes must be a sequence of shape names, got the string {classes!r}")
    names = tuple(classes)
    unknown = [c for c in names if c not in SHAPE_CLASSES]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(
            f"classes={names!r} is invalid: give one or more distinct names from {SHAPE_CLASSES}"
            + (f" (unknown: {unknown})" if unknown else "")
        )
    return names


def _polar(radii, angles) -> np.ndarray:
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return points @ np.array([[c, s], [-s, c]])


def _outline(label: str, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A random (N, 2) polygon of class ``label``, centred on the origin, within ``radius``."""
    if label == "circle":
        n = int(np.clip(round(radius / 2), 16, 64))
        return _polar(np.full(n, radius), np.linspace(0, 2 * math.pi, n, endpoint=False))
    if label == "rectangle":
        aspect = rng.uniform(0.45, 1.0)  # short side / long side
        hx = radius / math.hypot(1.0, aspect)
        hx, hy = (hx, hx * aspect) if rng.random() >= 0.5 else (hx * aspect, hx)
        corners = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        return _rotate(corners, rng.uniform(-0.3, 0.3))
    if label == "triangle":
        angles = np.array([0.0, 2.0, 4.0]) * math.pi / 3 + rng.uniform(-0.2, 0.2, 3)
        radii = radius * rng.uniform(0.85, 1.0, 3)
        return _polar(radii, angles + rng.uniform(0, 2 * math.pi))
    if label == "star":
        radii = radius * np.tile([1.0, rng.uniform(0.38, 0.5)], 5)
        return _polar(radii, np.arange(10) * math.pi / 5 + rng.uniform(0, 2 * math.pi))
    t = radius * rng.uniform(0.2, 0.3)  # cross: half the arm width, then half its length
    h = math.sqrt(radius**2 - t**2)
    quarter = np.array([[-t, -h], [t, -h], [t, -t]])  # one arm's end and inner corner
    pts = np.concatenate([_rotate(quarter, k * math.pi / 2) for k in range(4)])
    return _rotate(pts, rng.uniform(-0.35, 0.35))


def _color(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _noise(rng: np.random.Generator, shape: Tuple[int, ...], std: float) -> np.ndarray:
    """Zero-mean uniform noise of the given std (cheaper to draw than Gaussian noise)."""
    return (rng.random(shape, dtype=np.float32) - np.float32(0.5)) * np.float32(std * 12**0.5)


def _gradient(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    c0, c1 = _color(rng), _color(rng)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xx * math.cos(angle) + yy * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return c0 + t[..., None] * (c1 - c0)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Flat, gradient, smooth colour noise or clutter lines, equally likely; float32 (H, W, 3)."""
    kind = int(rng.integers(0, 4))
    if kind == 2:  # smooth colour blotches (a small random grid upsampled) plus fine grain
        cells = int(rng.integers(3, 9))
        grid = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
        smooth = np.asarray(Image.fromarray(grid).resize((width, height), Image.BICUBIC))
        bg = smooth.astype(np.float32) + _noise(rng, (height, width, 3), rng.uniform(5.0, 20.0))
    elif kind == 1 or (kind == 3 and rng.random() >= 0.5):
        bg = _gradient(rng, height, width)
    else:
        bg = np.broadcast_to(_color(rng), (height, width, 3))
    bg = np.clip(bg, 0, 255)
    if kind == 3:  # clutter: random thin lines over the flat colour or gradient
        img = Image.fromarray(bg.astype(np.uint8))
        draw, max_width = ImageDraw.Draw(img), max(1, min(height, width) // 100)
        for _ in range(int(rng.integers(4, 15))):
            xs, ys = rng.uniform(0, width, 2), rng.uniform(0, height, 2)
            color = tuple(rng.integers(0, 256, 3).tolist())
            line = [(xs[0], ys[0]), (xs[1], ys[1])]
            draw.line(line, fill=color, width=int(rng.integers(1, max_width + 1)))
        bg = np.asarray(img)
    return bg.astype(np.float32)


def _fill(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """The (height, width) boolean mask of an integer polygon, boundary pixels included."""
    # PIL's rule, as the demos' data was always drawn: another rule moves every pixel edge
    img = Image.new("L", (width, height), 0)
    ImageDraw.Draw(img).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(img, dtype=bool)


def _contrasting_color(rng: np.random.Generator, avoid: List[np.ndarray], min_dist: float):
    """The first of up to 32 random colours ``min_dist`` away from all of ``avoid``, else the
    farthest; drawn one at a time, so the stream (and every later shape) stays as it was."""
    best, best_dist = None, -1.0
    for _ in range(32):
        color = rng.integers(0, 256, 3).astype(np.float32)
        dist = float(np.linalg.norm(np.stack(avoid) - color, axis=1).min())
        if dist >= min_dist:
            return color
        if dist > best_dist:
            best, best_dist = color, dist
    return best


def scene_rng(seed: int, kind: str, split: str, index: int) -> np.random.Generator:
    """The random stream of one image, so images do not depend on how many are made.

    Args:
        seed (int): Dataset seed.
        kind (str): ``'coco'``, ``'voc'`` or ``'cls'`` (the pretraining crops).
        split (str): ``'train'`` or ``'val'``.
        index (int): Index of the image within its split.
    """
    if kind not in _KIND_CODES or split not in _SPLIT_CODES:
        raise ValueError(
            f"unknown kind {kind!r} or split {split!r}: kinds are {sorted(_KIND_CODES)}, "
            f"splits {sorted(_SPLIT_CODES)}"
        )
    return np.random.default_rng([seed, _KIND_CODES[kind], _SPLIT_CODES[split], index])


def _place(rng: np.random.Generator, label: str, height: int, width: int, config: SceneConfig):
    """A random int32 polygon of class ``label`` wholly inside the image."""
    lo, hi = config.size_range
    diameter = min(height, width) * math.exp(rng.uniform(math.log(lo), math.log(hi)))
    outline = _outline(label, max(diameter / 2, 3.0), rng)
    span = outline.max(0) - outline.min(0)
    limit = np.array([width - 1, height - 1], dtype=np.float64)
    outline = outline * min(1.0, float(np.min(limit / np.maximum(span, 1e-6))))
    low, high = -outline.min(0), limit - outline.max(0)
    offset = rng.uniform(low, np.maximum(high, low))
    return np.clip(np.floor(outline + offset + 0.5), 0, limit).astype(np.int32)


def _occlusion_ok(instance_map, instances, under: np.ndarray, config: SceneConfig) -> bool:
    """Whether covering ``under`` leaves each shape ``1 - max_occlusion`` of itself, no hole."""
    ids, hidden = np.unique(under[under > 0], return_counts=True)
    if len(ids) == 1 and len(under) == hidden[0]:
        # NOTE: a connected shape cuts a hole only when it lies wholly on another one.
        return False
    for i, n_hidden in zip(ids.tolist(), hidden.tolist()):
        visible = int(np.count_nonzero(instance_map == i))
        if visible - n_hidden < (1 - config.max_occlusion) * instances[i - 1].full_area:
            return False
    return True


def render_scene(
    rng: np.random.Generator,
    img_size: ImageSize,
    classes: Sequence[str] = SHAPE_CLASSES,
    config: SceneConfig = COCO_SCENE,
) -> Scene:
    """Render one image of random shapes (at least one) with its instance map.

    Args:
        rng (np.random.Generator): Random stream (see :func:`scene_rng`).
        img_size (int | Sequence[int]): Square side, or ``(height, width)``.
        classes (Sequence[str]): Shape classes to draw from. Defaults to :data:`SHAPE_CLASSES`.
        config (SceneConfig): Counts, sizes and overlap. Defaults to :data:`COCO_SCENE`.
    """
    height, width = _check_size(img_size)
    classes = _check_classes(classes)
    background = _background(rng, height, width)
    canvas = background.copy()
    instance_map = np.zeros((height, width), dtype=np.uint8)
    instances: List[ShapeInstance] = []
    for _ in range(int(rng.integers(config.num_objects[0], config.num_objects[1] + 1))):
        label = classes[int(rng.integers(len(classes)))]
        for _attempt in range(30):
            polygon = _place(rng, label, height, width, config)
            (x0, y0), (x1, y1) = polygon.min(0), polygon.max(0) + 1
            local = _fill(polygon - [x0, y0], y1 - y0, x1 - x0)
            under = instance_map[y0:y1, x0:x1][local]
            if local.any() and _occlusion_ok(instance_map, instances, under, config):
                break
        else:
            continue  # no room for this shape; the scene keeps fewer
        region = (slice(y0, y1), slice(x0, x1))
        avoid = [background[region][local].mean(0)]
        avoid += [np.float32(instances[i - 1].color) for i in np.unique(under) if i]
        color = _contrasting_color(rng, avoid, config.min_contrast)
        canvas[region][local] = color
        instance_map[region][local] = len(instances) + 1
        instances.append(ShapeInstance(label, polygon, tuple(map(int, color)), int(local.sum())))
    canvas += _noise(rng, canvas.shape, rng.uniform(*config.noise_std))
    return Scene(np.clip(np.rint(canvas), 0, 255).astype(np.uint8), instance_map, instances)


def mask_to_polygons(mask: np.ndarray, tolerance: float = 0.75) -> List[List[float]]:
    """Outline each piece of a boolean (H, W) mask as a flat COCO polygon (holes are dropped).

    Args:
        mask (np.ndarray): (H, W) boolean mask.
        tolerance (float): Simplification tolerance in pixels. Defaults to 0.75.
    """
    # NOTE: contours run through the centres of the boundary pixels; traced at twice the
    # resolution they lie a quarter pixel inside the mask's edge, so the boundary pixels are kept.
    big = cv2.resize(mask.astype(np.uint8), None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    simple = [cv2.approxPolyDP(c, 2 * tolerance, True).reshape(-1, 2) for c in contours]
    return [((p + 0.5) / 2).reshape(-1).tolist() for p in simple if len(p) >= 3]


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
        train=_check_int("num_train", counts[0], 1), val=_check_int("num_val", counts[1], 1)
    )
    size, seed = _check_size(img_size), _check_int("seed", seed, 0)
    classes = _check_classes(classes)
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
