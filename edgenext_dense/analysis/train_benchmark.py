"""How far a training run gets, and how fast: validation metrics per iteration and images/second.

Behind ``tools/analysis/train_benchmark.py``. The config trains as ``tools/train.py`` trains it,
then everything is read from the Runner's message hub: the validation history that
:class:`~edgenext_dense.engine.hooks.TrainingCurvesHook` keeps, and ``IterTimerHook``'s
``train/time`` (data + step + hooks, no validation; NOTE: in an ``IterBasedTrainLoop`` the
iteration after a validation also carries the evaluation's last step). ``--compare`` times the
train steps (preprocess, forward, loss, backward, each config's own optimizer) of mmdet's
SSDLite-MobileNetV2 or mmseg's DeepLabv3-MobileNetV2 beside a fresh copy of ours, in this
process, on the same batches, alternating step by step so that load from other jobs falls on
both alike.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os
import os.path as osp
import statistics
import time
from functools import partial
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import mmengine
import numpy as np
import torch.utils.benchmark
from mmengine.config import Config
from mmengine.device import get_device
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import EpochBasedTrainLoop, Runner
from prettytable import PrettyTable
from torch import nn

from edgenext_dense.analysis.benchmark import MMDET_SSDLITE, MMSEG_DEEPLABV3, cell
from edgenext_dense.analysis.benchmark_report import machine_info
from edgenext_dense.analysis.timing import load_average
from edgenext_dense.engine.config import load_config
from edgenext_dense.engine.hooks import VAL_HISTORY_KEY
from edgenext_dense.engine.preflight import PreflightError
from edgenext_dense.engine.runner import task_of, train

DEFAULT_COMPARE_ITERS = 10
DEFAULT_WARMUP_ITERS = 5
COMPARE_WARMUP_STEPS = 2  # untimed train steps per model before the timed comparison
# The table's metrics, in this order, and what they mean; every scalar metric goes to the JSON.
KEY_METRICS: Dict[str, Dict[str, str]] = {
    "det": {
        "coco/bbox_mAP_50": "IoU 0.5",
        "coco/bbox_mAP": "IoU .5:.95",
        "coco/bbox_mAP_75": "IoU 0.75",
    },
    "seg": {"mIoU": "mean IoU, %", "mAcc": "mean class accuracy, %", "aAcc": "pixel accuracy, %"},
}
METRIC_DECIMALS = {"det": 4, "seg": 2}  # COCO mAPs are fractions, mmseg's metrics percentages


@dataclasses.dataclass
class TrainBenchmarkReport:
    """Everything one run measured, JSON-ready. ``val_interval`` counts epochs or iterations as
    the loop does; ``wall_seconds`` is the training run's; ``load_*`` are ``os.getloadavg()``;
    ``compare_ratio`` is our images/s over the reference's."""

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


# --------------------------------------------------------------------------- measuring
def evaluation_rows(
    history: Sequence[Mapping[str, Any]],
    iter_times: Sequence[float],
    images_per_iter: int,
    by_epoch: bool = True,
    first_iter: int = 1,
) -> List[Dict[str, Any]]:
    """One row per validation, in iteration order: ``iter``, ``epoch``, ``images_seen``,
    ``train_seconds`` (None unless every iteration up to it was timed) and all ``metrics``.

    Args:
        history (Sequence[Mapping]): ``TrainingCurvesHook``'s ``dict(iter, epoch, metrics)``.
        iter_times (Sequence[float]): Seconds of each training iteration (``train/time``).
        images_per_iter (int): Batch size x world size.
        by_epoch (bool): Whether the loop counts epochs (else no epoch). Defaults to True.
        first_iter (int): The iteration of ``iter_times[0]``. Defaults to 1.
    """
    cumulative = np.cumsum(np.asarray(iter_times, dtype=float))
    rows = []
    for record in sorted(history, key=lambda r: int(r["iter"])):
        iteration, epoch = int(record["iter"]), record.get("epoch")
        timed = first_iter == 1 and 1 <= iteration <= len(cumulative)
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
    """Images/s at the median iteration time, the first ``warmup`` (never the last) left out:
    ``images_per_s``, ``median_iter_s`` (None without times), ``warmup_skipped``, ``timed_iters``.

    Args:
        iter_times (Sequence[float]): Seconds of each training iteration, in order.
        images_per_iter (int): Batch size x world size.
        warmup (int): Iterations to skip. Defaults to :data:`DEFAULT_WARMUP_ITERS`.
    """
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or more iterations, got {warmup}")
    skipped = min(warmup, max(len(iter_times) - 1, 0))
    timed = [float(t) for t in iter_times[skipped:]]
    median = statistics.median(timed) if timed else None
    return dict(
        images_per_s=images_per_iter / median if median else None,
        median_iter_s=median,
        warmup_skipped=skipped,
        timed_iters=len(timed),
    )


def reference_config(cfg: Config, task: str) -> Config:
    """The reference's config (its own optimizer) with our classes and, for segmentation, our
    crop size; the detector keeps its anchors (they do not change a step's work).

    Args:
        cfg (Config): Our config.
        task (str): ``'det'`` or ``'seg'``.

    Raises:
        PreflightError: When the installed mmdet/mmseg lacks the reference config.
    """
    name = MMDET_SSDLITE if task == "det" else MMSEG_DEEPLABV3
    try:
        ref = load_config(name)
    except PreflightError as exc:
        raise PreflightError(
            f"--compare needs the reference config {name}, which the installed "
            f"{name.split('::')[0]} lacks ({exc}); reinstall it with its configs (pip install "
            "mmdet==3.3.0 mmsegmentation==1.2.2) or leave out --compare"
        ) from exc
    if task == "det":
        ref.model.bbox_head.num_classes = cfg.model.bbox_head.num_classes
        return ref
    for head in ("decode_head", "auxiliary_head"):
        if ref.model.get(head):
            ref.model[head].num_classes = cfg.model.decode_head.num_classes
    size = cfg.model.get("data_preprocessor", {}).get("size")
    if size is not None:
        ref.model.data_preprocessor.size = tuple(size)
    return ref


def build_train_model(cfg: Config) -> Tuple[nn.Module, OptimWrapper]:
    """A config's model from scratch (no pretrained init, SyncBN as BN), in train mode on
    mmengine's default device, with its config's optimizer: ``(model, optim_wrapper)``."""
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


def time_interleaved(
    steps: Sequence[Callable[[Any], Any]],
    batches: Sequence[Any],
    warmup: int = COMPARE_WARMUP_STEPS,
) -> List[List[float]]:
    """Seconds of each ``step(batch)``, per step function: each first runs ``warmup`` untimed
    steps, then every batch goes to function 0, 1, ... in turn, each call on its own deep copy
    (data preprocessors write into data samples), made outside the timing."""
    for step in steps:
        for i in range(warmup):
            step(copy.deepcopy(batches[i % len(batches)]))
    # NOTE: not torch.utils.benchmark.Timer: it adds untimed calls (here optimizer steps) and
    # cannot copy the batch outside each timed call; its clock synchronises CUDA.
    clock = torch.utils.benchmark.timer
    times: List[List[float]] = [[] for _ in steps]
    for batch in batches:
        for index, step in enumerate(steps):
            data = copy.deepcopy(batch)
            start = clock()
            step(data)
            times[index].append(clock() - start)
    return times


def compare_throughput(
    cfg: Config, task: str, iters: int = DEFAULT_COMPARE_ITERS
) -> Tuple[List[Dict[str, Any]], float]:
    """Train-step throughput of a fresh copy of our model and of the reference, alternating on
    ``iters`` batches of our training set: ``(rows, our images/s over the reference's)``.

    Args:
        cfg (Config): Our config (the one trained).
        task (str): ``'det'`` or ``'seg'``.
        iters (int): Timed steps per model. Defaults to :data:`DEFAULT_COMPARE_ITERS`.

    Raises:
        PreflightError: When the reference config is missing or our dataloader yields nothing.
    """
    if iters < 1:
        raise ValueError(f"iters must be at least 1, got {iters}")
    reference = MMDET_SSDLITE if task == "det" else MMSEG_DEEPLABV3
    models = [
        ("ours", str(cfg.filename), cfg),
        ("reference", reference, reference_config(cfg, task)),
    ]
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    init_default_scope(cfg.default_scope)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batches = list(itertools.islice(itertools.cycle(loader), iters))  # a short dataset repeats
    if not batches:
        raise PreflightError(
            "the training dataloader yielded no batch (empty dataset, or drop_last with fewer "
            "images than the batch size); check train_dataloader in the config"
        )
    built = [build_train_model(c) for _, _, c in models]
    times = time_interleaved([partial(m.train_step, optim_wrapper=o) for m, o in built], batches)
    rows = []
    for (who, source, c), (model, _), step_times in zip(models, built, times):
        median = statistics.median(step_times)
        rows.append(
            dict(
                model=f"{str(c.model.backbone.type).split('.')[-1]} ({who})",
                config=source,
                params=sum(p.numel() for p in model.parameters()),
                steps=len(step_times),
                median_s=median,
                min_s=min(step_times),
                images_per_s=int(cfg.train_dataloader.batch_size) / median,
                step_times=step_times,
            )
        )
    return rows, rows[0]["images_per_s"] / rows[1]["images_per_s"]


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
            iterations instead of the config's. Defaults to None.
        cfg_options (dict, optional): ``--cfg-options`` overrides. Defaults to None.
        compare (bool): Also run :func:`compare_throughput`. Defaults to False.
        compare_iters (int): Timed steps per model for ``compare``. Defaults to 10.
        warmup (int): Training iterations left out of the throughput. Defaults to 5.

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
    name = osp.splitext(osp.basename(cfg_path))[0]
    load_before, start = load_average(), time.perf_counter()
    work_dir = work_dir or osp.join("work_dirs", "train_benchmark", name)
    runner = train(cfg_path, work_dir=work_dir, cfg_options=options)
    wall_seconds = time.perf_counter() - start
    cfg = runner.cfg
    task, batch_size = task_of(cfg), int(cfg.train_dataloader.batch_size)
    buffer = runner.message_hub.log_scalars.get("train/time")  # IterTimerHook's
    times = [] if buffer is None else np.asarray(buffer.data[0], dtype=float).ravel().tolist()
    history = runner.message_hub.get_info(VAL_HISTORY_KEY) or []
    by_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
    images_per_iter = batch_size * runner.world_size
    compared, ratio = compare_throughput(cfg, task, compare_iters) if compare else ([], None)
    return TrainBenchmarkReport(
        config=cfg_path,
        task=task,
        work_dir=runner.work_dir,
        batch_size=batch_size,
        world_size=runner.world_size,
        iterations=runner.iter,
        val_interval=cfg.train_cfg.get("val_interval"),
        wall_seconds=round(wall_seconds, 2),
        **throughput(times, images_per_iter, warmup),
        load_before=load_before,
        load_after=load_average(),
        evaluations=evaluation_rows(
            history, times, images_per_iter, by_epoch, runner.iter - len(times) + 1
        ),
        compare=compared,
        compare_ratio=ratio,
        machine={k: v for k, v in machine_info().items() if k != "load_before"},
    )


# --------------------------------------------------------------------------- reporting
def format_report(report: TrainBenchmarkReport) -> str:
    """The plain-text report: validation table, throughput, wall clock, load, comparison."""
    r = report
    processes = f"{r.world_size} process" + ("es" if r.world_size != 1 else "")
    lines = [
        f"Training benchmark: {r.config} ({r.task}, batch {r.batch_size} x {processes}, "
        f"{r.iterations} iterations, val_interval {r.val_interval})"
    ]
    if not r.evaluations:
        lines.append("No validation ran (no val_dataloader/val_cfg, or val_interval > the run).")
    else:
        notes = KEY_METRICS.get(r.task, {})
        names = [m for m in notes if any(m in row["metrics"] for row in r.evaluations)]
        fmt = f".{METRIC_DECIMALS.get(r.task, 4)}f"
        table = PrettyTable(["iter", "epoch", "images", "train s", *names], align="l")
        for row in r.evaluations:
            table.add_row(
                [row["iter"], cell(row["epoch"], ""), row["images_seen"]]
                + [cell(row["train_seconds"], ".1f")]
                + [cell(row["metrics"].get(m), fmt) for m in names]
            )
        if all(row["epoch"] is None for row in r.evaluations):
            table.del_column("epoch")
        lines += [
            table.get_string(),
            "train s: training seconds up to that iteration (data + step, no validation)",
        ]
        if names:
            lines.append("(" + "; ".join(f"{m}: {notes[m]}" for m in names) + ")")
    if r.images_per_s is None:
        lines.append("Throughput: n/a (no train/time values in the message hub)")
    else:
        lines.append(
            f"Throughput: {r.images_per_s:.2f} images/s (median {r.median_iter_s:.3f} s/iter "
            f"over {r.timed_iters} iterations; first {r.warmup_skipped} skipped as warm-up)"
        )
    load = [" ".join(f"{v:.2f}" for v in x) if x else "n/a" for x in (r.load_before, r.load_after)]
    lines += [
        f"Wall clock: {r.wall_seconds:.1f} s for the training run (building, training, "
        "validating, checkpoints)",
        f"Load average (1/5/15 min): {load[0]} before, {load[1]} after, on "
        f"{r.machine.get('logical_cpus') or os.cpu_count()} logical CPUs (other jobs on the "
        "machine slow every figure above)",
    ]
    if r.compare:
        table = PrettyTable(
            ["model", "params (M)", "median s/iter", "min s/iter", "images/s", "config"], align="l"
        )
        for c in r.compare:
            table.add_row(
                [c["model"], f"{c['params'] / 1e6:.2f}", f"{c['median_s']:.3f}"]
                + [f"{c['min_s']:.3f}", f"{c['images_per_s']:.1f}", c["config"]]
            )
        lines += [
            "",
            f"Train-step throughput, same process and batches ({r.compare[0]['steps']} steps "
            f"each, alternating the models after {COMPARE_WARMUP_STEPS} warm-up steps each; a "
            "step: preprocess + forward + loss + backward + optimizer, no data loading):",
            table.get_string(),
        ]
        verdict = "ours faster" if r.compare_ratio > 1 else "reference faster"
        lines.append(f"images/s ours / reference: {r.compare_ratio:.2f}x ({verdict})")
    return "\n".join(lines) + "\n"


def save_report(report: TrainBenchmarkReport, path: str) -> None:
    """Write a report as JSON, creating its folder."""
    mmengine.dump(dataclasses.asdict(report), path, file_format="json", indent=2)


def load_report(path: str) -> TrainBenchmarkReport:
    """Read a report written by :func:`save_report`."""
    return TrainBenchmarkReport(**mmengine.load(path, file_format="json"))
