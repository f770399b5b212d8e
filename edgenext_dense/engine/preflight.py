"""Checks run before a Runner is built, so a wrong path or checkpoint fails in seconds, not deep
inside mmengine (or as "missing keys" warnings and a 0.0 mAP). Each raises :class:`PreflightError`
naming the file, what was expected and what to do.
"""

from __future__ import annotations

import os.path as osp
import pickle
import re
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch
from mmengine.config import Config

from edgenext_dense.datasets.seg_converters import COCO_VOC_SEG_DIR

# The synthetic-data command is shown only where its script exists (a source checkout).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHAPES_SCRIPT = "tools/dataset_converters/make_shapes_dataset.py"
# The synthetic stand-ins, by task, as `make_shapes_dataset.py TASK OUT_DIR` writes them.
SHAPES_DEFAULT_ROOTS = {"det": "data/shapes_coco", "seg": "data/shapes_voc"}
VOC_AUG_SCRIPT = "tools/dataset_converters/voc_aug.py"
COCO_TO_VOC_SCRIPT = "tools/dataset_converters/coco_to_voc_seg.py"
# What voc_aug.py writes under VOC2012/ from the SBD annotations.
VOC_AUG_OUTPUTS = ("SegmentationClassAug", "ImageSets/Segmentation/aug.txt")
SBD_URL = "http://home.bharathh.info/pubs/codes/SBD/download.html"
REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+)")
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6
PICKLE_PROTOCOL = b"\x80"  # the legacy format: a pickle

COCO_LAYOUT = """\
{root}
├── annotations
│   ├── instances_train2017.json
│   └── instances_val2017.json
├── train2017/   (118,287 images)
└── val2017/     (5,000 images)
(COCO 2017 from https://cocodataset.org/#download; another location:
 --cfg-options train_dataloader.dataset.data_root=DIR val_dataloader.dataset.data_root=DIR
 test_dataloader.dataset.data_root=DIR)"""

VOC_LAYOUT = """\
{root}
├── JPEGImages/               (17,125 images)
├── SegmentationClass/        (2,913 palettised PNG masks)
├── SegmentationClassAug/     (12,031 masks with SBD; written by
│                              tools/dataset_converters/voc_aug.py, for the 'aug' split)
└── ImageSets
    └── Segmentation
        ├── train.txt
        ├── val.txt
        └── aug.txt           (10,582 ids; written by voc_aug.py)
(Pascal VOC 2012 + SBD; see README 'Data'; another location:
 --cfg-options train_dataloader.dataset.data_root=DIR ...)"""

COCO_VOC_SEG_LAYOUT = """\
{root}
├── annotations/instances_{split}.json
├── {split}/          (the COCO images)
└── {seg_dir}/
    ├── {split}/      (VOC-class masks, written by coco_to_voc_seg.py)
    └── {split}.txt
(COCO 2017 from https://cocodataset.org/#download)"""


class PreflightError(RuntimeError):
    """A problem found before training or testing started; the message says how to fix it."""


def _is_local(path: str) -> bool:
    return "://" not in path


def _join(root: str, path: str) -> str:
    # as mmengine's BaseDataset._join_prefix: relative paths are under data_root
    return path if (osp.isabs(path) or not root) else osp.join(root, path)


def iter_datasets(cfg: Config, splits: Sequence[str]) -> Iterator[Tuple[str, Mapping[str, Any]]]:
    """Yield ``(split, leaf dataset config)`` of the splits' dataloaders, through wrappers
    (``dataset``: Repeat, ClassBalanced...; ``datasets``: Concat); absent splits are skipped."""

    def leaves(node: Any) -> Iterator[Mapping[str, Any]]:
        if not isinstance(node, Mapping):
            return
        if isinstance(node.get("dataset"), Mapping):
            yield from leaves(node["dataset"])
        elif isinstance(node.get("datasets"), (list, tuple)):
            for sub in node["datasets"]:
                yield from leaves(sub)
        else:
            yield node

    for split in splits:
        for dataset in leaves((cfg.get(f"{split}_dataloader") or {}).get("dataset")):
            yield split, dataset


def _missing_paths(dataset: Mapping[str, Any]) -> List[str]:
    """The local paths a dataset config reads that do not exist (its data_root alone if so)."""
    root = str(dataset.get("data_root") or "")
    if root and _is_local(root) and not osp.isdir(root):
        return [root]  # everything below it is missing too
    prefixes = dataset.get("data_prefix")
    prefixes = prefixes.values() if isinstance(prefixes, Mapping) else ()
    wanted = [(dataset.get("ann_file"), osp.exists)] + [(p, osp.isdir) for p in prefixes]
    paths = [(_join(root, p), exists) for p, exists in wanted if isinstance(p, str) and p]
    return [p for p, exists in paths if _is_local(p) and not exists(p)]


def _coco_voc_seg_split(dataset: Mapping[str, Any]) -> str | None:
    """The COCO split of a dataset reading coco_to_voc_seg.py's output, else None."""
    prefixes = dataset.get("data_prefix")
    seg_maps = prefixes.get("seg_map_path") if isinstance(prefixes, Mapping) else None
    for path in (dataset.get("ann_file"), seg_maps):
        parts = Path(str(path or "")).parts
        if len(parts) == 2 and parts[0] == COCO_VOC_SEG_DIR:
            return Path(parts[1]).stem
    return None


def _converter_hint(dataset: Mapping[str, Any], missing: Sequence[str]) -> str | None:
    """The converter command that writes the missing files under an existing root, or None."""
    root = str(dataset.get("data_root") or "").rstrip("/")
    if not root or not osp.isdir(root):
        return None
    split = _coco_voc_seg_split(dataset)
    seg_dir = osp.join(root, COCO_VOC_SEG_DIR)
    if split is not None and any(path.startswith(seg_dir) for path in missing):
        return (
            f"{seg_dir}/ holds the VOC-class masks made from the COCO instances; write "
            f"them with:\n  python {COCO_TO_VOC_SCRIPT} {root} --split {split}"
        )
    if not any(path.rstrip("/").endswith(VOC_AUG_OUTPUTS) for path in missing):
        return None
    # voc_aug.py takes the folder holding VOC2012/ and writes VOC2012/SegmentationClassAug
    devkit = osp.dirname(root) if osp.basename(root) == "VOC2012" else "VOCDEVKIT"
    sbd = osp.join(devkit, "benchmark_RELEASE")
    sbd_given = osp.isdir(osp.join(sbd, "dataset", "cls"))
    command = f"  python {VOC_AUG_SCRIPT} {devkit} {sbd if sbd_given else 'SBD_DIR'}"
    where = "" if sbd_given else f"\n(SBD_DIR: SBD's benchmark.tgz from {SBD_URL}, unpacked)"
    if devkit == "VOCDEVKIT":
        where += "\n(VOCDEVKIT: a folder holding VOC2012/; the tool writes there)"
    return (
        "SegmentationClassAug/ and ImageSets/Segmentation/aug.txt are made from the SBD "
        f"annotations; write them with:\n{command}{where}"
    )


def _layout_hint(dataset: Mapping[str, Any], task: str) -> str:
    """The expected folder layout for a dataset config, and how to get a synthetic stand-in."""
    root = str(dataset.get("data_root") or "").rstrip("/") or "."
    dataset_type = str(dataset.get("type", ""))
    generated = "shapes" in osp.basename(osp.dirname(root)) + osp.basename(root)
    coco_split = _coco_voc_seg_split(dataset)
    if generated:
        layout = f"{root}/ holds the generated shapes dataset."
    elif coco_split is not None:
        layout = COCO_VOC_SEG_LAYOUT.format(
            root=f"{root}/", split=coco_split, seg_dir=COCO_VOC_SEG_DIR
        )
    elif "Coco" in dataset_type or str(dataset.get("ann_file") or "").endswith(".json"):
        layout = COCO_LAYOUT.format(root=f"{root}/")
    elif "VOC" in dataset_type and task == "seg":
        layout = VOC_LAYOUT.format(root=f"{root}/")
    else:
        layout = f"{root}/ as {dataset_type or 'the dataset'} reads it."
    hint = f"Expected layout:\n{layout}"
    if (PROJECT_ROOT / SHAPES_SCRIPT).is_file() and task in SHAPES_DEFAULT_ROOTS:
        if generated:  # the segmentation generator writes OUT_DIR/VOC2012
            out_dir = osp.dirname(root) if osp.basename(root) == "VOC2012" else root
            what = "Generate it"
        else:
            out_dir, what = SHAPES_DEFAULT_ROOTS[task], "No data at hand? Generate a stand-in"
        hint += (
            f"\n{what} (synthetic shapes, no download):\n  python {SHAPES_SCRIPT} {task} {out_dir}"
        )
    return hint


def check_dataset_paths(cfg: Config, splits: Sequence[str], task: str) -> None:
    """Stop when a dataset root, annotation file or image/mask folder of a dataloader is missing.

    Args:
        cfg (Config): The full config.
        splits (Sequence[str]): Dataloaders the run uses, e.g. ``('train', 'val')``.
        task (str): ``'det'`` or ``'seg'``; selects the layout shown.
    """
    problems: List[str] = []
    hints: List[str] = []
    seen = set()
    for split, dataset in iter_datasets(cfg, splits):
        missing = [path for path in _missing_paths(dataset) if path not in seen]
        if missing:
            seen.update(missing)
            source = f"({split}_dataloader, {dataset.get('type', '?')})"
            problems += [f"  {path}   {source}" for path in missing]
            for hint in (_converter_hint(dataset, missing), _layout_hint(dataset, task)):
                if hint and hint not in hints:
                    hints.append(hint)
    if problems:
        raise PreflightError(
            "dataset path(s) not found:\n" + "\n".join(problems) + "\n" + "\n".join(hints)
        )


def _iter_pretrained(node: Any, key: str) -> Iterator[Tuple[str, str]]:
    """Yield ``(config key, checkpoint path)`` of every ``init_cfg`` of type Pretrained."""
    if isinstance(node, (list, tuple)):
        node = {str(index): value for index, value in enumerate(node)}
    for name, value in node.items() if isinstance(node, Mapping) else ():
        if name != "init_cfg":
            yield from _iter_pretrained(value, f"{key}.{name}")
            continue
        for init in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(init, Mapping) and init.get("type") == "Pretrained":
                if isinstance(init.get("checkpoint"), str):
                    yield f"{key}.init_cfg", init["checkpoint"]


def check_pretrained_checkpoints(cfg: Config) -> None:
    """Stop when an ``init_cfg=dict(type='Pretrained', checkpoint=PATH)`` file is missing, saying
    how to get it: the config's ``pretrain_command`` (shapes demos), else the ImageNet weights.

    Args:
        cfg (Config): The full config; ``cfg.model`` is searched at any depth.
    """
    for key, path in _iter_pretrained(cfg.get("model"), "model"):
        if _is_local(path) and not osp.isfile(osp.expanduser(path)):
            make = cfg.get("pretrain_command")
            how = (
                f"make it with: {make}"
                if make
                else "download the EdgeNeXt ImageNet checkpoint (see README 'Pretrained "
                "weights') and put it there"
            )
            raise PreflightError(
                f"the classification checkpoint {path} does not exist ({key}); {how}, or set "
                f"--cfg-options {key}=None to train from scratch"
            )


def _state_dict(checkpoint: Any) -> Dict[str, Any]:
    """A checkpoint's weights by model name (DDP's ``module.`` prefix removed)."""
    if not isinstance(checkpoint, Mapping):
        return {}
    for name in ("state_dict", "model", "model_state", "module"):
        if isinstance(checkpoint.get(name), Mapping):
            checkpoint = checkpoint[name]
            break
    return {k.removeprefix("module."): v for k, v in checkpoint.items() if isinstance(k, str)}


def _short(error: BaseException) -> str:
    """``'Type: first line'`` of an error, without torch's advice to load unsafely."""
    lines = str(error).strip().splitlines()
    if not lines or "weights_only" in str(error):
        return type(error).__name__
    return f"{type(error).__name__}: {lines[0][:100]}"


def unreadable_reason(path: str) -> Optional[str]:
    """Why a local checkpoint does not load as mmengine loads it (``weights_only=True``): a
    one-line reason, e.g. ``'truncated (...)'``, or None when it loads.

    Args:
        path (str): A local checkpoint file.
    """
    if not osp.isfile(path):
        return "the file does not exist"
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return None
    except Exception as exc:  # noqa: BLE001  (every way a file can fail to load)
        error = exc
    size = osp.getsize(path)
    with open(path, "rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if size == 0:
        return "empty (0 bytes; a save that was interrupted)"
    if not head.startswith((ZIP_MAGIC, PICKLE_PROTOCOL)):
        return f"not a torch checkpoint ({_short(error)})"
    if isinstance(error, pickle.UnpicklingError):
        # torch names the first global it refused ("GLOBAL posix.system was not an allowed...")
        refused = REFUSED_GLOBAL.search(str(error))
        if refused:
            return f"refused global `{refused.group(1)}` because loading it could run code"
        if "weights_only" in str(error):
            return "it holds objects that cannot be loaded without running code"
    if isinstance(error, EOFError) or (head == ZIP_MAGIC and not zipfile.is_zipfile(path)):
        return f"truncated ({size} bytes; a save that was interrupted)"
    return f"unreadable ({_short(error)})"


def _load(path: str) -> Dict[str, Any]:
    """The state dict of a checkpoint, loaded as mmengine loads it (``weights_only``)."""
    from mmengine.runner.checkpoint import _load_checkpoint

    if _is_local(path) and not osp.isfile(osp.expanduser(path)):
        raise PreflightError(f"the checkpoint {path} does not exist")
    try:
        return _state_dict(_load_checkpoint(path, map_location="cpu"))
    except Exception as exc:  # noqa: BLE001  (any reason a file is unreadable)
        reason = unreadable_reason(osp.expanduser(path)) if _is_local(path) else None
        raise PreflightError(
            f"could not read the checkpoint {path}: {reason or _short(exc)}"
        ) from exc


def describe_checkpoint(keys: Sequence[str]) -> str:
    """Say what a state dict looks like, e.g. ``"a segmentation model (top-level keys:
    backbone (312), decode_head (10))"``.

    Args:
        keys (Sequence[str]): State-dict keys (a leading ``module.`` already removed).
    """
    counts = Counter(k.split(".", 1)[0] for k in keys)
    listing = ", ".join(f"{name} ({n})" for name, n in counts.most_common(6))
    if not keys:
        kind = "no model weights"
    elif any(name.endswith("bbox_head") or name in ("rpn_head", "roi_head") for name in counts):
        kind = "a detection model"
    elif "decode_head" in counts:
        kind = "a segmentation model"
    elif "backbone" in counts and not any(name.endswith("head") for name in counts):
        kind = "a backbone-only checkpoint"
    else:
        kind = "an image-classification checkpoint (e.g. EdgeNeXt ImageNet weights)"
    return f"{kind} (top-level keys: {listing or 'none'})"


def check_checkpoint_task(path: str, cfg: Config, task: str) -> None:
    """Stop when a checkpoint is missing, unreadable, or lacks the weights of the config's
    backbone or a head (``auxiliary_head`` is optional: it is not used at test time).

    Args:
        path (str): Checkpoint file.
        cfg (Config): The full config.
        task (str): ``'det'`` or ``'seg'``, for the message.
    """
    keys = list(_load(path))
    model_cfg: Dict[str, Any] = cfg.get("model") or {}
    required = [
        name
        for name, value in model_cfg.items()
        if isinstance(value, Mapping) and "type" in value and name != "auxiliary_head"
        and (name == "backbone" or name.endswith("head"))
    ]  # fmt: skip
    missing = [name for name in required if name not in {k.split(".", 1)[0] for k in keys}]
    if missing:
        model_kind = {"det": "detector", "seg": "segmentor"}.get(task, "model")
        expected = ", ".join(f"'{name}.'" for name in required)
        raise PreflightError(
            f"the checkpoint {path} is not a {model_kind} for this config: it looks like "
            f"{describe_checkpoint(keys)}, but the config builds a {model_cfg.get('type')} "
            f"whose weights start with {expected} (none start with "
            f"{', '.join(repr(m + '.') for m in missing)}). Pass a checkpoint that "
            "tools/train.py saved for this kind of config (work_dirs/<config>/*.pth); "
            "classification weights belong in model.backbone.init_cfg for training."
        )


def checkpoint_misfit(
    checkpoint_state: Mapping[str, Any], model_state: Mapping[str, Any], shown: int = 3
) -> List[str]:
    """How a checkpoint's tensors fail to fit a model: one line per kind, empty when they fit.

    Args:
        checkpoint_state (Mapping[str, Any]): The checkpoint's state dict (no ``module.``).
        model_state (Mapping[str, Any]): The model's ``state_dict()``.
        shown (int): Examples named per kind. Defaults to 3.
    """
    shape = lambda v: tuple(getattr(v, "shape", ()))  # noqa: E731
    kinds = {
        "with another shape": [
            f"{k}: checkpoint {shape(v)} vs model {shape(model_state[k])}"
            for k, v in checkpoint_state.items()
            if k in model_state and shape(v) != shape(model_state[k])
        ],
        "missing": [k for k in model_state if k not in checkpoint_state],
        "unexpected": [k for k in checkpoint_state if k not in model_state],
    }
    return [
        f"{len(items)} tensors {what} (e.g. {'; '.join(items[:shown])})"
        for what, items in kinds.items()
        if items
    ]


def check_checkpoint_fits(path: str, model: Any, cfg: Config) -> None:
    """Stop when a checkpoint's tensors do not all fit the model built from ``cfg`` (mmengine
    only logs missing keys and shape mismatches, then scores a half-loaded model).

    Args:
        path (str): The checkpoint file.
        model (torch.nn.Module): The model built from ``cfg`` (a DDP wrapper is unwrapped).
        cfg (Config): The config, named in the message.
    """
    misfit = checkpoint_misfit(_load(path), getattr(model, "module", model).state_dict())
    if misfit:
        raise PreflightError(
            f"the checkpoint {path} does not fit {cfg.filename}: " + "; ".join(misfit) + ". "
            "Was it trained with another config (backbone arch, number of classes, head)? "
            "Test it with the config saved beside it in its work dir."
        )
