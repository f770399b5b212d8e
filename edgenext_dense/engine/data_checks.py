"""Checks of COCO annotation files before training or testing: what mmdet would pass over silently.

mmdet's ``CocoDataset.parse_data_info`` skips, without a word, annotations whose category is not
one of the config's classes and boxes under 1 pixel or entirely outside their image; pycocotools
never attaches an annotation whose ``image_id`` is not in ``images``; a missing image file stops
training mid-epoch; a malformed file fails deep inside pycocotools without naming it.
:func:`check_datasets` reads every annotation file the run's dataloaders use, with ``json`` as
pycocotools does (not by building the dataset), and raises one :class:`PreflightError` that lists,
per file, each problem with its count and up to five example ids.

The config switch ``data_check = dict(on_error='warn')`` (on the command line:
``--cfg-options data_check.on_error=warn``) logs one warning per problem kind and file instead,
and the run goes on as mmdet does: those annotations are dropped, and missing training images are
skipped (``LoadImageFromFile(ignore_empty=True)`` is set on that dataset's pipeline, so mmengine
draws another image in their place). 'warn' cannot help where mmdet would stop anyway: an
unreadable or malformed file, duplicate annotation ids, and missing images of a val/test dataset
(mmengine refuses a test-time image it cannot load, and skipping one would mean writing a filtered
annotation file, which this check does not do); these raise in both modes.

Segmentation datasets are not checked: mmseg reads no category ids or boxes, and a missing image
or mask stops it with the path in the error.
"""

from __future__ import annotations

import json
import logging
import os.path as osp
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Sequence, Tuple

from mmengine.config import Config
from mmengine.fileio import list_from_file
from mmengine.logging import print_log

from .preflight import PreflightError, _is_local, _iter_datasets, _join

ON_ERROR_CHOICES = ("raise", "warn")
MISSING_IMAGES = "missing images"
MAX_EXAMPLES = 5
# Image files are looked up one by one; above this many a fixed sample keeps the check in seconds.
FULL_IMAGE_CHECK_MAX = 20_000
IMAGE_SAMPLE_SIZE = 2_000
# Boxes derived from polygons may pass the border by rounding; more than this is reported.
EDGE_TOLERANCE = 1.0


@dataclass(frozen=True)
class _Problem:
    """One kind of problem in one annotation file.

    Attributes:
        kind (str): Short name; 'warn' logs one warning per kind and file.
        text (str): What is wrong, with the count and example ids.
        effect (str): What mmdet does about it when the run goes on.
        fatal (bool): mmdet cannot go on with it, so it raises even with
            ``on_error='warn'``. Defaults to False.
    """

    kind: str
    text: str
    effect: str
    fatal: bool = False


class _CocoTarget(NamedTuple):
    """What one COCO dataset config reads: the file, the image folder and the classes."""

    ann_file: str
    img_dir: str
    classes: Tuple[str, ...]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _is_box(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 4 and all(map(_is_number, value))


# The keys pycocotools and CocoDataset read from each entry; a missing one is a KeyError there.
REQUIRED_KEYS: Dict[str, Dict[str, Callable[[Any], bool]]] = {
    "images": {
        "id": _is_id,
        "file_name": lambda v: isinstance(v, str),
        "width": _is_number,
        "height": _is_number,
    },
    "categories": {"id": _is_id, "name": lambda v: isinstance(v, str)},
    "annotations": {
        "id": _is_id,
        "image_id": _is_id,
        "category_id": _is_id,
        "bbox": _is_box,
        "area": _is_number,
    },
}


def _examples(ids: Sequence[Any], what: str = "annotation ids") -> str:
    shown = ", ".join(str(i) for i in ids[:MAX_EXAMPLES])
    return f"e.g. {what} {shown}" if ids else ""


def _share(count: int, total: int) -> str:
    return f"{count} of {total} ({100.0 * count / max(total, 1):.1f}%)"


def _on_error(cfg: Config) -> str:
    """The config's ``data_check.on_error``: ``'raise'`` unless the config says ``'warn'``."""
    data_check = cfg.get("data_check") or {}
    value = data_check.get("on_error", "raise") if isinstance(data_check, Mapping) else data_check
    if value not in ON_ERROR_CHOICES:
        raise PreflightError(
            f"data_check.on_error={value!r} in the config {cfg.filename}: use 'raise' (stop on "
            "a problem in an annotation file) or 'warn' (log it and go on as mmdet does)"
        )
    return value


def _coco_dataset_class(dataset: Mapping[str, Any]) -> type | None:
    """The dataset's class when it reads its file as mmdet's ``CocoDataset`` does, else None."""
    # mmdet only here: a segmentation run never reaches this
    from mmdet.datasets import CocoDataset
    from mmdet.registry import DATASETS

    kind = dataset.get("type")
    cls = kind if isinstance(kind, type) else DATASETS.get(kind) if isinstance(kind, str) else None
    if not (isinstance(cls, type) and issubclass(cls, CocoDataset)):
        return None
    # panoptic, LVIS and Objects365 read other formats or other keys; only CocoDataset's reader
    # is what the checks below mirror
    same_reader = (
        cls.load_data_list is CocoDataset.load_data_list
        and cls.parse_data_info is CocoDataset.parse_data_info
    )
    return cls if same_reader else None


def _classes(dataset: Mapping[str, Any], dataset_cls: type) -> Tuple[str, ...]:
    """``metainfo.classes`` as mmengine resolves it, the class's own METAINFO when absent."""
    classes = (dataset.get("metainfo") or {}).get("classes", dataset_cls.METAINFO["classes"])
    if isinstance(classes, str):  # mmengine reads a string as a file of class names
        try:
            return tuple(list_from_file(classes))
        except (TypeError, FileNotFoundError):
            return (classes,)
    return tuple(classes)


def _read_coco(path: str) -> Dict[str, Any]:
    """Read a COCO instances file.

    Args:
        path (str): The annotation file.

    Returns:
        dict: The parsed file, with ``images`` and ``categories`` lists.

    Raises:
        ValueError: Saying why the file is unreadable (where a JSON error is, which key is
            missing).
    """
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
    # 'annotations' may be absent: test-dev image-info files have none
    wrong = [
        key
        for key in REQUIRED_KEYS
        if not isinstance(coco.get(key, [] if key == "annotations" else None), list)
    ]
    if wrong:
        raise ValueError(
            f"it is not a COCO instances dict: no list under {', '.join(map(repr, wrong))} "
            f"(top-level keys: {', '.join(map(repr, coco)) or 'none'})"
        )
    return coco


def _entry_label(entry: Any, index: int) -> str:
    """``'id 7'`` for an entry with a usable id, else its position, ``'#3'``."""
    has_id = isinstance(entry, Mapping) and _is_id(entry.get("id"))
    return f"id {entry['id']}" if has_id else f"#{index}"


def _well_formed(entries: List[Any], section: str) -> Tuple[List[Mapping], List[_Problem]]:
    """Split a section's entries into those CocoDataset can read and a problem for the rest."""
    checks = REQUIRED_KEYS[section]
    good, bad = [], []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            bad.append(f"#{index} (not a dict)")
            continue
        wrong = [key for key, ok in checks.items() if not ok(entry.get(key))]
        if wrong:
            bad.append(f"{_entry_label(entry, index)} ({', '.join(wrong)})")
        else:
            good.append(entry)
    if not bad:
        return good, []
    expected = ", ".join(checks)
    problem = _Problem(
        kind=f"malformed {section}",
        text=f"{_share(len(bad), len(entries))} entries of '{section}' lack one of the keys "
        f"{expected} or hold a wrong type (bbox: 4 numbers); {_examples(bad, 'entries')}",
        effect="pycocotools or mmdet stops with a KeyError or TypeError",
        fatal=True,
    )
    return good, [problem]


def _class_problems(categories: List[Mapping], classes: Tuple[str, ...]) -> List[_Problem]:
    """Config classes without a category of that name, or listed in another order than the file.

    mmdet labels the categories matching ``classes`` in the file's order (pycocotools'
    ``getCatIds``), not in the config's.
    """
    names = [c["name"] for c in categories]
    missing = [c for c in classes if c not in names]
    problems = []
    if missing:
        problems.append(
            _Problem(
                kind="classes without a category",
                text=f"{len(missing)} of the config's {len(classes)} classes have no category "
                f"of that name in 'categories': {', '.join(map(repr, missing[:MAX_EXAMPLES]))}",
                effect="mmdet gives label i to the i-th category found, so the classes after a "
                "missing one are trained and reported under the wrong names",
            )
        )
    in_file = list(dict.fromkeys(n for n in names if n in classes))
    in_config = [c for c in classes if c in in_file]
    if in_file != in_config:
        problems.append(
            _Problem(
                kind="class order",
                text=f"'categories' lists the config's classes in another order "
                f"({', '.join(in_file)}) than metainfo.classes ({', '.join(in_config)})",
                effect="mmdet gives label i to the i-th of them in the file's order, so classes "
                "are trained and reported under the wrong names; list metainfo.classes in the "
                "file's order",
            )
        )
    return problems


def _box_kind(box: Sequence[float], area: float, image: Mapping[str, Any]) -> str | None:
    """Which box problem an annotation has, in the order mmdet's parse_data_info sees them."""
    x, y, w, h = box
    width, height = image["width"], image["height"]
    if w <= 0 or h <= 0:
        return "empty box"
    if w < 1 or h < 1 or area <= 0:
        return "tiny box"
    inter_w = max(0, min(x + w, width) - max(x, 0))
    inter_h = max(0, min(y + h, height) - max(y, 0))
    if inter_w * inter_h == 0:
        return "box outside image"
    tol = EDGE_TOLERANCE
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        return "box beyond image"
    return None


# kind -> (what the annotations have, what mmdet does with them)
ANNOTATION_PROBLEMS = {
    "unknown image": (
        "an image_id that is not in 'images'",
        "pycocotools never attaches them to an image, so mmdet never sees them",
    ),
    "empty box": ("an empty or negative box (width or height <= 0)", "mmdet drops them"),
    "tiny box": ("a box under 1 pixel wide or high, or an area <= 0", "mmdet drops them"),
    "box outside image": ("a box entirely outside their image", "mmdet drops them"),
    "box beyond image": (
        f"a box extending more than {EDGE_TOLERANCE:g} pixel beyond their image (negative x/y, "
        "or x+w/y+h past its width/height)",
        "mmdet keeps them as they are",
    ),
}


def _annotation_problems(
    annotations: List[Mapping],
    images: List[Mapping],
    categories: List[Mapping],
    classes: Tuple[str, ...],
) -> List[_Problem]:
    """Annotations mmdet drops or misreads: unknown category or image, bad boxes, duplicate ids.

    Crowd (``iscrowd=1``) and ``ignore`` annotations are not reported: mmdet ignores them anyway.
    """
    image_by_id = {image["id"]: image for image in images}
    category_name = {c["id"]: c["name"] for c in categories}
    # pycocotools' getCatIds(catNms=classes): every category when classes is empty
    known = {cid for cid, name in category_name.items() if not classes or name in classes}
    found: Dict[str, List[Any]] = {kind: [] for kind in ANNOTATION_PROBLEMS}
    unknown: List[Any] = []
    unknown_ids: Counter = Counter()
    for ann in annotations:
        if ann.get("iscrowd") or ann.get("ignore"):
            continue
        image = image_by_id.get(ann["image_id"])
        if image is None:
            found["unknown image"].append(ann["id"])
            continue
        if ann["category_id"] not in known:
            unknown.append(ann["id"])
            unknown_ids[ann["category_id"]] += 1
        kind = _box_kind(ann["bbox"], ann["area"], image)
        if kind:
            found[kind].append(ann["id"])
    total = len(annotations)
    problems = []
    if unknown:
        which = ", ".join(
            f"{cid} {category_name[cid]!r} ({n}x)"
            if cid in category_name
            else f"{cid}, not in 'categories' ({n}x)"
            for cid, n in unknown_ids.most_common(MAX_EXAMPLES)
        )
        problems.append(
            _Problem(
                kind="unknown category",
                text=f"{_share(len(unknown), total)} annotations have a category_id that is not "
                f"one of the config's {len(classes)} classes (unknown category ids: {which}); "
                f"{_examples(unknown)}",
                effect="mmdet drops them",
            )
        )
    for kind, ids in found.items():
        if ids:
            what, effect = ANNOTATION_PROBLEMS[kind]
            problems.append(
                _Problem(
                    kind=kind,
                    text=f"{_share(len(ids), total)} annotations have {what}; {_examples(ids)}",
                    effect=effect,
                )
            )
    repeated = [ann_id for ann_id, n in Counter(a["id"] for a in annotations).items() if n > 1]
    if repeated:
        problems.append(
            _Problem(
                kind="duplicate annotation ids",
                text=f"duplicate annotation ids: {len(repeated)}; {_examples(repeated)}",
                effect="mmdet stops ('Annotation ids ... are not unique')",
                fatal=True,
            )
        )
    return problems


def _missing_image_problem(images: List[Mapping], img_dir: str) -> _Problem | None:
    """Images of ``images`` without a file under ``img_dir``; a fixed sample of a large set."""
    if not _is_local(img_dir):
        return None
    checked, how = images, f"{len(images)}"
    if len(images) > FULL_IMAGE_CHECK_MAX:
        checked = random.Random(0).sample(images, IMAGE_SAMPLE_SIZE)
        how = (
            f"{IMAGE_SAMPLE_SIZE} checked (a fixed sample: the file lists {len(images)} images, "
            f"more than {FULL_IMAGE_CHECK_MAX})"
        )
    missing = [i for i in checked if not osp.isfile(osp.join(img_dir, i["file_name"]))]
    if not missing:
        return None
    ids = [f"{i['id']} ({i['file_name']})" for i in missing]
    return _Problem(
        kind=MISSING_IMAGES,
        text=f"{len(missing)} of {how} images have no file under {img_dir}; "
        f"{_examples(ids, 'image ids')}",
        effect="LoadImageFromFile stops the run when it reaches one, and a val/test dataset "
        "cannot skip an image",
        fatal=True,
    )


def _check_coco_file(target: _CocoTarget) -> List[_Problem]:
    """Every problem of one annotation file, as read with its config's classes and image folder."""
    try:
        coco = _read_coco(target.ann_file)
    except ValueError as exc:
        effect = "pycocotools cannot load it"
        return [_Problem(kind="unreadable", text=str(exc), effect=effect, fatal=True)]
    images, problems = _well_formed(coco["images"], "images")
    categories, bad = _well_formed(coco["categories"], "categories")
    annotations, bad_anns = _well_formed(coco.get("annotations", []), "annotations")
    problems += bad + bad_anns
    problems += _class_problems(categories, target.classes)
    problems += _annotation_problems(annotations, images, categories, target.classes)
    missing = _missing_image_problem(images, target.img_dir)
    return problems + ([missing] if missing else [])


def _image_loaders(dataset: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """The ``LoadImageFromFile`` steps of a dataset config's pipeline."""
    return [
        step
        for step in dataset.get("pipeline") or []
        if isinstance(step, Mapping) and str(step.get("type", "")).endswith("LoadImageFromFile")
    ]


def _can_skip_images(dataset: Mapping[str, Any]) -> bool:
    """Whether a dataset can skip an image it cannot load.

    ``LoadImageFromFile(ignore_empty=True)`` returns None for such an image, and mmengine's
    BaseDataset then draws another index; in test mode it raises instead.
    """
    return not dataset.get("test_mode") and bool(_image_loaders(dataset))


def _skippable(problem: _Problem) -> _Problem:
    """The missing-images problem of datasets that can skip images: 'warn' applies to it."""
    effect = (
        "LoadImageFromFile stops training when it reaches one; with on_error='warn' they are "
        "skipped (ignore_empty=True: mmengine draws another image in their place)"
    )
    return _Problem(problem.kind, problem.text, effect)


def _coco_targets(
    cfg: Config, splits: Sequence[str]
) -> Dict[_CocoTarget, List[Tuple[str, Mapping[str, Any]]]]:
    """The COCO files the splits' dataloaders read, each with its (split, dataset config)s."""
    targets: Dict[_CocoTarget, List[Tuple[str, Mapping[str, Any]]]] = {}
    for split in splits:
        loader = cfg.get(f"{split}_dataloader")
        if not loader:
            continue
        for dataset in _iter_datasets(loader.get("dataset")):
            dataset_cls = _coco_dataset_class(dataset)
            ann_file = dataset.get("ann_file")
            if dataset_cls is None or not isinstance(ann_file, str) or not ann_file:
                continue
            root = str(dataset.get("data_root") or "")
            path = _join(root, ann_file)
            if not _is_local(path):
                continue
            img_prefix = (dataset.get("data_prefix") or {}).get("img", "")
            target = _CocoTarget(path, _join(root, img_prefix), _classes(dataset, dataset_cls))
            targets.setdefault(target, []).append((split, dataset))
    return targets


def _report(target: _CocoTarget, users: Iterable[str], problems: Sequence[_Problem]) -> str:
    lines = [f"problems in the annotation file {target.ann_file} ({', '.join(users)}):"]
    for problem in problems:
        stop = " [mmdet cannot go on with this; on_error='warn' does not apply]"
        lines.append(f"  - {problem.text}; {problem.effect}{stop if problem.fatal else ''}")
    return "\n".join(lines)


def _unresolved(
    target: _CocoTarget, users: Sequence[Tuple[str, Mapping[str, Any]]], on_error: str
) -> List[_Problem]:
    """Check one file; with 'warn', log what mmdet survives and return only what stops it.

    Args:
        target (_CocoTarget): The file, image folder and classes.
        users (Sequence[tuple]): The ``(split, dataset config)`` pairs reading it; with 'warn'
            their ``LoadImageFromFile`` steps get ``ignore_empty=True`` when images are missing.
        on_error (str): ``'raise'`` or ``'warn'``.

    Returns:
        list: The problems left to raise.
    """
    problems = _check_coco_file(target)
    if all(_can_skip_images(dataset) for _, dataset in users):
        problems = [_skippable(p) if p.kind == MISSING_IMAGES else p for p in problems]
    if on_error == "raise":
        return problems
    for problem in problems:
        if problem.fatal:
            continue
        if problem.kind == MISSING_IMAGES:
            for _, dataset in users:
                for step in _image_loaders(dataset):
                    step["ignore_empty"] = True
        print_log(
            f"{target.ann_file}: {problem.text}; {problem.effect} (data_check.on_error='warn')",
            logger="current",
            level=logging.WARNING,
        )
    return [p for p in problems if p.fatal]


def check_datasets(cfg: Config, splits: Sequence[str], task: str) -> None:
    """Stop when a COCO annotation file the run reads is malformed or loses annotations silently.

    Checks every ``CocoDataset`` (and subclass reading the same format) of the splits'
    dataloaders, through Repeat/Concat/ClassBalanced wrappers: the file is readable, the config's
    classes match its categories, annotations refer to known categories and images and have
    boxes mmdet keeps, and the image files exist. With ``data_check = dict(on_error='warn')``
    problems mmdet survives are logged, one warning per kind and file, and missing training
    images are skipped by setting ``ignore_empty=True`` on the dataset's ``LoadImageFromFile``
    (the only change this function makes to ``cfg``).

    Args:
        cfg (Config): The full config.
        splits (Sequence[str]): Dataloaders the run uses, e.g. ``('train', 'val')``; a split
            whose ``<split>_dataloader`` is None or absent is skipped.
        task (str): ``'det'`` or ``'seg'``; segmentation datasets are not checked.

    Raises:
        PreflightError: Listing, per annotation file, each problem with its count and example
            ids, and what to do.
        ValueError: When ``task`` is neither ``'det'`` nor ``'seg'``.
    """
    if task not in ("det", "seg"):
        raise ValueError(f"task must be 'det' or 'seg', got {task!r}")
    on_error = _on_error(cfg)
    if task == "seg":
        return
    reports, found = [], []
    for target, users in _coco_targets(cfg, splits).items():
        problems = _unresolved(target, users, on_error)
        if problems:
            sources = dict.fromkeys(f"{split}_dataloader" for split, _ in users)
            reports.append(_report(target, sources, problems))
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
