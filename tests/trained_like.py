"""Random-weight detectors and segmentors saved as ``tools/train.py`` saves them."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from mmengine.config import Config

from edgenext_dense.apis.loading import build_model


def save_trained_like(model: torch.nn.Module, path: Path, classes: Sequence[str]) -> Path:
    """Write ``model``'s weights with the ``dataset_meta`` a trained checkpoint carries."""
    meta = dict(dataset_meta=dict(classes=tuple(classes)), epoch=1, iter=1)
    torch.save(dict(meta=meta, state_dict=model.state_dict()), path)
    return path


def random_checkpoint(
    config: Path, task: str, path: Path, classes: Sequence[str], seed: int
) -> Path:
    """A model of ``config`` with random weights, saved at ``path``.

    Detectors get cvnets' Xavier head (the COCO configs' default): it spreads the scores and
    box sizes, where the shapes demo's Normal(0.001) start ties every score at 1/6.
    """
    torch.manual_seed(seed)
    cfg = Config.fromfile(str(config))
    if task == "det":
        cfg.model.bbox_head.init_cfg = None
    model = build_model(cfg, task)
    if task == "det":
        model.init_weights()
    return save_trained_like(model, path, classes)
