"""tools/analysis/train_benchmark.py: metrics per validation, training images/s, --compare.

The pure parts (rows, throughput, tables, JSON, the interleaved timing) run on synthetic
histories; the command line trains the shapes demo configs for a few iterations on a tiny
generated dataset, in a subprocess as a user runs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
from mmengine.config import Config
from text_tables import table_cells

from edgenext_dense.analysis.train_benchmark import (
    TrainBenchmarkReport,
    build_train_model,
    evaluation_rows,
    format_report,
    load_report,
    reference_config,
    run_train_benchmark,
    save_report,
    throughput,
    time_interleaved,
)
from edgenext_dense.datasets.synthetic import make_coco_shapes, make_voc_shapes

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools/analysis/train_benchmark.py"
DET_CONFIG = REPO / "configs/det/ssdlite_edgenext-xxs_1xb16-16e_shapes-256.py"
SEG_CONFIG = REPO / "configs/seg/deeplabv3_edgenext-xxs_1xb8-1k_shapesvoc-192.py"
DET_METRICS = ("coco/bbox_mAP_50", "coco/bbox_mAP", "coco/bbox_mAP_75")
SEG_METRICS = ("mIoU", "mAcc", "aAcc")
# Single-process loading and batch 2, whatever the demo configs say.
LOADER_OPTIONS = [
    "train_dataloader.batch_size=2",
    "train_dataloader.num_workers=0",
    "train_dataloader.persistent_workers=False",
    "val_dataloader.batch_size=1",
    "val_dataloader.num_workers=0",
    "val_dataloader.persistent_workers=False",
]


# --------------------------------------------------------------------------- pure functions
HISTORY = [
    # out of order on purpose; 'coco/bbox_mAP_s' is not a key metric
    dict(
        iter=4,
        epoch=2,
        metrics={"coco/bbox_mAP": 0.2, "coco/bbox_mAP_50": 0.5, "coco/bbox_mAP_75": 0.15},
    ),
    dict(iter=2, epoch=1, metrics={"coco/bbox_mAP": 0.1, "coco/bbox_mAP_s": 0.05}),
]


def test_rows_have_cumulative_seconds_and_images_seen() -> None:
    rows = evaluation_rows(HISTORY, [1.0, 0.5, 0.25, 0.25], images_per_iter=6)
    assert [r["iter"] for r in rows] == [2, 4]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["images_seen"] for r in rows] == [12, 24]
    assert [r["train_seconds"] for r in rows] == [1.5, 2.0]
    assert rows[0]["metrics"] == {"coco/bbox_mAP": 0.1, "coco/bbox_mAP_s": 0.05}


def test_rows_without_epochs_or_timings() -> None:
    # iteration-based loop: no epoch; iteration 4 was never timed; a buffer that lost its
    # beginning cannot give cumulative seconds at all
    rows = evaluation_rows(HISTORY, [1.0, 1.0, 1.0], images_per_iter=2, by_epoch=False)
    assert [r["epoch"] for r in rows] == [None, None]
    assert [r["train_seconds"] for r in rows] == [2.0, None]
    rows = evaluation_rows(HISTORY, [1.0, 1.0], images_per_iter=2, first_iter=3)
    assert [r["train_seconds"] for r in rows] == [None, None]


def test_throughput_skips_warmup_and_takes_the_median() -> None:
    # a slow first iteration (workers starting) and one slow outlier do not count
    result = throughput([9.0, 0.5, 0.4, 3.0, 0.5], images_per_iter=8, warmup=1)
    assert result == dict(images_per_s=16.0, median_iter_s=0.5, warmup_skipped=1, timed_iters=4)
    # fewer iterations than the warm-up: the last one is still timed
    assert throughput([9.0, 2.0], 4, warmup=5)["warmup_skipped"] == 1
    assert throughput([9.0, 2.0], 4, warmup=5)["images_per_s"] == 2.0
    assert throughput([], 4)["images_per_s"] is None
    with pytest.raises(ValueError, match="warmup must be 0 or more"):
        throughput([1.0], 4, warmup=-1)


def _report(task: str, history: List[dict], by_epoch: bool) -> TrainBenchmarkReport:
    times = [2.0, 1.0, 1.0, 1.0]
    return TrainBenchmarkReport(
        config=f"configs/{task}/x.py",
        task=task,
        work_dir="work_dirs/train_benchmark/x",
        batch_size=2,
        world_size=1,
        iterations=4,
        val_interval=2,
        wall_seconds=12.5,
        **throughput(times, 2, warmup=1),
        load_before=[1.5, 1.25, 1.0],
        load_after=[2.0, 1.5, 1.0],
        evaluations=evaluation_rows(history, times, 2, by_epoch=by_epoch),
    )


def test_det_table_has_the_coco_columns_and_epochs() -> None:
    text = format_report(_report("det", HISTORY, by_epoch=True))
    header, rows = table_cells(text, "iter")
    assert header == ["iter", "epoch", "images", "train s", *DET_METRICS]
    assert rows == [
        ["2", "1", "4", "3.0", "-", "0.1000", "-"],
        ["4", "2", "8", "5.0", "0.5000", "0.2000", "0.1500"],
    ]
    assert "coco/bbox_mAP_s" not in text  # not a key metric: JSON only
    assert "coco/bbox_mAP: IoU .5:.95" in text
    assert "2.00 images/s (median 1.000 s/iter over 3 iterations; first 1 skipped" in text
    assert "1.50 1.25 1.00 before, 2.00 1.50 1.00 after" in text


def test_seg_table_has_the_mmseg_columns_and_no_epoch() -> None:
    history = [dict(iter=4, epoch=0, metrics={"aAcc": 80.0, "mIoU": 41.234, "mAcc": 52.5})]
    header, rows = table_cells(format_report(_report("seg", history, by_epoch=False)), "iter")
    assert header == ["iter", "images", "train s", *SEG_METRICS]
    assert rows == [["4", "8", "5.0", "41.23", "52.50", "80.00"]]


def test_json_round_trip(tmp_path: Path) -> None:
    report = _report("det", HISTORY, by_epoch=True)
    report.compare = [dict(model="EdgeNeXt (ours)", images_per_s=3.0)]
    report.compare_ratio = 1.5
    path = tmp_path / "sub" / "report.json"
    save_report(report, str(path))
    assert load_report(str(path)) == report
    data = json.loads(path.read_text())
    assert data["evaluations"][0]["metrics"]["coco/bbox_mAP_s"] == 0.05
    assert data["warmup_skipped"] == 1 and data["load_before"] == [1.5, 1.25, 1.0]


def test_steps_alternate_on_private_copies_of_the_same_batches() -> None:
    calls = []

    def step(name: str):
        def run(batch: dict) -> None:
            calls.append((name, batch["id"]))
            batch["id"] = "overwritten"  # as data preprocessors write into data samples

        return run

    batches = [dict(id=i) for i in range(3)]
    times = time_interleaved([step("ours"), step("ref")], batches, warmup=2)
    assert calls[:4] == [("ours", 0), ("ours", 1), ("ref", 0), ("ref", 1)]
    assert calls[4:] == [(m, i) for i in range(3) for m in ("ours", "ref")]
    assert [len(t) for t in times] == [3, 3] and all(s >= 0 for t in times for s in t)
    assert [b["id"] for b in batches] == [0, 1, 2]


# --------------------------------------------------------------------------- the reference
def test_reference_takes_our_classes_and_crop_size() -> None:
    det = Config.fromfile(str(DET_CONFIG))
    ref = reference_config(det, "det")
    assert ref.model.backbone.type == "MobileNetV2"
    assert ref.model.bbox_head.num_classes == det.model.bbox_head.num_classes == 5
    seg = Config.fromfile(str(SEG_CONFIG))
    ref = reference_config(seg, "seg")
    assert ref.model.decode_head.num_classes == seg.model.decode_head.num_classes
    assert ref.model.auxiliary_head.num_classes == seg.model.decode_head.num_classes
    assert tuple(ref.model.data_preprocessor.size) == tuple(seg.model.data_preprocessor.size)
    assert ref.optim_wrapper.optimizer.type == "SGD"  # its own optimizer, not ours


def test_reference_segmentor_builds_without_syncbn_or_download() -> None:
    ref = reference_config(Config.fromfile(str(SEG_CONFIG)), "seg")
    model, optim_wrapper = build_train_model(ref)
    assert model.training
    assert not any("SyncBatchNorm" in type(m).__name__ for m in model.modules())
    assert type(optim_wrapper.optimizer).__name__ == "SGD"


# --------------------------------------------------------------------------- command line
def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, str(TOOL), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("train_benchmark")
    coco = make_coco_shapes(root / "shapes_coco", num_train=4, num_val=2, img_size=96, seed=0)
    voc = make_voc_shapes(root / "shapes_voc", num_train=4, num_val=2, img_size=96, seed=0)
    return dict(root=root, coco=coco["out_dir"] + "/", voc=voc["data_root"])


def _det_options(coco_root: str) -> List[str]:
    ann = coco_root + "annotations/instances_val2017.json"
    return [
        f"train_dataloader.dataset.data_root={coco_root}",
        f"val_dataloader.dataset.data_root={coco_root}",
        f"val_evaluator.ann_file={ann}",
        "train_cfg.max_epochs=2",
        *LOADER_OPTIONS,
    ]


def _metric_row(stdout: str, metrics: tuple) -> List[List[str]]:
    """The rows of the validation table, checking its header names every metric."""
    header, rows = table_cells(stdout, "iter")
    assert all(m in header for m in metrics), header
    return rows


@pytest.mark.slow
def test_det_cli_reports_each_epoch_and_images_per_second(data, shapes_pretrained) -> None:
    out = data["root"] / "det.json"
    proc = _run(
        str(DET_CONFIG), "--work-dir", str(data["root"] / "work_det"), "--val-interval", "1",
        "--warmup-iters", "1", "--json", str(out),
        "--cfg-options", *_det_options(data["coco"]),
        f"model.backbone.init_cfg.checkpoint={shapes_pretrained}",
        cwd=data["root"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 4 images, batch 2: 2 iterations per epoch, validated after each of the 2 epochs
    rows = _metric_row(proc.stdout, DET_METRICS)
    assert [r[:3] for r in rows] == [["2", "1", "4"], ["4", "2", "8"]]
    speed = re.search(r"Throughput: ([\d.]+) images/s .*first 1 skipped", proc.stdout)
    assert speed and float(speed.group(1)) > 0
    assert re.search(r"Load average \(1/5/15 min\): [\d. ]+ before, [\d. ]+ after", proc.stdout)
    report = json.loads(out.read_text())
    assert report["task"] == "det" and report["batch_size"] == 2 and report["iterations"] == 4
    assert report["images_per_s"] > 0 and report["wall_seconds"] > 0
    assert "coco/bbox_mAP_s" in report["evaluations"][0]["metrics"]  # all metrics in the JSON
    assert report["compare"] == []


@pytest.mark.slow
def test_seg_cli_validates_by_iteration_and_compares_with_mmseg(data, shapes_pretrained) -> None:
    out = data["root"] / "seg.json"
    root = data["voc"]
    proc = _run(
        str(SEG_CONFIG), "--work-dir", str(data["root"] / "work_seg"), "--val-interval", "2",
        "--compare", "--compare-iters", "2", "--json", str(out),
        "--cfg-options", f"train_dataloader.dataset.data_root={root}",
        f"val_dataloader.dataset.data_root={root}", "train_cfg.max_iters=3", *LOADER_OPTIONS,
        f"model.backbone.init_cfg.checkpoint={shapes_pretrained}",
        cwd=data["root"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    # validated at iteration 2 (the interval) and 3 (the end); no epoch column
    rows = _metric_row(proc.stdout, SEG_METRICS)
    assert [r[:2] for r in rows] == [["2", "4"], ["3", "6"]]
    assert "EdgeNeXt (ours)" in proc.stdout and "MobileNetV2 (reference)" in proc.stdout
    assert re.search(r"images/s ours / reference: [\d.]+x", proc.stdout)
    report = json.loads(out.read_text())
    assert [r["epoch"] for r in report["evaluations"]] == [None, None]
    assert [r["steps"] for r in report["compare"]] == [2, 2]
    assert report["compare"][1]["config"].startswith("mmseg::mobilenet_v2/")
    assert report["compare_ratio"] == pytest.approx(
        report["compare"][0]["images_per_s"] / report["compare"][1]["images_per_s"]
    )


# --------------------------------------------------------------------------- bad input
@pytest.mark.slow
def test_missing_config_is_an_error(tmp_path: Path) -> None:
    proc = _run(str(tmp_path / "nope.py"), cwd=tmp_path)
    assert proc.returncode != 0
    assert "train_benchmark.py: error:" in proc.stderr
    assert f"{tmp_path / 'nope.py'} does not exist" in proc.stderr


@pytest.mark.slow
def test_missing_dataset_is_named_before_training(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_data"
    proc = _run(
        str(DET_CONFIG), "--work-dir", str(tmp_path / "work"),
        "--cfg-options", f"train_dataloader.dataset.data_root={missing}/",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "train_benchmark.py: error: dataset path(s) not found" in proc.stderr
    assert f"{missing}/   (train_dataloader" in proc.stderr
    assert "Training benchmark" not in proc.stdout


@pytest.mark.parametrize("value", ["0", "-3"])
@pytest.mark.slow
def test_val_interval_below_one_is_rejected(tmp_path: Path, value: str) -> None:
    proc = _run(str(DET_CONFIG), "--val-interval", value, cwd=tmp_path)
    assert proc.returncode == 2
    assert f"--val-interval: must be at least 1, got {value}" in proc.stderr


def test_library_rejects_val_interval_below_one() -> None:
    with pytest.raises(ValueError, match="val_interval must be at least 1, got 0"):
        run_train_benchmark(str(DET_CONFIG), val_interval=0)
