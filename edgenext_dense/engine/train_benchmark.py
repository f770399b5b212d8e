"""How far a training run gets, and how fast: validation metrics per iteration and images/second.

Behind ``tools/analysis/train_benchmark.py``. The config trains exactly as ``tools/train.py``
trains it (:func:`edgenext_dense.engine.runner.train`), optionally validating more often; then
everything is read from the Runner's message hub, no log parsing:

- **validation history**: what :class:`~edgenext_dense.engine.hooks.TrainingCurvesHook` keeps
  under ``VAL_HISTORY_KEY``, one row per validation with the iteration, the epoch (epoch-based
  loops), the images seen (iteration x batch size x world size; a short last batch of an epoch
  counts as full) and the training seconds up to that iteration;
- **training seconds**: the sum of mmengine's ``IterTimerHook`` ``train/time`` values, each the
  time from the end of one iteration to the end of the next: data loading, the train step and
  the hooks, not validation. NOTE: in an ``IterBasedTrainLoop`` the iteration after a
  validation also carries the evaluation's final step (metric computation, curves) because
  the timer restarts at the last validation batch;
- **throughput**: batch size x world size / the median iteration time, after skipping the
  first iterations (dataloader workers starting, allocator and cuDNN warm-up);
- **compare** (optional): the throughput of the model a user would pick instead, mmdet's
  SSDLite-MobileNetV2 or mmseg's DeepLabv3-MobileNetV2, beside a fresh copy of ours, in this
  process, on the same batches of our training set, alternating the two models step by step so
  that load from other jobs on a shared machine falls on both alike. A step is
  ``model.train_step(batch, optim_wrapper)``: data preprocessing, forward, loss, backward and
  the optimizer step (each model with its own config's optimizer, no LR schedule).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import os.path as osp
import statistics
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.device import get_device
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import EpochBasedTrainLoop, Runner
from torch import nn

from edgenext_dense.deploy.benchmark import MMDET_SSDLITE, MMSEG_DEEPLABV3
from edgenext_dense.deploy.export import load_config as load_package_config

from .hooks import VAL_HISTORY_KEY
from .preflight import PreflightError
from .runner import task_of, train

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
DEFAULT_COMPARE_ITERS = 10
COMPARE_WARMUP_STEPS = 2
TIME_KEY = "train/time"  # IterTimerHook's per-iteration time in the message hub


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
            :func:`edgenext_dense.deploy.benchmark.machine_info`).
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


def _columns_text(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    """Lines of a plain-text table: header, dashes, rows, columns padded to their widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()
    return [line, "-" * len(line)] + [
        "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows
    ]


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
    lines = _columns_text(headers, cells)
    lines.append("train s: training seconds up to that iteration (data + step, no validation)")
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
        "+ loss + backward + optimizer, no data loading):"
    ] + _columns_text(headers, cells)
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


# --------------------------------------------------------------------------- comparison
def reference_config(cfg: Config, task: str) -> Config:
    """The reference model's config, set up to train on our data.

    mmdet's SSDLite-MobileNetV2 (detection) or mmseg's DeepLabv3-MobileNetV2 (segmentation),
    with our number of classes and, for segmentation, our crop size in the data preprocessor
    (:func:`build_train_model` turns its pretrained initialisation off). The detector keeps
    the anchors of its 320 px recipe: their sizes do not change the work a step does.

    Args:
        cfg (Config): Our config.
        task (str): ``'det'`` or ``'seg'``.

    Returns:
        Config: The reference config (its own optimizer in ``optim_wrapper``); its
        ``filename`` is the installed file.

    Raises:
        PreflightError: When the installed mmdet/mmseg lacks the reference config.
    """
    name = MMDET_SSDLITE if task == "det" else MMSEG_DEEPLABV3
    try:
        ref = load_package_config(name)
    except FileNotFoundError as exc:
        raise PreflightError(
            f"--compare needs the reference config {name}, which the installed "
            f"{name.split('::')[0]} lacks ({exc}); reinstall it with its configs (pip install "
            "mmdet==3.3.0 mmsegmentation==1.2.2) or leave out --compare"
        ) from exc
    if task == "det":
        ref.model.bbox_head.num_classes = cfg.model.bbox_head.num_classes
    else:
        ref.model.decode_head.num_classes = cfg.model.decode_head.num_classes
        if ref.model.get("auxiliary_head"):
            ref.model.auxiliary_head.num_classes = cfg.model.decode_head.num_classes
        size = cfg.model.get("data_preprocessor", {}).get("size")
        if size is not None:
            ref.model.data_preprocessor.size = tuple(size)
    return ref


def build_train_model(cfg: Config) -> Tuple[nn.Module, OptimWrapper]:
    """Build a config's model from scratch, ready to train, with its config's optimizer.

    Pretrained initialisation is off (``model.pretrained`` and ``backbone.init_cfg``), SyncBN
    layers are BN, the model is in train mode on mmengine's default device.

    Args:
        cfg (Config): A detection or segmentation config; not modified.

    Returns:
        tuple: ``(model, optim_wrapper)``.
    """
    model_cfg = copy.deepcopy(cfg.model)
    if "pretrained" in model_cfg:
        model_cfg.pretrained = None
    if isinstance(model_cfg.get("backbone"), Mapping):
        model_cfg.backbone.init_cfg = None
    init_default_scope(cfg.default_scope)
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.init_weights()
    model = model.to(get_device()).train()
    return model, build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))


def sample_batches(cfg: Config, count: int) -> List[Any]:
    """Take ``count`` batches from a config's training dataloader, in this process.

    Args:
        cfg (Config): The config (its ``train_dataloader``; workers are not started).
        count (int): Batches to take; a short dataset is run through again.

    Returns:
        list: The collated batches, as ``model.train_step`` takes them.

    Raises:
        PreflightError: When the dataloader yields nothing.
    """
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    init_default_scope(cfg.default_scope)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batches: List[Any] = []
    while len(batches) < count:
        before = len(batches)
        for batch in loader:
            batches.append(batch)
            if len(batches) == count:
                break
        if len(batches) == before:
            raise PreflightError(
                "the training dataloader yielded no batch (empty dataset, or drop_last with "
                "fewer images than the batch size); check train_dataloader in the config"
            )
    return batches


def time_interleaved(
    steps: Sequence[Callable[[Any], Any]],
    batches: Sequence[Any],
    warmup: int = COMPARE_WARMUP_STEPS,
) -> List[List[float]]:
    """Time several train-step functions on the same batches, alternating between them.

    Each function first runs ``warmup`` untimed steps; then every batch goes to function 0,
    1, ..., so that a burst of load from other processes falls on all of them. Each call gets
    its own deep copy of the batch, made outside the timed region (data preprocessors write
    into the data samples).

    Args:
        steps (Sequence[Callable]): ``step(batch)`` per model; finishes its device work before
            returning.
        batches (Sequence): The timed batches (the warm-up reuses them from the first).
        warmup (int): Untimed steps per function. Defaults to :data:`COMPARE_WARMUP_STEPS`.

    Returns:
        list[list[float]]: Seconds of each timed call, per function.
    """
    for step in steps:
        for i in range(warmup):
            step(copy.deepcopy(batches[i % len(batches)]))
    times: List[List[float]] = [[] for _ in steps]
    for batch in batches:
        for index, step in enumerate(steps):
            data = copy.deepcopy(batch)
            start = time.perf_counter()
            step(data)
            times[index].append(time.perf_counter() - start)
    return times


def _train_step_fn(model: nn.Module, optim_wrapper: OptimWrapper) -> Callable[[Any], Any]:
    cuda = next(model.parameters()).is_cuda

    def step(batch: Any) -> Any:
        out = model.train_step(batch, optim_wrapper)
        if cuda:
            torch.cuda.synchronize()
        return out

    return step


def compare_throughput(
    cfg: Config, task: str, iters: int = DEFAULT_COMPARE_ITERS
) -> Tuple[List[Dict[str, Any]], float]:
    """Train-step throughput of a fresh copy of our model and of the reference, alternating.

    Args:
        cfg (Config): Our config (the one trained).
        task (str): ``'det'`` or ``'seg'``.
        iters (int): Timed steps per model. Defaults to :data:`DEFAULT_COMPARE_ITERS`.

    Returns:
        tuple: ``(rows, ratio)``: :func:`compare_row` of ours and of the reference, and our
        images/s over the reference's.

    Raises:
        ValueError: When ``iters`` is below 1.
        PreflightError: When the reference config is not installed or our training
            dataloader yields nothing.
    """
    if iters < 1:
        raise ValueError(f"iters must be at least 1, got {iters}")
    ref_cfg = reference_config(cfg, task)
    batches = sample_batches(cfg, iters)
    images = int(cfg.train_dataloader.batch_size)
    reference = MMDET_SSDLITE if task == "det" else MMSEG_DEEPLABV3
    models = [("ours", str(cfg.filename), cfg), ("reference", reference, ref_cfg)]
    built = [build_train_model(c) for _, _, c in models]
    times = time_interleaved([_train_step_fn(m, o) for m, o in built], batches)
    rows = [
        compare_row(
            f"{str(c.model.backbone.type).split('.')[-1]} ({who})",
            source,
            sum(p.numel() for p in model.parameters()),
            t,
            images,
        )
        for (who, source, c), (model, _), t in zip(models, built, times)
    ]
    return rows, rows[0]["images_per_s"] / rows[1]["images_per_s"]


# --------------------------------------------------------------------------- the run
def default_work_dir(cfg_path: str) -> str:
    """``work_dirs/train_benchmark/<config name>``."""
    return osp.join("work_dirs", "train_benchmark", osp.splitext(osp.basename(cfg_path))[0])


def _iter_times(runner: Runner) -> List[float]:
    buffer = runner.message_hub.log_scalars.get(TIME_KEY)
    if buffer is None:
        return []
    return [float(v) for v in np.asarray(buffer.data[0]).reshape(-1)]


def _machine() -> Dict[str, Any]:
    try:
        from edgenext_dense.deploy.benchmark import machine_info

        info = machine_info()
    except ImportError:  # onnxruntime (the deploy extra) not installed
        info = dict(logical_cpus=os.cpu_count(), torch=torch.__version__)
    info.pop("load_before", None)  # the report has all three load averages
    return info


def _load_average() -> List[float]:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []


def report_from_runner(
    runner: Runner, cfg_path: str, wall_seconds: float, warmup: int = DEFAULT_WARMUP_ITERS
) -> TrainBenchmarkReport:
    """Read the validation history and iteration times of a finished run.

    Args:
        runner (Runner): The runner after ``train()``.
        cfg_path (str): The config file, for the report.
        wall_seconds (float): Wall clock of the run.
        warmup (int): Iterations left out of the throughput. Defaults to
            :data:`DEFAULT_WARMUP_ITERS`.

    Returns:
        TrainBenchmarkReport: Without the load averages, machine and comparison.
    """
    cfg = runner.cfg
    task = task_of(cfg)
    images_per_iter = int(cfg.train_dataloader.batch_size) * runner.world_size
    times = _iter_times(runner)
    rows = evaluation_rows(
        runner.message_hub.get_info(VAL_HISTORY_KEY) or [],
        times,
        images_per_iter,
        by_epoch=isinstance(runner.train_loop, EpochBasedTrainLoop),
        first_iter=runner.iter - len(times) + 1,
    )
    return TrainBenchmarkReport(
        config=cfg_path,
        task=task,
        work_dir=runner.work_dir,
        batch_size=int(cfg.train_dataloader.batch_size),
        world_size=runner.world_size,
        iterations=runner.iter,
        val_interval=cfg.train_cfg.get("val_interval"),
        wall_seconds=round(wall_seconds, 2),
        **throughput(times, images_per_iter, warmup),
        load_before=[],
        load_after=[],
        evaluations=rows,
    )


def run_train_benchmark(
    cfg_path: str,
    work_dir: Optional[str] = None,
    val_interval: Optional[int] = None,
    cfg_options: Optional[Dict[str, Any]] = None,
    compare: bool = False,
    compare_iters: int = DEFAULT_COMPARE_ITERS,
    warmup: int = DEFAULT_WARMUP_ITERS,
) -> TrainBenchmarkReport:
    """Train a config as ``tools/train.py`` does, then report metrics over time and speed.

    Args:
        cfg_path (str): Detection or segmentation config.
        work_dir (str, optional): Output folder. Defaults to None:
            ``work_dirs/train_benchmark/<config name>``.
        val_interval (int, optional): Validate every this many epochs (epoch-based loops) or
            iterations (iteration-based loops) instead of the config's ``train_cfg``.
            Defaults to None.
        cfg_options (dict, optional): ``--cfg-options`` overrides. Defaults to None.
        compare (bool): Also time the train steps of the reference model (see
            :func:`compare_throughput`). Defaults to False.
        compare_iters (int): Timed steps per model for ``compare``. Defaults to 10.
        warmup (int): Training iterations left out of the throughput. Defaults to 5.

    Returns:
        TrainBenchmarkReport: What was measured.

    Raises:
        PreflightError: When the config or a dataset path is missing (before training).
        ValueError: When ``val_interval`` or ``compare_iters`` is below 1.
    """
    if val_interval is not None and val_interval < 1:
        raise ValueError(f"val_interval must be at least 1, got {val_interval}")
    if compare_iters < 1:
        raise ValueError(f"compare_iters must be at least 1, got {compare_iters}")
    options = dict(cfg_options or {})
    if val_interval is not None:
        options["train_cfg.val_interval"] = val_interval
    load_before = _load_average()
    start = time.perf_counter()
    runner = train(cfg_path, work_dir=work_dir or default_work_dir(cfg_path), cfg_options=options)
    report = report_from_runner(runner, cfg_path, time.perf_counter() - start, warmup)
    if compare:
        report.compare, report.compare_ratio = compare_throughput(
            runner.cfg, report.task, compare_iters
        )
    report.load_before, report.load_after = load_before, _load_average()
    report.machine = _machine()
    return report
