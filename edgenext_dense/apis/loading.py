"""Building and loading a detector or segmentor: the config's kind checked, every weight loaded.

:func:`load_trained_model` is what the demos (:mod:`~edgenext_dense.apis.det_demo`,
:mod:`~edgenext_dense.apis.seg_demo`) and the ONNX export use in place of mmdet's
``init_detector`` and mmseg's ``init_model``, which load a checkpoint without saying that
weights are missing or left over. Both tasks refuse a config of the other task and a checkpoint
that does not fit, in the same words.
"""

from __future__ import annotations

import copy
import importlib
import os
import os.path as osp
from typing import Any, Dict, Optional, Union

import numpy as np
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

from edgenext_dense.engine.preflight import (
    PreflightError,
    check_checkpoint_task,
    checkpoint_misfit,
)

# task: (default_scope, the model's head key, the task in words, what another config may change)
_TASKS = {
    "det": ("mmdet", "bbox_head", "detection", "backbone arch, number of classes"),
    "seg": ("mmseg", "decode_head", "segmentation", "backbone arch, head width, number of classes"),
}


def load_task_config(
    config: Union[str, os.PathLike, Config],
    task: str,
    cfg_options: Optional[Dict[str, Any]] = None,
) -> Config:
    """Read a config (or copy a loaded one), apply overrides and check it is one of ``task``'s.

    Args:
        config (str | os.PathLike | Config): The config file or a loaded config.
        task (str): ``'det'`` (an mmdet config with ``model.bbox_head``) or ``'seg'`` (an mmseg
            config with ``model.decode_head``).
        cfg_options (dict, optional): Config overrides. Defaults to None.

    Returns:
        Config: The config, a copy when one was given.

    Raises:
        ValueError: For a task other than ``'det'`` and ``'seg'``.
        PreflightError: When the file does not exist or the config is of another kind.
    """
    if task not in _TASKS:
        raise ValueError(f"task must be one of {sorted(_TASKS)}, got {task!r}")
    scope, head, words, _ = _TASKS[task]
    if isinstance(config, (str, os.PathLike)):
        if not osp.isfile(config):
            raise PreflightError(f"the config file {config} does not exist")
        cfg = Config.fromfile(str(config))
    else:
        cfg = config.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get("default_scope") != scope or head not in cfg.get("model", {}):
        raise PreflightError(
            f"the config {cfg.filename} is not a {words} config (default_scope="
            f"{cfg.get('default_scope')!r}, no model.{head}): use one under configs/{task}"
        )
    return cfg


def build_model(cfg: Config, task: str) -> nn.Module:
    """Build a config's model with random weights (no pretrained loading), in eval mode.

    Args:
        cfg (Config): A detection or segmentation config (not modified).
        task (str): ``'det'`` or ``'seg'``.

    Returns:
        nn.Module: The model, SyncBN turned into BN; a segmentor has no auxiliary head.
    """
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = None
    if task == "seg":  # the auxiliary head only helps training
        cfg.model.pretrained = None
        cfg.model.auxiliary_head = None
        cfg.model.train_cfg = None
    scope = _TASKS[task][0]
    init_default_scope(scope)
    models = importlib.import_module(f"{scope}.registry").MODELS
    return revert_sync_batchnorm(models.build(cfg.model)).eval()


def resolve_dataset_meta(
    cfg: Config, task: str, num_classes: int, checkpoint: Any = None
) -> Dict[str, Any]:
    """Class names and palette: the checkpoint's ``dataset_meta``, else the config's test set's.

    Args:
        cfg (Config): The config; its test dataset's ``metainfo``, else its class's ``METAINFO``.
        task (str): ``'det'`` or ``'seg'``, whose dataset registry names the class.
        num_classes (int): The model's; names and colours of another length are replaced by
            ``class <i>`` and a fixed random palette.
        checkpoint (Any): A checkpoint as read, whose ``meta.dataset_meta`` comes first.
            Defaults to None.

    Returns:
        dict: ``classes`` (list of str) and ``palette`` (list of RGB tuples).
    """
    meta = (checkpoint.get("meta") or {}) if isinstance(checkpoint, dict) else {}
    meta = meta.get("dataset_meta")
    if not meta or "classes" not in meta:
        dataset = cfg.get("test_dataloader", {}).get("dataset", {})
        meta = dict(dataset.get("metainfo") or {})
        if "classes" not in meta and dataset.get("type"):
            datasets = importlib.import_module(f"{_TASKS[task][0]}.registry").DATASETS
            meta = dict(getattr(datasets.get(dataset["type"]), "METAINFO", {}) or {})
    classes = [str(c) for c in meta.get("classes") or []]
    if len(classes) != num_classes:
        classes = [f"class {i}" for i in range(num_classes)]
    palette = [tuple(int(v) for v in c) for c in meta.get("palette") or []]
    if len(palette) != num_classes:
        rng = np.random.default_rng(42)
        palette = [tuple(c) for c in rng.integers(0, 256, (num_classes, 3)).tolist()]
    return dict(classes=classes, palette=palette)


def load_trained_model(
    config: Union[str, os.PathLike, Config],
    checkpoint: str,
    task: str,
    device: str = "cpu",
    cfg_options: Optional[Dict[str, Any]] = None,
) -> nn.Module:
    """Build the config's detector or segmentor and load a checkpoint ``tools/train.py`` saved.

    ``module.`` prefixes (DDP) are stripped and a segmentor's auxiliary head is dropped; no
    other weight may be missing or left over.

    Args:
        config (str | os.PathLike | Config): A config under ``configs/det`` or ``configs/seg``.
        checkpoint (str): The checkpoint file.
        task (str): ``'det'`` or ``'seg'``.
        device (str): Torch device. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Config overrides. Defaults to None.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` and ``dataset_meta`` (see
        :func:`resolve_dataset_meta`) set.

    Raises:
        PreflightError: When the config or checkpoint is missing, the config is of another
            task or the checkpoint holds another kind of model (e.g. EdgeNeXt ImageNet
            weights), saying what it looks like.
        ValueError: When the checkpoint's weights do not fit the config's model.
    """
    cfg = load_task_config(config, task, cfg_options)
    check_checkpoint_task(checkpoint, cfg, task)
    model = build_model(cfg, task)
    ckpt = _load_checkpoint(checkpoint, map_location="cpu")
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else {}
    state = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}
    if task == "seg":  # built without it (see build_model)
        state = {k: v for k, v in state.items() if not k.startswith("auxiliary_head.")}
    misfit = checkpoint_misfit(state, model.state_dict())
    if misfit:
        raise ValueError(
            f"the checkpoint {checkpoint} does not fit {cfg.filename}: {'; '.join(misfit)}. Was "
            f"it trained with another config ({_TASKS[task][3]})?"
        )
    model.load_state_dict(state)
    head = getattr(model, _TASKS[task][1])
    model.dataset_meta = resolve_dataset_meta(cfg, task, head.num_classes, ckpt)
    model.cfg = cfg
    return model.to(device)
