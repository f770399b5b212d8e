"""Loading a trained detector or segmentor: the config's kind checked, every weight accounted for.

Shared by :func:`edgenext_dense.apis.det_demo.load_detector` and
:func:`edgenext_dense.apis.seg_demo.init_segmentor` (and through them by the ONNX export), so
both refuse a config of the other task and a checkpoint that does not fit, in the same words.
"""

from __future__ import annotations

import os
import os.path as osp
from typing import Any, Dict, Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmengine.runner.checkpoint import _load_checkpoint

from edgenext_dense.engine.preflight import PreflightError, checkpoint_misfit

# task: (default_scope, the model's head key, the task in words)
_TASKS = {
    "det": ("mmdet", "bbox_head", "detection"),
    "seg": ("mmseg", "decode_head", "segmentation"),
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
    scope, head, words = _TASKS[task]
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


def load_trained_weights(
    model: torch.nn.Module,
    checkpoint: str,
    cfg: Config,
    fit_hint: str,
    drop_prefixes: Sequence[str] = (),
) -> Any:
    """Load a checkpoint saved by ``tools/train.py`` into ``model``, refusing any misfit.

    ``module.`` prefixes (DDP) are stripped; no weight may be missing or left over.

    Args:
        model (torch.nn.Module): The model built from ``cfg``.
        checkpoint (str): Checkpoint file.
        cfg (Config): The config, named in the messages.
        fit_hint (str): What another config may have changed, for the message (e.g.
            ``'backbone arch, number of classes'``).
        drop_prefixes (Sequence[str]): Checkpoint keys starting with one of these are not
            loaded (e.g. a training-only auxiliary head). Defaults to ``()``.

    Returns:
        Any: The checkpoint as read (its ``meta`` carries the ``dataset_meta``).

    Raises:
        ValueError: When the weights do not fit the model (shapes, missing or unexpected keys).
    """
    ckpt = _load_checkpoint(checkpoint, map_location="cpu")
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else {}
    drop = tuple(drop_prefixes)
    state = {
        (k[len("module.") :] if k.startswith("module.") else k): v
        for k, v in state.items()
        if not k.startswith(drop)
    }
    misfit = checkpoint_misfit(state, model.state_dict())
    if misfit:
        raise ValueError(
            f"the checkpoint {checkpoint} does not fit {cfg.filename}: {'; '.join(misfit)}. Was "
            f"it trained with another config ({fit_hint})?"
        )
    model.load_state_dict(state)
    return ckpt
