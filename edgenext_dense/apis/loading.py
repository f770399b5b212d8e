"""Building a detector or segmentor and loading its trained checkpoint, every weight accounted for
(mmdet's ``init_detector`` and mmseg's ``init_model`` say nothing of missing or extra weights).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint
from torch import nn

from edgenext_dense.engine.config import build_model_without_init, dataset_meta, load_config
from edgenext_dense.engine.preflight import check_checkpoint_task, checkpoint_misfit

# what another config may have changed when a checkpoint does not fit
_FIT_HINTS = {
    "det": "backbone arch, number of classes",
    "seg": "backbone arch, head width, number of classes",
}


def load_trained_model(
    config: Union[str, os.PathLike, Config],
    checkpoint: str,
    task: str,
    device: str = "cpu",
    cfg_options: Optional[Dict[str, Any]] = None,
) -> nn.Module:
    """Build the config's detector or segmentor and load a checkpoint ``tools/train.py`` saved;
    DDP's ``module.`` and a segmentor's auxiliary head are dropped, no other weight may be.

    Args:
        config (str | os.PathLike | Config): A config under ``configs/det`` or ``configs/seg``.
        checkpoint (str): The checkpoint file.
        task (str): ``'det'`` or ``'seg'``.
        device (str): Torch device. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Config overrides. Defaults to None.

    Returns:
        nn.Module: The model in eval mode, with ``cfg`` and ``dataset_meta`` (the checkpoint's,
        else the config's test set's) set.

    Raises:
        PreflightError: For a missing config or checkpoint, a config of another task or a
            checkpoint of another kind of model, saying what it looks like.
        ValueError: When the checkpoint's weights do not fit the config's model.
    """
    cfg = load_config(config, cfg_options, task)
    check_checkpoint_task(checkpoint, cfg, task)
    init_default_scope(cfg.default_scope)  # as mmdet's init_detector: the pipeline needs it
    model = build_model_without_init(cfg)
    ckpt = _load_checkpoint(checkpoint, map_location="cpu")
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else {}
    state = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}
    if task == "seg":  # built without it (see build_model_without_init)
        state = {k: v for k, v in state.items() if not k.startswith("auxiliary_head.")}
    misfit = checkpoint_misfit(state, model.state_dict())
    if misfit:
        raise ValueError(
            f"the checkpoint {checkpoint} does not fit {cfg.filename}: {'; '.join(misfit)}. Was "
            f"it trained with another config ({_FIT_HINTS[task]})?"
        )
    model.load_state_dict(state)
    head = model.bbox_head if task == "det" else model.decode_head
    meta = dataset_meta(cfg, head.num_classes, (ckpt.get("meta") or {}).get("dataset_meta"))
    model.dataset_meta = dict(classes=meta["classes"], palette=[tuple(c) for c in meta["palette"]])
    model.cfg = cfg
    return model.to(device)
