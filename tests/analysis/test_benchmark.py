"""tools/analysis/benchmark.py: one table of latency, throughput and memory per model and runtime.

Tiny runs (EdgeNeXt-XXS, 64x64 inputs, 2 timed calls): the checks are on the table's shape and
the sanity of its numbers, never on timings.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from unittest.mock import Mock

import pytest
import torch
from text_tables import table_cells
from tool_runner import load_tool

from edgenext_dense.analysis.benchmark import (
    backbone_target,
    build_deploy,
    config_target,
    reference_targets,
    run_benchmark,
    time_pytorch,
)
from edgenext_dense.analysis.benchmark_report import format_table, ratios
from edgenext_dense.analysis.mmpretrain_reference import mmpretrain_available

REPO = Path(__file__).resolve().parents[2]
DET_CONFIG = REPO / "configs/det/ssdlite_edgenext-xxs_1xb16-16e_shapes-256.py"
SEG_CONFIG = REPO / "configs/seg/deeplabv3_edgenext-xxs_1xb8-1k_shapesvoc-192.py"
HEADER = ["model", "runtime", "input", "threads", "median ms", "min ms", "max ms", "img/s"]
HEADER += ["peak mem MB", "spread", "vs eager", "vs eager (min)"]


def main(argv: list) -> int:
    """``tools/analysis/benchmark.py``'s ``main`` (``tools/`` is not a package)."""
    return load_tool("tools/analysis/benchmark.py").main(argv)


def _check_sane(row: dict, batch_size: int = 1) -> None:
    assert 0 < row["min_ms"] <= row["median_ms"] <= row["max_ms"], row
    # images_per_s is rounded to 0.01 in the row
    expected = 1e3 * batch_size / row["median_ms"]
    assert math.isclose(row["images_per_s"], expected, rel_tol=0.01, abs_tol=0.006), row


def test_one_row_per_model_and_runtime_with_sane_numbers() -> None:
    target = backbone_target("xx_small", (64, 64))
    measurements = run_benchmark([target], runs=2, warmup=1, isolate=False)
    assert [(m.target.name, m.runtime) for m in measurements] == [
        ("EdgeNeXt-XXS backbone", "pytorch"),
        ("EdgeNeXt-XXS backbone", "onnxruntime"),
    ]
    for m in measurements:
        row = m.row()
        assert row["input"] == "1x3x64x64" and row["threads"] == 2 and row["runs"] == 2
        _check_sane(row)
    (speedup,) = ratios(measurements)
    assert speedup["kind"] == "onnxruntime_speedup"
    assert math.isclose(
        speedup["ratio"], measurements[0].median_ms / measurements[1].median_ms, rel_tol=1e-2
    )

    header, (eager, ort) = table_cells(format_table(measurements), "model")
    assert header == HEADER
    assert eager[:2] == ["EdgeNeXt-XXS backbone", "pytorch"] and eager[-2:] == ["1.00x"] * 2
    assert ort[:2] == ["EdgeNeXt-XXS backbone", "onnxruntime"]
    assert all(c.endswith("x") for c in ort[-2:])


@pytest.mark.parametrize("amp, dtype", [(False, torch.float32), (True, torch.bfloat16)])
def test_amp_runtime_runs_the_convolutions_in_reduced_precision(amp, dtype) -> None:
    deploy = build_deploy(backbone_target("xx_small", (64, 64)))
    seen = []
    stem = deploy.graph.backbone.downsample_layers[0][0]
    stem.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    result = time_pytorch(deploy, batch_size=1, threads=2, warmup=0, runs=2, amp=amp)
    assert len(result["times_ms"]) == 2 and seen == [dtype, dtype]
    # weights stay float32: autocast casts per op, as in mixed-precision serving
    assert stem.weight.dtype == torch.float32


def test_amp_runtime_is_a_row_with_its_speedup_over_eager() -> None:
    target = backbone_target("xx_small", (64, 64))
    measurements = run_benchmark(
        [target], runtimes=("pytorch", "pytorch-amp"), runs=2, warmup=1, isolate=False
    )
    assert [m.runtime for m in measurements] == ["pytorch", "pytorch-amp"]
    (speedup,) = ratios(measurements)
    assert speedup["kind"] == "pytorch-amp_speedup" and speedup["ratio"] > 0
    assert "pytorch-amp" in format_table(measurements)


def test_command_line_writes_json_and_markdown(tmp_path, capsys) -> None:
    out_json, out_md = tmp_path / "bench.json", tmp_path / "bench.md"
    code = main(
        [
            "--backbone", "xx_small", "--shape", "64", "64", "--runs", "2", "--warmup", "1",
            "--rounds", "2", "--no-isolate", "--json", str(out_json), "--markdown", str(out_md),
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "median ms" in printed and "onnxruntime" in printed

    report = json.loads(out_json.read_text())
    assert report["settings"]["threads"] == 2 and report["settings"]["rounds"] == 2
    assert report["machine"]["logical_cpus"] >= 1 and report["machine"]["onnxruntime"]
    rows = report["results"]
    assert [r["runtime"] for r in rows] == ["pytorch", "onnxruntime"]
    for row in rows:
        _check_sane(row)
        assert row["runs"] == 4 and len(row["round_medians_ms"]) == 2
        assert row["spread"] is not None and row["spread"] >= 0

    markdown = out_md.read_text()
    header, rows = table_cells(markdown, "model")
    assert header == HEADER and set(markdown.splitlines()[1]) <= set("|:- ")  # delimiter row
    assert [r[:2] for r in rows] == [
        ["EdgeNeXt-XXS backbone", rt] for rt in ("pytorch", "onnxruntime")
    ]
    assert "logical CPUs" in markdown


@pytest.mark.slow
def test_isolated_processes_report_each_runtimes_own_peak_memory(tmp_path) -> None:
    out_json = tmp_path / "bench.json"
    args = ["--backbone", "xx_small", "--shape", "64", "64", "--runs", "2", "--warmup", "1"]
    assert main([*args, "--json", str(out_json)]) == 0
    eager, ort = json.loads(out_json.read_text())["results"]
    for row in (eager, ort):
        _check_sane(row)
        assert 0 < row["rss_before_mb"] <= row["peak_memory_mb"] < 64_000
    # the ONNX Runtime process loads neither torch nor the OpenMMLab stack
    assert ort["peak_memory_mb"] < eager["rss_before_mb"]


@pytest.mark.slow
def test_openvino_and_static_int8_runtimes_sit_beside_onnx_runtime(tmp_path) -> None:
    """Each exported runtime in its own process, with its ratio to ONNX Runtime float32."""
    pytest.importorskip("openvino")
    runtimes = ["onnxruntime", "openvino", "openvino-int8", "onnxruntime-int8-static"]
    target = backbone_target("xx_small", (64, 64))
    measurements = run_benchmark([target], runtimes, runs=2, warmup=1, work_dir=str(tmp_path))
    assert [m.runtime for m in measurements] == runtimes
    for m in measurements:
        _check_sane(m.row())
        assert 0 < m.rss_before_mb <= m.peak_memory_mb
    beside = {r["runtime"]: r for r in ratios(measurements) if r["kind"] == "vs_onnxruntime"}
    assert sorted(beside) == sorted(runtimes[1:])
    ort, ov = measurements[0], measurements[1]
    assert beside["openvino"]["ratio"] == pytest.approx(ort.median_ms / ov.median_ms, rel=1e-2)
    assert "openvino-int8 vs onnxruntime float32" in format_table(measurements)
    # the static int8 file was written once and is shared by both int8 runtimes
    assert len(list(tmp_path.glob("*_int8_static.onnx"))) == 1


@pytest.mark.slow
def test_compare_adds_the_mmdet_and_mmseg_references_with_ratios() -> None:
    ours = [config_target(str(DET_CONFIG), (64, 64)), config_target(str(SEG_CONFIG), (64, 64))]
    refs = reference_targets(ours)
    assert [(r.name, r.group, r.input_size) for r in refs] == [
        ("SSDLite MobileNetV2 (mmdet)", "det", (64, 64)),
        ("DeepLabv3 MobileNetV2-D8 (mmseg)", "seg", (64, 64)),
    ]
    measurements = run_benchmark([*ours, *refs], runs=2, warmup=1, isolate=False)
    assert len(measurements) == 8
    for m in measurements:
        _check_sane(m.row())
    compared = [r for r in ratios(measurements) if r["kind"] == "ours_vs_reference"]
    assert {(r["reference"], r["runtime"]) for r in compared} == {
        (ref.name, runtime) for ref in refs for runtime in ("pytorch", "onnxruntime")
    }
    assert all(r["ratio"] > 0 for r in compared)
    assert "vs DeepLabv3 MobileNetV2-D8 (mmseg) (onnxruntime)" in format_table(measurements)


@pytest.mark.skipif(
    not mmpretrain_available() and not os.environ.get("CI"),
    reason="the reference (mmpretrain 1.2.0, installed --no-deps by tools/setup.sh) is absent",
)
def test_compare_sets_each_backbone_beside_mmpretrains(capsys) -> None:
    code = main(
        [
            "--backbone", "xx_small", "--shape", "64", "64", "--runs", "2", "--warmup", "1",
            "--compare", "--no-isolate", "--runtimes", "pytorch",
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert ["EdgeNeXt-XXS (mmpretrain)", "pytorch"] in [
        r[:2] for r in table_cells(printed, "model")[1]
    ]
    assert "EdgeNeXt-XXS backbone vs EdgeNeXt-XXS (mmpretrain) (pytorch)" in printed
    # the reference is the same network: same parameter count as ours
    ours = build_deploy(backbone_target("xx_small")).graph
    (ref_target,) = reference_targets([backbone_target("xx_small")])
    ref = build_deploy(ref_target).graph
    assert ref_target.kind == "mmpretrain" and ref_target.group == "backbone:xx_small"
    assert type(ref.backbone).__module__ == "mmpretrain.models.backbones.edgenext"
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(ref)
    # the stubs mmpretrain's import needed are gone again
    assert "torchvision" not in sys.modules or not isinstance(sys.modules["torchvision"], Mock)


def test_compare_without_mmpretrain_says_how_to_install_it(monkeypatch) -> None:
    import edgenext_dense.analysis.mmpretrain_reference as reference

    monkeypatch.setattr(reference, "mmpretrain_available", lambda: False)
    with pytest.raises(ValueError, match="pip install --no-deps mmpretrain"):
        reference_targets([backbone_target("small")])
    with pytest.raises(ImportError, match="pip install --no-deps mmpretrain"):
        reference.build_mmpretrain_edgenext("small")


def test_compare_without_a_model_and_an_empty_run_are_refused(capsys) -> None:
    with pytest.raises(ValueError, match="--compare needs a backbone or a detection"):
        reference_targets([])
    with pytest.raises(SystemExit):
        main([])
    assert "give at least one config or --backbone" in capsys.readouterr().err
