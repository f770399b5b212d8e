"""The training benchmark's report: rows per validation, throughput, tables and JSON.

Pure functions over what :mod:`edgenext_dense.analysis.train_benchmark` measured (a validation
history and per-iteration times), so they can be read and tested without training.
"""

from __future__ import annotations

import dataclasses
import json
import os
import os.path as osp
import statistics
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from prettytable import PrettyTable

# The metrics shown in the table, in this order; every scalar metric goes to the JSON.
KEY_METRICS: Dict[str, Tuple[str, ...]] = {
    "det": ("coco/bbox_mAP_50", "coco/bbox_mAP", "coco/bbox_mAP_75"),
    "seg": ("mIoU", "mAcc", "aAcc"),
}
METRIC_NOTES: Dict[str, str] = {
    "coco/bbox_mAP_50": "IoU 0.5",
    "coco/bbox_mAP": "IoU .5:.95",
    "coco/bbox_mAP_75": "IoU 0.75",
    "mIoU": "mean IoU, %",
    "mAcc": "mean class accuracy, %",
    "aAcc": "pixel accuracy, %",
}
# Decimals of the metric columns: COCO mAPs are fractions, mmseg's metrics percentages.
METRIC_DECIMALS: Dict[str, int] = {"det": 4, "seg": 2}
DEFAULT_WARMUP_ITERS = 5
COMPARE_WARMUP_STEPS = 2  # untimed train steps per model before the timed comparison


@dataclasses.dataclass
class TrainBenchmarkReport:
    """Everything one benchmark run measured (JSON-ready with :func:`save_report`).

    Args:
        config (str): The config file.
        task (str): ``'det'`` or ``'seg'``.
        work_dir (str): Where the run wrote logs, checkpoints and ``curves.png``.
        batch_size (int): Training images per iteration and process.
        world_size (int): Training processes.
        iterations (int): Training iterations run.
        val_interval (int, optional): ``train_cfg.val_interval`` of the run (epochs for
            epoch-based loops, iterations for iteration-based ones).
        wall_seconds (float): Wall clock of the training run (building the runner, training,
            validating, saving checkpoints), not of the comparison.
        images_per_s (float, optional): Training throughput at the median iteration time.
        median_iter_s (float, optional): Median iteration time after the warm-up.
        warmup_skipped (int): Iterations left out of the median as warm-up.
        timed_iters (int): Iterations the median is taken over.
        load_before (list[float]): ``os.getloadavg()`` (1, 5, 15 min) before the run.
        load_after (list[float]): The same after the run (and the comparison).
        evaluations (list[dict]): From :func:`evaluation_rows`.
        compare (list[dict]): From :func:`compare_throughput`; empty without ``--compare``.
        compare_ratio (float, optional): Our training images/s over the reference's.
        machine (dict): CPU, library versions (see
            :func:`edgenext_dense.analysis.report.machine_info`).
    """

    config: str
    task: str
    work_dir: str
    batch_size: int
    world_size: int
    iterations: int
    val_interval: Optional[int]
    wall_seconds: float
    images_per_s: Optional[float]
    median_iter_s: Optional[float]
    warmup_skipped: int
    timed_iters: int
    load_before: List[float]
    load_after: List[float]
    evaluations: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    compare: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    compare_ratio: Optional[float] = None
    machine: Dict[str, Any] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------- pure functions
def evaluation_rows(
    history: Sequence[Mapping[str, Any]],
    iter_times: Sequence[float],
    images_per_iter: int,
    by_epoch: bool = True,
    first_iter: int = 1,
) -> List[Dict[str, Any]]:
    """One row per validation: where training was, what it had cost, what it scored.

    Args:
        history (Sequence[Mapping]): ``TrainingCurvesHook``'s validation history, records of
            ``dict(iter=..., epoch=..., metrics={name: float})``.
        iter_times (Sequence[float]): Seconds of each training iteration (``train/time``).
        images_per_iter (int): Batch size x world size.
        by_epoch (bool): Whether the loop counts epochs; otherwise the rows' epoch is None.
            Defaults to True.
        first_iter (int): The iteration ``iter_times[0]`` belongs to (1 unless the buffer lost
            its beginning); when above 1, cumulative seconds are unknown (None).
            Defaults to 1.

    Returns:
        list[dict]: ``iter``, ``epoch``, ``images_seen``, ``train_seconds`` (training time up
        to and including that iteration, None when not all of it was timed) and ``metrics``
        (all of the record's metrics), in iteration order.
    """
    cumulative = np.cumsum(np.asarray(iter_times, dtype=float))
    rows = []
    for record in sorted(history, key=lambda r: int(r["iter"])):
        iteration = int(record["iter"])
        timed = first_iter == 1 and 1 <= iteration <= len(cumulative)
        epoch = record.get("epoch")
        rows.append(
            dict(
                iter=iteration,
                epoch=int(epoch) if by_epoch and epoch is not None else None,
                images_seen=iteration * images_per_iter,
                train_seconds=round(float(cumulative[iteration - 1]), 3) if timed else None,
                metrics={k: float(v) for k, v in record["metrics"].items()},
            )
        )
    return rows


def throughput(
    iter_times: Sequence[float], images_per_iter: int, warmup: int = DEFAULT_WARMUP_ITERS
) -> Dict[str, Any]:
    """Training images/second at the median iteration time, the first iterations left out.

    At least one iteration is always kept: with ``warmup`` or fewer iterations, all but the
    last are skipped.

    Args:
        iter_times (Sequence[float]): Seconds of each training iteration, in order.
        images_per_iter (int): Batch size x world size.
        warmup (int): Iterations to skip. Defaults to :data:`DEFAULT_WARMUP_ITERS`.

    Returns:
        dict: ``images_per_s`` and ``median_iter_s`` (None without any timed iteration),
        ``warmup_skipped`` and ``timed_iters``.

    Raises:
        ValueError: When ``warmup`` is negative.
    """
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or more iterations, got {warmup}")
    skipped = min(warmup, max(len(iter_times) - 1, 0))
    timed = [float(t) for t in iter_times[skipped:]]
    median = statistics.median(timed) if timed else None
    return dict(
        images_per_s=None if not median else images_per_iter / median,
        median_iter_s=median,
        warmup_skipped=skipped,
        timed_iters=len(timed),
    )


def compare_row(
    name: str, config: str, params: int, step_times: Sequence[float], images_per_step: int
) -> Dict[str, Any]:
    """Summarise the timed train steps of one model of the comparison.

    Args:
        name (str): Display name.
        config (str): Where the model's config came from.
        params (int): Its number of parameters.
        step_times (Sequence[float]): Seconds of each timed ``train_step``.
        images_per_step (int): Images in each batch.

    Returns:
        dict: ``model``, ``config``, ``params``, ``steps``, ``median_s``, ``min_s``,
        ``images_per_s`` (at the median) and the raw ``step_times``.
    """
    median = statistics.median(step_times)
    return dict(
        model=name,
        config=config,
        params=int(params),
        steps=len(step_times),
        median_s=median,
        min_s=min(step_times),
        images_per_s=images_per_step / median,
        step_times=[float(t) for t in step_times],
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    table = PrettyTable(headers, align="l")
    table.add_rows(rows)
    return table.get_string()


def _metric_cell(value: Any, decimals: int) -> str:
    return "-" if value is None else f"{float(value):.{decimals}f}"


def format_evaluations(rows: Sequence[Mapping[str, Any]], task: str) -> str:
    """The validation table: iteration, epoch, images seen, training seconds, key metrics.

    Args:
        rows (Sequence[Mapping]): From :func:`evaluation_rows`.
        task (str): ``'det'`` or ``'seg'``; picks the metric columns (:data:`KEY_METRICS`)
            among those the rows have.

    Returns:
        str: The table, then what the metric names mean; a line saying so when no validation
        ran.
    """
    if not rows:
        return "No validation ran (no val_dataloader/val_cfg, or val_interval > the run).\n"
    names = [m for m in KEY_METRICS.get(task, ()) if any(m in r["metrics"] for r in rows)]
    with_epoch = any(r.get("epoch") is not None for r in rows)
    headers = ["iter"] + (["epoch"] if with_epoch else []) + ["images", "train s"] + names
    decimals = METRIC_DECIMALS.get(task, 4)
    cells = []
    for r in rows:
        seconds = r.get("train_seconds")
        cells.append(
            [str(r["iter"])]
            + ([str(r["epoch"]) if r.get("epoch") is not None else "-"] if with_epoch else [])
            + [str(r["images_seen"]), "-" if seconds is None else f"{seconds:.1f}"]
            + [_metric_cell(r["metrics"].get(m), decimals) for m in names]
        )
    notes = "; ".join(f"{m}: {METRIC_NOTES[m]}" for m in names if m in METRIC_NOTES)
    lines = [
        _table(headers, cells),
        "train s: training seconds up to that iteration (data + step, no validation)",
    ]
    if notes:
        lines.append(f"({notes})")
    return "\n".join(lines) + "\n"


def format_compare(rows: Sequence[Mapping[str, Any]], ratio: Optional[float]) -> str:
    """The comparison table and the throughput ratio.

    Args:
        rows (Sequence[Mapping]): From :func:`compare_throughput` (ours first).
        ratio (float, optional): Our images/s over the reference's.

    Returns:
        str: The text; empty without rows.
    """
    if not rows:
        return ""
    headers = ["model", "params (M)", "median s/iter", "min s/iter", "images/s", "config"]
    cells = [
        [
            r["model"],
            f"{r['params'] / 1e6:.2f}",
            f"{r['median_s']:.3f}",
            f"{r['min_s']:.3f}",
            f"{r['images_per_s']:.1f}",
            r["config"],
        ]
        for r in rows
    ]
    steps = rows[0]["steps"]
    lines = [
        f"Train-step throughput, same process and batches ({steps} steps each, alternating the "
        f"models after {COMPARE_WARMUP_STEPS} warm-up steps each; a step: preprocess + forward "
        "+ loss + backward + optimizer, no data loading):",
        _table(headers, cells),
    ]
    if ratio is not None:
        verdict = "ours faster" if ratio > 1 else "reference faster"
        lines.append(f"images/s ours / reference: {ratio:.2f}x ({verdict})")
    return "\n".join(lines) + "\n"


def _load_text(load: Sequence[float]) -> str:
    return " ".join(f"{v:.2f}" for v in load) if load else "n/a"


def format_report(report: TrainBenchmarkReport) -> str:
    """The whole plain-text report: validation table, throughput, wall clock, load, compare.

    Args:
        report (TrainBenchmarkReport): What was measured.

    Returns:
        str: The text to print.
    """
    processes = f"{report.world_size} process" + ("es" if report.world_size != 1 else "")
    lines = [
        f"Training benchmark: {report.config} ({report.task}, batch {report.batch_size} x "
        f"{processes}, {report.iterations} iterations, val_interval {report.val_interval})",
        format_evaluations(report.evaluations, report.task).rstrip("\n"),
    ]
    if report.images_per_s is None:
        lines.append("Throughput: n/a (no train/time values in the message hub)")
    else:
        lines.append(
            f"Throughput: {report.images_per_s:.2f} images/s (median {report.median_iter_s:.3f}"
            f" s/iter over {report.timed_iters} iterations; first {report.warmup_skipped} "
            "skipped as warm-up)"
        )
    lines.append(
        f"Wall clock: {report.wall_seconds:.1f} s for the training run (building, training, "
        "validating, checkpoints)"
    )
    cpus = report.machine.get("logical_cpus") or os.cpu_count()
    lines.append(
        f"Load average (1/5/15 min): {_load_text(report.load_before)} before, "
        f"{_load_text(report.load_after)} after, on {cpus} logical CPUs "
        "(other jobs on the machine slow every figure above)"
    )
    compare = format_compare(report.compare, report.compare_ratio)
    if compare:
        lines += ["", compare.rstrip("\n")]
    return "\n".join(lines) + "\n"


def save_report(report: TrainBenchmarkReport, path: str) -> None:
    """Write a report as JSON (parent folders are created).

    Args:
        report (TrainBenchmarkReport): The report.
        path (str): The ``.json`` file.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(dataclasses.asdict(report), f, indent=2)


def load_report(path: str) -> TrainBenchmarkReport:
    """Read a report written by :func:`save_report`.

    Args:
        path (str): The ``.json`` file.

    Returns:
        TrainBenchmarkReport: The report.
    """
    with open(path) as f:
        return TrainBenchmarkReport(**json.load(f))
