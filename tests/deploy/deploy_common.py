"""What the deployment tests share: the small configs and generated images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgenext_dense.datasets.synthetic import render_scene

REPO = Path(__file__).resolve().parents[2]
DET_CONFIG = REPO / "configs/det/ssdlite_edgenext-xxs_1xb16-16e_shapes-256.py"
SEG_CONFIG = REPO / "configs/seg/deeplabv3_edgenext-xxs_4xb32-50e_voc12aug-512.py"


def scene_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A generated shapes scene as BGR uint8."""
    return np.ascontiguousarray(render_scene(np.random.default_rng(seed), (height, width)).image)


def rel_err(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(got - expected).max() / np.abs(expected).max())
