"""tools/analysis/get_flops.py counts what the built model holds, for det and seg configs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config
from text_tables import table_cells

import edgenext_dense  # noqa: F401
from edgenext_dense.analysis.flops import default_input_shape, model_complexity
from edgenext_dense.engine.config import build_model_without_init

REPO = Path(__file__).resolve().parents[2]
DET_CONFIG = REPO / "configs/det/ssdlite_edgenext-xxs_4xb32-200e_coco-320.py"
SEG_CONFIG = REPO / "configs/seg/deeplabv3_edgenext-xxs_4xb32-50e_voc12aug-512.py"


def load(path: Path) -> Config:
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.init_cfg = None
    return cfg


@pytest.mark.slow
def test_get_flops_script_prints_params_of_the_built_model() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools/analysis/get_flops.py"), str(DET_CONFIG)]
        + ["--shape", "128", "160"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    params = int(re.search(r"Params:\s+([\d,]+)", proc.stdout).group(1).replace(",", ""))
    model = build_model_without_init(load(DET_CONFIG))
    assert params == sum(p.numel() for p in model.parameters())
    assert "Input:    1x3x128x160 (--shape)" in proc.stdout
    flops = re.search(r"FLOPs \(multiply-adds\): ([\d,]+) \(([\d.]+) G\)", proc.stdout)
    assert flops and int(flops.group(1).replace(",", "")) > 0
    assert "one multiply-add as one FLOP" in proc.stdout
    header, rows = table_cells(proc.stdout, "component")
    assert header == ["component", "params (M)", "FLOPs (G)"] and rows[0][0] == "backbone"


@pytest.mark.parametrize("path, task", [(DET_CONFIG, "det"), (SEG_CONFIG, "seg")])
def test_complexity_parts_add_up(path: Path, task: str) -> None:
    cfg = load(path)
    result = model_complexity(cfg, task, shape=(64, 96))
    model = build_model_without_init(cfg)
    assert result.params == sum(p.numel() for p in model.parameters())
    assert sum(p for p, _ in result.by_component.values()) == result.params
    assert sum(f for _, f in result.by_component.values()) == result.flops
    assert result.by_component["backbone"][1] > 0


def test_auxiliary_head_is_not_counted() -> None:
    cfg = load(SEG_CONFIG)
    plain = model_complexity(cfg, "seg", shape=(64, 64))
    cfg.model.auxiliary_head = dict(
        type="FCNHead", in_channels=168, channels=32, num_classes=21, in_index=0
    )
    with_aux = model_complexity(cfg, "seg", shape=(64, 64))
    assert with_aux.params == plain.params
    assert any("auxiliary head" in note for note in with_aux.notes)


def test_default_shape_from_test_pipeline() -> None:
    assert default_input_shape(load(DET_CONFIG), "det")[0] == (320, 320)
    # mmseg's VOC test resize keeps the ratio at a 512 short side
    assert default_input_shape(load(SEG_CONFIG), "seg")[0] == (512, 512)
    assert default_input_shape(Config(dict()), "seg") == ((512, 512), "default for seg")
