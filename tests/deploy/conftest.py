"""Shared by the deployment tests: random-weight checkpoints of the small configs, exported once."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_common import DET_CONFIG, SEG_CONFIG
from trained_like import random_checkpoint

from edgenext_dense.datasets.synthetic import SHAPE_CLASSES
from edgenext_dense.deploy.export import export_onnx, main
from edgenext_dense.deploy.graphs import load_deploy_model


@pytest.fixture(scope="session")
def det_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("det") / "epoch_8.pth"
    return random_checkpoint(DET_CONFIG, "det", path, SHAPE_CLASSES, seed=0)


@pytest.fixture(scope="session")
def det_onnx(det_checkpoint, tmp_path_factory) -> Path:
    """Exported with the command line, dynamic batch."""
    out = tmp_path_factory.mktemp("det_onnx") / "ssdlite.onnx"
    code = main([str(DET_CONFIG), str(det_checkpoint), "--out", str(out), "--dynamic-batch"])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def seg_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seg") / "iter_1.pth"
    return random_checkpoint(SEG_CONFIG, "seg", path, [f"c{i}" for i in range(21)], seed=1)


@pytest.fixture(scope="session")
def seg_export(seg_checkpoint, tmp_path_factory):
    deploy = load_deploy_model(str(SEG_CONFIG), str(seg_checkpoint), input_size=(96, 128))
    out = export_onnx(deploy, tmp_path_factory.mktemp("seg_onnx") / "deeplabv3.onnx")
    return deploy, out
