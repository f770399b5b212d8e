"""COCO annotation files checked before a run, for what mmdet would pass over silently.

mmdet drops annotations of unknown categories and boxes under 1 pixel or outside their image
without a word, pycocotools never attaches an annotation of an unknown image, and a missing image
stops training mid-epoch. ``data_check = dict(on_error='warn')`` logs what mmdet survives instead
(missing training images are then skipped). Segmentation datasets are not checked: mmseg reads no
boxes and stops with the path of a missing image or mask.
"""

from __future__ import annotations

import json
import logging
import os.path as osp
import random
from collections import Counter
from typing import Any, Dict, List, Mapping, NamedTuple, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from .preflight import PreflightError, _is_local, _join, iter_datasets

MISSING_IMAGES = "missing images"
MAX_EXAMPLES = 5
# Image files are looked up one by one; above this many a fixed sample keeps the check in seconds.
FULL_IMAGE_CHECK_MAX = 20_000
IMAGE_SAMPLE_SIZE = 2_000
# Boxes derived from polygons may pass the border by rounding; more than this is reported.
EDGE_TOLERANCE = 1.0


class Problem(NamedTuple):
    """One kind of problem in one file; ``fatal``: mmdet cannot go on, even with 'warn'."""

    kind: str
    text: str
    effect: str
    fatal: bool = False


NUMBER, ID, BOX = (int, float), (int, str), "4 numbers"
# The keys pycocotools and CocoDataset read from each entry; a missing one is a KeyError there.
REQUIRED_KEYS: Dict[str, Dict[str, Any]] = {
    "images": {"id": ID, "file_name": str, "width": NUMBER, "height": NUMBER},
    "categories": {"id": ID, "name": str},
    "annotations": {"id": ID, "image_id": ID, "category_id": ID, "bbox": BOX, "area": NUMBER},
}


def _is(value: Any, kind: Any) -> bool:
    """Whether ``value`` is of a REQUIRED_KEYS kind (bools are not numbers or ids)."""
    if kind == BOX:
        boxlike = isinstance(value, (list, tuple)) and len(value) == 4
        return boxlike and all(_is(v, NUMBER) for v in value)
    return isinstance(value, kind) and not isinstance(value, bool)


DROPS = "mmdet drops them"
# kind -> (what the annotations have, what mmdet does with them); only duplicates stop mmdet
ANNOTATION_PROBLEMS = {
    "unknown image": (
        "an image_id that is not in 'images'",
        "pycocotools never attaches them to an image, so mmdet never sees them",
    ),
    "unknown category": (
        "a category_id that is not one of the config's {classes} classes (unknown category "
        "ids: {which})",
        DROPS,
    ),
    "empty box": ("an empty or negative box (width or height <= 0)", DROPS),
    "tiny box": ("a box under 1 pixel wide or high, or an area <= 0", DROPS),
    "box outside image": ("a box entirely outside their image", DROPS),
    "box beyond image": (
        f"a box extending more than {EDGE_TOLERANCE:g} pixel beyond their image (negative x/y, "
        "or x+w/y+h past its width/height)",
        "mmdet keeps them as they are",
    ),
    "duplicate id": (
        "an id another annotation has too",
        "mmdet stops ('Annotation ids ... are not unique')",
    ),
}


def _count(ids: Sequence[Any], total: int, what: str, example: str = "annotation ids") -> str:
    """``'3 of 120 (2.5%) annotations have ...; e.g. annotation ids 4, 9, 12'``."""
    shown = ", ".join(str(i) for i in list(dict.fromkeys(ids))[:MAX_EXAMPLES])
    share = f"{len(ids)} of {total} ({100.0 * len(ids) / max(total, 1):.1f}%)"
    return f"{share} {what}; e.g. {example} {shown}"


def _read_coco(path: str) -> Dict[str, Any]:
    """Read a COCO instances file; ValueError says why it cannot (JSON error position, key)."""
    try:
        with open(path, encoding="utf-8") as file:
            coco = json.load(file)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"it is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(char {exc.pos})"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"it cannot be read: {type(exc).__name__}: {exc}") from exc
    if not isinstance(coco, dict):
        raise ValueError(f"it holds a JSON {type(coco).__name__}, not a COCO instances dict")
    coco.setdefault("annotations", [])  # test-dev image-info files have none
    wrong = [key for key in REQUIRED_KEYS if not isinstance(coco.get(key), list)]
    if wrong:
        raise ValueError(
            f"it is not a COCO instances dict: no list under {', '.join(map(repr, wrong))} "
            f"(top-level keys: {', '.join(map(repr, coco)) or 'none'})"
        )
    return coco


def _well_formed(entries: List[Any], section: str) -> Tuple[List[Mapping], List[Problem]]:
    """Split a section's entries into those CocoDataset can read and a problem for the rest."""
    checks = REQUIRED_KEYS[section]
    good, bad = [], []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            bad.append(f"#{index} (not a dict)")
        elif wrong := [key for key, kind in checks.items() if not _is(entry.get(key), kind)]:
            label = f"id {entry['id']}" if _is(entry.get("id"), ID) else f"#{index}"
            bad.append(f"{label} ({', '.join(wrong)})")
        else:
            good.append(entry)
    what = (
        f"entries of '{section}' lack one of the keys {', '.join(checks)} or hold a wrong type "
        "(bbox: 4 numbers)"
    )
    effect = "pycocotools or mmdet stops with a KeyError or TypeError"
    text = _count(bad, len(entries), what, "entries")
    return good, [Problem(f"malformed {section}", text, effect, True)] if bad else []


def _class_problems(categories: List[Mapping], classes: Tuple[str, ...]) -> List[Problem]:
    """Config classes without a category of that name, or in another order than the file's
    (mmdet labels them in the file's order, as pycocotools' ``getCatIds`` returns them)."""
    names = [c["name"] for c in categories]
    missing = [c for c in classes if c not in names]
    in_file = list(dict.fromkeys(n for n in names if n in classes))
    in_config = [c for c in classes if c in in_file]
    wrong_names = "are trained and reported under the wrong names"
    problems = []
    if missing:
        text = (
            f"{len(missing)} of the config's {len(classes)} classes have no category of that "
            f"name in 'categories': {', '.join(map(repr, missing[:MAX_EXAMPLES]))}"
        )
        effect = (
            "mmdet gives label i to the i-th category found, so the classes after a missing "
            f"one {wrong_names}"
        )
        problems.append(Problem("classes without a category", text, effect))
    if in_file != in_config:
        text = (
            f"'categories' lists the config's classes in another order ({', '.join(in_file)}) "
            f"than metainfo.classes ({', '.join(in_config)})"
        )
        effect = (
            "mmdet gives label i to the i-th of them in the file's order, so classes "
            f"{wrong_names}; list metainfo.classes in the file's order"
        )
        problems.append(Problem("class order", text, effect))
    return problems


def _box_kind(box: Sequence[float], area: float, image: Mapping[str, Any]) -> str | None:
    """Which box problem an annotation has, in the order mmdet's parse_data_info sees them."""
    x, y, w, h = box
    width, height, tol = image["width"], image["height"], EDGE_TOLERANCE
    if w <= 0 or h <= 0:
        return "empty box"
    if w < 1 or h < 1 or area <= 0:
        return "tiny box"
    if max(0, min(x + w, width) - max(x, 0)) * max(0, min(y + h, height) - max(y, 0)) == 0:
        return "box outside image"
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        return "box beyond image"
    return None


def _annotation_problems(
    annotations: List[Mapping],
    images: List[Mapping],
    categories: List[Mapping],
    classes: Tuple[str, ...],
) -> List[Problem]:
    """Annotations mmdet drops or misreads; crowd and ``ignore`` ones are ignored there too."""
    image_by_id = {image["id"]: image for image in images}
    category_name = {c["id"]: c["name"] for c in categories}
    # pycocotools' getCatIds(catNms=classes): every category when classes is empty
    known = {cid for cid, name in category_name.items() if not classes or name in classes}
    found: Dict[str, List[Any]] = {kind: [] for kind in ANNOTATION_PROBLEMS}
    unknown: Counter = Counter()
    for ann in annotations:
        if ann.get("iscrowd") or ann.get("ignore"):
            continue
        image = image_by_id.get(ann["image_id"])
        if image is None:
            found["unknown image"].append(ann["id"])
            continue
        if ann["category_id"] not in known:
            found["unknown category"].append(ann["id"])
            unknown[ann["category_id"]] += 1
        if kind := _box_kind(ann["bbox"], ann["area"], image):
            found[kind].append(ann["id"])
    ids = Counter(a["id"] for a in annotations)
    found["duplicate id"] = [a["id"] for a in annotations if ids[a["id"]] > 1]
    which = ", ".join(
        f"{cid} {category_name[cid]!r} ({n}x)" if cid in category_name
        else f"{cid}, not in 'categories' ({n}x)"
        for cid, n in unknown.most_common(MAX_EXAMPLES)
    )  # fmt: skip
    problems = []
    for kind, found_ids in found.items():
        if found_ids:
            what, effect = ANNOTATION_PROBLEMS[kind]
            what = "annotations have " + what.format(classes=len(classes), which=which)
            text = _count(found_ids, len(annotations), what)
            problems.append(Problem(kind, text, effect, kind == "duplicate id"))
    return problems


def _missing_images(images: List[Mapping], img_dir: str, can_skip: bool) -> List[Problem]:
    """Images without a file under ``img_dir`` (of a fixed sample in a large set); fatal unless
    every dataset reading them ``can_skip`` an image it cannot load."""
    checked, sampled = images, ""
    if len(images) > FULL_IMAGE_CHECK_MAX:
        checked = random.Random(0).sample(images, IMAGE_SAMPLE_SIZE)
        sampled = (
            f" (a fixed sample: the file lists {len(images)} images, more than "
            f"{FULL_IMAGE_CHECK_MAX})"
        )
    missing = [
        f"{image['id']} ({image['file_name']})"
        for image in checked
        if _is_local(img_dir) and not osp.isfile(osp.join(img_dir, image["file_name"]))
    ]
    what = f"checked images have no file under {img_dir}{sampled}"
    effect = (
        "LoadImageFromFile stops training when it reaches one; with on_error='warn' they are "
        "skipped (ignore_empty=True: mmengine draws another image in their place)"
        if can_skip
        else "LoadImageFromFile stops the run when it reaches one, and a val/test dataset "
        "cannot skip an image"
    )
    text = _count(missing, len(checked), what, "image ids")
    return [Problem(MISSING_IMAGES, text, effect, not can_skip)] if missing else []


def _check_coco_file(
    ann_file: str, img_dir: str, classes: Tuple[str, ...], can_skip_images: bool
) -> List[Problem]:
    """Every problem of one annotation file, read with its config's classes and image folder."""
    try:
        coco = _read_coco(ann_file)
    except ValueError as exc:
        return [Problem("unreadable", str(exc), "pycocotools cannot load it", True)]
    images, problems = _well_formed(coco["images"], "images")
    categories, bad_categories = _well_formed(coco["categories"], "categories")
    annotations, bad_annotations = _well_formed(coco["annotations"], "annotations")
    problems += bad_categories + bad_annotations + _class_problems(categories, classes)
    problems += _annotation_problems(annotations, images, categories, classes)
    return problems + _missing_images(images, img_dir, can_skip_images)


def _on_error(cfg: Config) -> str:
    """The config's ``data_check.on_error``: ``'raise'`` unless the config says ``'warn'``."""
    data_check = cfg.get("data_check") or {}
    value = data_check.get("on_error", "raise") if isinstance(data_check, Mapping) else data_check
    if value not in ("raise", "warn"):
        raise PreflightError(
            f"data_check.on_error={value!r} in the config {cfg.filename}: use 'raise' (stop on "
            "a problem in an annotation file) or 'warn' (log it and go on as mmdet does)"
        )
    return value


def _coco_classes(dataset: Mapping[str, Any]) -> Tuple[str, ...] | None:
    """The classes of a dataset reading its file as mmdet's ``CocoDataset`` does, else None
    (panoptic, LVIS and Objects365 read other formats or keys)."""
    from mmdet.datasets import CocoDataset  # mmdet only here: a segmentation run never gets here
    from mmdet.registry import DATASETS

    kind = dataset.get("type")
    cls = DATASETS.get(kind) if isinstance(kind, str) else kind
    if not (isinstance(cls, type) and issubclass(cls, CocoDataset)) or (
        cls.load_data_list is not CocoDataset.load_data_list
        or cls.parse_data_info is not CocoDataset.parse_data_info
    ):
        return None
    # metainfo.classes as mmengine resolves it: the class's METAINFO when absent
    classes = cls._load_metainfo(dataset.get("metainfo"))["classes"]
    return (classes,) if isinstance(classes, str) else tuple(classes)


def _image_loaders(dataset: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The ``LoadImageFromFile`` steps of a dataset config's pipeline."""
    return [
        step
        for step in dataset.get("pipeline") or []
        if isinstance(step, Mapping) and str(step.get("type", "")).endswith("LoadImageFromFile")
    ]


def check_datasets(cfg: Config, splits: Sequence[str], task: str) -> None:
    """Stop when a COCO annotation file the run reads is malformed or loses annotations silently.

    Every ``CocoDataset`` (or a subclass reading the same format) of the splits' dataloaders is
    checked, through wrappers: readable file, classes matching its categories, annotations with
    known categories and images and boxes mmdet keeps, existing image files. With
    ``data_check = dict(on_error='warn')`` what mmdet survives is logged, one warning per kind and
    file, and missing training images get ``ignore_empty=True`` (the only change to ``cfg``).

    Args:
        cfg (Config): The full config.
        splits (Sequence[str]): Dataloaders the run uses, e.g. ``('train', 'val')``.
        task (str): ``'det'`` or ``'seg'``; segmentation datasets are not checked.
    """
    on_error = _on_error(cfg)
    if task != "det":
        return
    # (annotation file, image folder, classes) -> the (split, dataset config)s reading it
    targets: Dict[Tuple[str, str, Tuple[str, ...]], List[Tuple[str, Mapping]]] = {}
    for split, dataset in iter_datasets(cfg, splits):
        root, ann_file = str(dataset.get("data_root") or ""), dataset.get("ann_file")
        if not ann_file or not _is_local(ann_file := _join(root, ann_file)):
            continue
        classes = _coco_classes(dataset)
        if classes is not None:
            img_dir = _join(root, (dataset.get("data_prefix") or {}).get("img", ""))
            targets.setdefault((ann_file, img_dir, classes), []).append((split, dataset))
    reports, found = [], []
    for (ann_file, img_dir, classes), users in targets.items():
        datasets = [dataset for _, dataset in users]
        # LoadImageFromFile(ignore_empty=True) returns None for a missing image and mmengine's
        # BaseDataset draws another index, except in test mode, where it raises
        can_skip = all(not d.get("test_mode") and _image_loaders(d) for d in datasets)
        problems = _check_coco_file(ann_file, img_dir, classes, can_skip)
        if on_error == "warn":
            for problem in (p for p in problems if not p.fatal):
                if problem.kind == MISSING_IMAGES:
                    for step in (s for d in datasets for s in _image_loaders(d)):
                        step["ignore_empty"] = True
                print_log(
                    f"{ann_file}: {problem.text}; {problem.effect} (data_check.on_error='warn')",
                    logger="current",
                    level=logging.WARNING,
                )
            problems = [p for p in problems if p.fatal]
        if problems:
            sources = ", ".join(dict.fromkeys(f"{split}_dataloader" for split, _ in users))
            stop = " [mmdet cannot go on with this; on_error='warn' does not apply]"
            reports.append(
                f"problems in the annotation file {ann_file} ({sources}):\n"
                + "\n".join(f"  - {p.text}; {p.effect}{stop if p.fatal else ''}" for p in problems)
            )
            found += problems
    if not reports:
        return
    advice = "Fix the annotation file"
    if any(p.kind == MISSING_IMAGES for p in found):
        advice += " or put the missing images in place"
    if not all(p.fatal for p in found):
        advice += (
            ", or set data_check = dict(on_error='warn') in the config (on the command line: "
            "--cfg-options data_check.on_error=warn) to log these problems as warnings and go on "
            "as mmdet does (it drops those annotations)"
        )
    raise PreflightError("\n".join(reports) + "\n" + advice + ".")
