"""Configs, the one place every tool reads them through: loading, task, test pipeline, classes,
the model without init."""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Union

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from torch import nn

from .preflight import PreflightError, iter_datasets

#: task -> (default_scope, the model's head key, the task in words)
TASK_HEADS: Dict[str, tuple] = {
    "det": ("mmdet", "bbox_head", "detection"),
    "seg": ("mmseg", "decode_head", "segmentation"),
}
TASKS = {scope: task for task, (scope, _, _) in TASK_HEADS.items()}  # default_scope -> task
_PACKAGE_ALIASES = {"mmsegmentation": "mmseg"}


def load_config(
    config: Union[str, os.PathLike, Config],
    cfg_options: Optional[Dict[str, Any]] = None,
    task: Optional[str] = None,
) -> Config:
    """Read a config (or copy a loaded one) and apply ``--cfg-options``; PreflightError when the
    file does not exist or the config is of another task.

    Args:
        config (str | os.PathLike | Config): A file, a loaded config, or a package's bundled
            config, e.g. ``'mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py'``.
        cfg_options (dict, optional): ``--cfg-options`` overrides. Defaults to None.
        task (str, optional): ``'det'`` or ``'seg'``: refuse another task's config (see
            :func:`check_task`). Defaults to None (any).
    """
    if isinstance(config, Config):
        cfg = config.copy()
    else:
        cfg = Config.fromfile(_config_path(os.fspath(config)))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if task is not None:
        check_task(cfg, task)
    return cfg


def _config_path(path: str) -> str:
    if "::" in path:
        from mmengine.utils import get_installed_path

        package, rel = path.split("::", 1)
        package = _PACKAGE_ALIASES.get(package, package)
        path = osp.join(get_installed_path(package), ".mim", "configs", rel)
    if not osp.isfile(path):
        raise PreflightError(f"the config file {path} does not exist")
    return path


def task_of(cfg: Config) -> str:
    """``'det'`` or ``'seg'``, from the config's ``default_scope``; PreflightError for others."""
    scope = cfg.get("default_scope")
    if scope not in TASKS:
        raise PreflightError(
            f"the config {cfg.filename} has default_scope={scope!r}; this project runs mmdet "
            "('mmdet') and mmseg ('mmseg') configs, so inherit from one of the configs under "
            "configs/det or configs/seg"
        )
    return TASKS[scope]


def check_task(cfg: Config, task: str) -> None:
    """Refuse (PreflightError) a config that is not an SSD-style detector or a segmentor.

    Args:
        cfg (Config): The config.
        task (str): ``'det'`` (needs ``model.bbox_head``) or ``'seg'`` (``decode_head``).
    """
    if task not in TASK_HEADS:
        raise ValueError(f"task must be one of {sorted(TASK_HEADS)}, got {task!r}")
    scope, head, words = TASK_HEADS[task]
    if cfg.get("default_scope") != scope or head not in cfg.get("model", {}):
        raise PreflightError(
            f"the config {cfg.filename} is not a {words} config (default_scope="
            f"{cfg.get('default_scope')!r}, no model.{head}): use one under configs/{task}"
        )


def config_test_pipeline(cfg: Config) -> List[Mapping[str, Any]]:
    """The transforms of a config's test dataset (through wrappers), else ``test_pipeline``."""
    dataset = next((leaf for _, leaf in iter_datasets(cfg, ("test",))), {})
    return list(dataset.get("pipeline") or cfg.get("test_pipeline") or [])


def dataset_meta(
    cfg: Config, num_classes: int, saved: Optional[Mapping[str, Any]] = None
) -> Dict[str, Any]:
    """``classes`` and ``palette`` of the config's test dataset, one per class (``class i`` and
    a fixed random palette stand in where they do not match ``num_classes``).

    Args:
        cfg (Config): The config (its ``default_scope`` picks the dataset registry).
        num_classes (int): The model's number of classes.
        saved (Mapping, optional): A checkpoint's ``dataset_meta``, used first when it names
            the classes. Defaults to None.
    """
    dataset = (cfg.get("test_dataloader") or {}).get("dataset") or {}
    meta = dict(saved if saved and "classes" in saved else dataset.get("metainfo") or {})
    if "classes" not in meta and dataset.get("type"):
        if cfg.get("default_scope") == "mmdet":
            from mmdet.registry import DATASETS
        else:
            from mmseg.registry import DATASETS
        with contextlib.suppress(KeyError):
            meta = dict(getattr(DATASETS.get(dataset["type"]), "METAINFO", {}) or {})
    classes = [str(c) for c in (meta.get("classes") or [])]
    if len(classes) != num_classes:
        classes = [f"class {i}" for i in range(num_classes)]
    palette = [[int(v) for v in c] for c in (meta.get("palette") or [])]
    if len(palette) != num_classes:
        palette = np.random.default_rng(42).integers(0, 256, (num_classes, 3)).tolist()
    return dict(classes=classes, palette=palette)


def build_model_without_init(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` (not modified) for inference: random weights (no pretrained
    loading), no auxiliary head, SyncBN reverted to BN, in eval mode."""
    from mmengine.registry import MODELS

    model_cfg = copy.deepcopy(cfg.model)
    if isinstance(model_cfg.get("backbone"), Mapping):
        model_cfg.backbone = {**model_cfg.backbone, "init_cfg": None}
    for key in ("auxiliary_head", "pretrained"):
        model_cfg.pop(key, None)
    with DefaultScope.overwrite_default_scope(cfg.get("default_scope")):
        model = MODELS.build(model_cfg)
    return revert_sync_batchnorm(model).eval()


def add_cfg_options_arg(parser: argparse.ArgumentParser) -> None:
    """Add mm*'s ``--cfg-options KEY=VALUE ...`` (config overrides) to a tool's parser."""
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        help="override config settings, key=value pairs, e.g. "
        "train_dataloader.batch_size=8 test_dataloader.dataset.data_root=DIR",
    )
