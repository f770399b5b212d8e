"""Problems of one COCO annotation file: what mmdet would pass over silently (see data_checks)."""

from __future__ import annotations

import json
import os.path as osp
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Sequence, Tuple

from .preflight import _is_local

MISSING_IMAGES = "missing images"
MAX_EXAMPLES = 5
# Image files are looked up one by one; above this many a fixed sample keeps the check in seconds.
FULL_IMAGE_CHECK_MAX = 20_000
IMAGE_SAMPLE_SIZE = 2_000
# Boxes derived from polygons may pass the border by rounding; more than this is reported.
EDGE_TOLERANCE = 1.0


@dataclass(frozen=True)
class Problem:
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


class CocoTarget(NamedTuple):
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


def _well_formed(entries: List[Any], section: str) -> Tuple[List[Mapping], List[Problem]]:
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
    problem = Problem(
        kind=f"malformed {section}",
        text=f"{_share(len(bad), len(entries))} entries of '{section}' lack one of the keys "
        f"{expected} or hold a wrong type (bbox: 4 numbers); {_examples(bad, 'entries')}",
        effect="pycocotools or mmdet stops with a KeyError or TypeError",
        fatal=True,
    )
    return good, [problem]


def _class_problems(categories: List[Mapping], classes: Tuple[str, ...]) -> List[Problem]:
    """Config classes without a category of that name, or listed in another order than the file.

    mmdet labels the categories matching ``classes`` in the file's order (pycocotools'
    ``getCatIds``), not in the config's.
    """
    names = [c["name"] for c in categories]
    missing = [c for c in classes if c not in names]
    problems = []
    if missing:
        problems.append(
            Problem(
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
            Problem(
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
) -> List[Problem]:
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
            Problem(
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
                Problem(
                    kind=kind,
                    text=f"{_share(len(ids), total)} annotations have {what}; {_examples(ids)}",
                    effect=effect,
                )
            )
    repeated = [ann_id for ann_id, n in Counter(a["id"] for a in annotations).items() if n > 1]
    if repeated:
        problems.append(
            Problem(
                kind="duplicate annotation ids",
                text=f"duplicate annotation ids: {len(repeated)}; {_examples(repeated)}",
                effect="mmdet stops ('Annotation ids ... are not unique')",
                fatal=True,
            )
        )
    return problems


def _missing_image_problem(images: List[Mapping], img_dir: str) -> Problem | None:
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
    return Problem(
        kind=MISSING_IMAGES,
        text=f"{len(missing)} of {how} images have no file under {img_dir}; "
        f"{_examples(ids, 'image ids')}",
        effect="LoadImageFromFile stops the run when it reaches one, and a val/test dataset "
        "cannot skip an image",
        fatal=True,
    )


def check_coco_file(target: CocoTarget) -> List[Problem]:
    """Every problem of one annotation file, as read with its config's classes and image folder."""
    try:
        coco = _read_coco(target.ann_file)
    except ValueError as exc:
        effect = "pycocotools cannot load it"
        return [Problem(kind="unreadable", text=str(exc), effect=effect, fatal=True)]
    images, problems = _well_formed(coco["images"], "images")
    categories, bad = _well_formed(coco["categories"], "categories")
    annotations, bad_anns = _well_formed(coco.get("annotations", []), "annotations")
    problems += bad + bad_anns
    problems += _class_problems(categories, target.classes)
    problems += _annotation_problems(annotations, images, categories, target.classes)
    missing = _missing_image_problem(images, target.img_dir)
    return problems + ([missing] if missing else [])
