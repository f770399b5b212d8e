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

import logging
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

from mmengine.config import Config
from mmengine.fileio import list_from_file
from mmengine.logging import print_log

from .coco_file_checks import MISSING_IMAGES, CocoTarget, Problem, check_coco_file
from .preflight import PreflightError, _is_local, _iter_datasets, _join

ON_ERROR_CHOICES = ("raise", "warn")


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


def _skippable(problem: Problem) -> Problem:
    """The missing-images problem of datasets that can skip images: 'warn' applies to it."""
    effect = (
        "LoadImageFromFile stops training when it reaches one; with on_error='warn' they are "
        "skipped (ignore_empty=True: mmengine draws another image in their place)"
    )
    return Problem(problem.kind, problem.text, effect)


def _coco_targets(
    cfg: Config, splits: Sequence[str]
) -> Dict[CocoTarget, List[Tuple[str, Mapping[str, Any]]]]:
    """The COCO files the splits' dataloaders read, each with its (split, dataset config)s."""
    targets: Dict[CocoTarget, List[Tuple[str, Mapping[str, Any]]]] = {}
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
            target = CocoTarget(path, _join(root, img_prefix), _classes(dataset, dataset_cls))
            targets.setdefault(target, []).append((split, dataset))
    return targets


def _report(target: CocoTarget, users: Iterable[str], problems: Sequence[Problem]) -> str:
    lines = [f"problems in the annotation file {target.ann_file} ({', '.join(users)}):"]
    for problem in problems:
        stop = " [mmdet cannot go on with this; on_error='warn' does not apply]"
        lines.append(f"  - {problem.text}; {problem.effect}{stop if problem.fatal else ''}")
    return "\n".join(lines)


def _unresolved(
    target: CocoTarget, users: Sequence[Tuple[str, Mapping[str, Any]]], on_error: str
) -> List[Problem]:
    """Check one file; with 'warn', log what mmdet survives and return only what stops it.

    Args:
        target (CocoTarget): The file, image folder and classes.
        users (Sequence[tuple]): The ``(split, dataset config)`` pairs reading it; with 'warn'
            their ``LoadImageFromFile`` steps get ``ignore_empty=True`` when images are missing.
        on_error (str): ``'raise'`` or ``'warn'``.

    Returns:
        list: The problems left to raise.
    """
    problems = check_coco_file(target)
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
