"""Synthetic EdgeNeXt checkpoints in the three public layouts, built from the layout tables.

``tests/data/checkpoint_layouts/*.tsv`` (a copy of ``shared/checkpoint_layouts``) lists every
tensor of the published classifiers under its official, timm and mmpretrain name with its
shape. The same random weights are written in each layout, wrapped as each source wraps them.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, List, Tuple

import torch

LAYOUT_DIR = Path(__file__).parent / "data" / "checkpoint_layouts"
ARCHS = ("xx_small", "x_small", "small", "base")
FORMATS = ("official", "timm", "mmpretrain")


def layout_rows(arch: str) -> List[Tuple[str, str, str, Tuple[int, ...]]]:
    """Rows ``(official, timm, mmpretrain, shape)`` of one architecture's table."""
    with open(LAYOUT_DIR / f"{arch}.tsv", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    return [
        (o, t, m, tuple(int(s) for s in shape.strip("[]").split(","))) for o, t, m, shape in rows
    ]


def random_official_state(arch: str, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random weights under official names, scaled so that every block changes its input."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, _, _, shape in layout_rows(arch):
        value = torch.randn(shape, generator=gen)
        if name.endswith(("norm.weight", "norm_xca.weight", ".0.1.weight", "temperature")) or (
            name.startswith("downsample_layers") and name.endswith(".0.weight") and len(shape) == 1
        ):
            value = 1.0 + 0.1 * value  # LayerNorm scales and temperatures around 1
        elif name.endswith(("gamma", "gamma_xca")):
            value = 0.3 * value.abs() + 0.05  # layer scale large enough to matter
        else:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod())) if len(shape) > 1 else 1
            value = value / fan_in**0.5 if len(shape) > 1 else 0.02 * value
        state[name] = value
    return state


def to_layout(state: Dict[str, torch.Tensor], arch: str, fmt: str) -> Dict[str, torch.Tensor]:
    """Rename official-name tensors to ``fmt``'s names using the table."""
    column = {"official": 0, "timm": 1, "mmpretrain": 2}[fmt]
    return {row[column]: state[row[0]] for row in layout_rows(arch)}


def wrap(state: Dict[str, torch.Tensor], fmt: str, usi: bool = False) -> dict:
    """Wrap tensors as the source distributes them."""
    if fmt == "timm":
        return dict(state)
    if fmt == "mmpretrain":
        return {"meta": {"mmpretrain_version": "1.0.0rc1"}, "state_dict": dict(state)}
    if usi:
        return {"state_dict": dict(state)}
    # official training checkpoints: EMA weights beside the raw ones, optimizer state, epoch
    noisy = {k: v + 1.0 for k, v in state.items()}
    return {"model": noisy, "model_ema": dict(state), "epoch": 299, "max_accuracy": 71.2}


def write_checkpoint(
    path: Path, arch: str, fmt: str, seed: int = 0, usi: bool = False
) -> Dict[str, torch.Tensor]:
    """Write a synthetic checkpoint; returns its tensors under official names."""
    state = random_official_state(arch, seed)
    torch.save(wrap(to_layout(state, arch, fmt), fmt, usi=usi), path)
    return state
