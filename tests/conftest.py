"""Shared fixtures: synthetic checkpoints of every architecture in every public layout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # tests/checkpoint_factory.py

from checkpoint_factory import write_checkpoint  # noqa: E402

import edgenext_dense  # noqa: E402,F401  (registers modules, applies stack workarounds)

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root (tools/ and configs/ live there)."""
    return REPO


@pytest.fixture(scope="session")
def synthetic_checkpoints(tmp_path_factory):
    """``(arch, fmt) -> (path, official_state)`` for every arch and layout, built on demand."""
    root = tmp_path_factory.mktemp("ckpts")
    cache = {}

    def get(arch: str, fmt: str, usi: bool = False, seed: int = 0):
        key = (arch, fmt, usi, seed)
        if key not in cache:
            path = root / f"{arch}_{fmt}{'_usi' if usi else ''}_{seed}.pth"
            cache[key] = (path, write_checkpoint(path, arch, fmt, seed=seed, usi=usi))
        return cache[key]

    return get


@pytest.fixture(scope="session")
def shapes_pretrained(tmp_path_factory) -> Path:
    """A (barely trained) shapes classifier in the published layout, as
    ``tools/pretrain_shapes.py`` writes it: what the shapes demo configs initialise from."""
    from edgenext_dense.apis.shapes_pretrain import pretrain_shapes_classifier

    path = tmp_path_factory.mktemp("shapes_pretrained") / "edgenext_xx_small_shapes.pth"
    pretrain_shapes_classifier(
        path, iters=1, batch_size=2, img_size=32, num_train=1, num_val=1, log=None
    )
    return path
