"""How far a training run gets, and how fast: validation metrics per iteration and images/second.

Behind ``tools/analysis/train_benchmark.py``. The config trains exactly as ``tools/train.py``
trains it (:func:`edgenext_dense.engine.runner.train`), optionally validating more often; then
everything is read from the Runner's message hub, no log parsing (the rows, tables and JSON are
:mod:`.train_report`):

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
import os
import os.path as osp
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

from edgenext_dense.analysis.bench_targets import MMDET_SSDLITE, MMSEG_DEEPLABV3
from edgenext_dense.analysis.train_report import (
    COMPARE_WARMUP_STEPS,
    DEFAULT_WARMUP_ITERS,
    TrainBenchmarkReport,
    compare_row,
    evaluation_rows,
    throughput,
)
from edgenext_dense.engine.config import load_config as load_package_config
from edgenext_dense.engine.hooks import VAL_HISTORY_KEY
from edgenext_dense.engine.preflight import PreflightError
from edgenext_dense.engine.runner import task_of, train

DEFAULT_COMPARE_ITERS = 10
TIME_KEY = "train/time"  # IterTimerHook's per-iteration time in the message hub


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
    # NOTE: not torch.utils.benchmark.Timer: its timeit() runs untimed calls of its own (here
    # optimizer steps) and it cannot make a fresh copy of the batch outside each timed call.
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
        from edgenext_dense.analysis.report import machine_info

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
