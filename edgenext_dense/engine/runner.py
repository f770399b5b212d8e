"""``tools/train.py`` and ``tools/test.py`` for mmdet and mmseg configs: mmengine's ``Runner``
set up as mmdet 3.3's and mmseg 1.2's tools do, after the preflight checks, with the curves hook
and distributed runs without CUDA (gloo).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import os.path as osp
from typing import Any, Dict, Iterator

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .checkpointing import check_checkpoint_readable, find_resumable_checkpoint
from .config import add_cfg_options_arg, load_config, task_of
from .data_checks import check_datasets
from .preflight import (
    PreflightError,
    check_checkpoint_fits,
    check_checkpoint_task,
    check_dataset_paths,
    check_pretrained_checkpoints,
)

SYNC_BN_TYPES = ("SyncBN", "MMSyncBN", "TorchSyncBN")


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--work-dir``, ``--cfg-options``, ``--launcher`` and ``--local-rank``."""
    parser.add_argument(
        "--work-dir",
        help="where logs, checkpoints and curves go; defaults to ./work_dirs/<config name>",
    )
    add_cfg_options_arg(parser)
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch"],
        default="none",
        help="'pytorch' for torchrun (tools/dist_train.sh, tools/dist_test.sh)",
    )
    # torch.distributed.launch passes it; torchrun sets LOCAL_RANK in the environment instead
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0, help=argparse.SUPPRESS)


def set_local_rank_env(local_rank: int) -> None:
    """Export ``LOCAL_RANK`` for launchers that pass it as an argument only."""
    os.environ.setdefault("LOCAL_RANK", str(local_rank))


def _load_run_config(
    cfg_path: str, cfg_options: Dict[str, Any] | None, work_dir: str | None, launcher: str
) -> Config:
    """The config with the command line applied; ``work_dir`` as mmdet's and mmseg's tools set it:
    ``--work-dir``, else the config's, else ``./work_dirs/<config name>``."""
    cfg = load_config(cfg_path, cfg_options)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(cfg_path))[0])
    return cfg


def _replace_sync_bn(node: Any) -> Any:
    """Return a copy of a config tree with SyncBN norm layers turned into BN."""
    if isinstance(node, dict):
        node = ConfigDict({k: _replace_sync_bn(v) for k, v in node.items()})
        if node.get("type") in SYNC_BN_TYPES:
            node.type = "BN"
        return node
    if isinstance(node, (list, tuple)):
        return type(node)(_replace_sync_bn(v) for v in node)
    return node


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare a ``--launcher pytorch`` run without CUDA: gloo, DDP ``device_ids=None``, SyncBN ->
    BN, and start the process group here (mmengine's ``init_dist`` needs CUDA). Does nothing with
    CUDA or without a launcher.

    Args:
        cfg (Config): The config; modified in place.

    Returns:
        bool: True when this call started the process group (the caller destroys it).
    """
    if cfg.get("launcher", "none") == "none" or torch.cuda.is_available():
        return False
    cfg.merge_from_dict(
        {"env_cfg.dist_cfg.backend": "gloo", "model_wrapper_cfg.device_ids": None, "sync_bn": None}
    )
    cfg.model = _replace_sync_bn(cfg.model)
    if os.environ.get("RANK", "0") == "0":
        print_log(
            "CUDA is not available: distributed run on CPU with the gloo backend "
            "(SyncBN layers, which need CUDA, are plain BN here).",
            logger="current",
        )
    if torch_dist.is_initialized():
        return False
    timeout = cfg.env_cfg.dist_cfg.get("timeout")
    kwargs = {"timeout": datetime.timedelta(seconds=timeout)} if timeout else {}
    torch_dist.init_process_group(backend="gloo", **kwargs)
    return True


def build_runner(cfg: Config) -> Runner:
    """Build the Runner, from ``RUNNERS`` when the config names a ``runner_type``."""
    return RUNNERS.build(cfg) if "runner_type" in cfg else Runner.from_cfg(cfg)


@contextlib.contextmanager
def _runner(cfg: Config) -> Iterator[Runner]:
    """Build the Runner inside the gloo process group :func:`setup_cpu_distributed` starts.

    After the body DDP is unwrapped (its reducer holds the group, which gloo cannot free at
    exit) and every rank waits for the others before the group goes: a rank tearing gloo down
    while a peer is in its last hooks can abort. After an error the group goes without waiting.
    """
    owns_group = setup_cpu_distributed(cfg)
    try:
        runner = build_runner(cfg)
        yield runner
        if is_model_wrapper(runner.model):
            runner.model = runner.model.module
        if owns_group and torch_dist.is_initialized():
            torch_dist.barrier()
    finally:
        if owns_group and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


def _enable_amp(cfg: Config) -> None:
    from mmengine.device import get_device

    if get_device() == "cpu":
        raise PreflightError(
            "--amp needs a GPU (mmengine's AmpOptimWrapper runs on CUDA, NPU, MLU or MUSA "
            "devices) and none is available here; train without --amp"
        )
    if cfg.optim_wrapper.get("type", "OptimWrapper") == "AmpOptimWrapper":
        print_log("AMP training is already enabled in the config.", logger="current")
    else:
        cfg.optim_wrapper.update(type="AmpOptimWrapper", loss_scale="dynamic")


def train(
    cfg_path: str,
    work_dir: str | None = None,
    resume: str | None = None,
    amp: bool = False,
    auto_scale_lr: bool = False,
    cfg_options: Dict[str, Any] | None = None,
    launcher: str = "none",
) -> Runner:
    """Train a detector or segmentor from a config, after the preflight checks.

    Args:
        cfg_path (str): Config file (``default_scope`` 'mmdet' or 'mmseg').
        work_dir (str, optional): Output folder. Defaults to None (the config's, else
            ``./work_dirs/<config name>``).
        resume (str, optional): ``'auto'`` (the newest checkpoint of the work dir that loads) or
            a checkpoint path. Defaults to None (no resuming).
        amp (bool): Mixed precision (``AmpOptimWrapper``, dynamic loss scale). Defaults to False.
        auto_scale_lr (bool): Scale the learning rate by the total batch size over
            ``auto_scale_lr.base_batch_size``. Defaults to False.
        cfg_options (dict, optional): ``--cfg-options`` overrides. Defaults to None.
        launcher (str): ``'none'`` or ``'pytorch'``. Defaults to 'none'.

    Returns:
        Runner: The runner after training.
    """
    cfg = _load_run_config(cfg_path, cfg_options, work_dir, launcher)
    task = task_of(cfg)
    splits = ("train", "val") if cfg.get("val_cfg") else ("train",)
    check_dataset_paths(cfg, splits, task)
    check_pretrained_checkpoints(cfg)
    check_datasets(cfg, splits, task)
    if amp:
        _enable_amp(cfg)
    if auto_scale_lr:
        if "base_batch_size" not in (cfg.get("auto_scale_lr") or {}):
            raise PreflightError(
                f"--auto-scale-lr needs auto_scale_lr=dict(enable=..., base_batch_size=N) in the "
                f"config {cfg.filename} (N: the total batch size its learning rate was set for)"
            )
        cfg.auto_scale_lr.enable = True
    if resume == "auto":
        found = find_resumable_checkpoint(cfg.work_dir)
        # None: start fresh; with resume=True the Runner would re-read a broken last_checkpoint
        cfg.resume, cfg.load_from = found is not None, found
    elif resume is not None:
        check_checkpoint_readable(resume, "checkpoint to resume from")
        cfg.resume, cfg.load_from = True, resume
    elif cfg.get("load_from"):
        check_checkpoint_readable(cfg.load_from, "checkpoint in load_from")
        # fine-tuning may change the head, but a checkpoint of another task is a mistake
        check_checkpoint_task(cfg.load_from, cfg, task)
    hooks = list(cfg.get("custom_hooks") or [])
    if not any(str(h.get("type", "")).endswith("TrainingCurvesHook") for h in hooks):
        hooks.append(ConfigDict(type="edgenext_dense.TrainingCurvesHook"))
    cfg.custom_hooks = hooks
    with _runner(cfg) as runner:
        runner.train()
    return runner


def _set_visualization(cfg: Config, task: str, show_dir: str) -> str:
    """Turn on the task's visualization hook; return the folder the drawn images go to."""
    show_dir = osp.abspath(show_dir)
    kind = "Det" if task == "det" else "Seg"
    # DetVisualizationHook writes to test_out_dir; SegVisualizationHook draws every
    # `interval`-th batch (default 50) into the visualizer's <save_dir>/vis_data/vis_image/
    extra = dict(test_out_dir=show_dir) if task == "det" else dict(interval=1)
    hook = cfg.default_hooks.get("visualization") or dict(type=f"{kind}VisualizationHook")
    cfg.default_hooks.visualization = ConfigDict({**hook, "draw": True, **extra})
    backends = [dict(type="LocalVisBackend")]
    cfg.visualizer = cfg.get("visualizer") or ConfigDict(
        type=f"{kind}LocalVisualizer", vis_backends=backends, name="visualizer"
    )
    if task == "det":
        return show_dir
    cfg.visualizer.save_dir = show_dir
    return osp.join(show_dir, "vis_data", "vis_image")


def _set_output(cfg: Config, task: str, out: str) -> Any | None:
    """Configure ``--out``; return a metric to append to the built runner's evaluator, if any."""
    if out.endswith((".pkl", ".pickle")):
        from mmengine.evaluator import DumpResults

        if task == "det":  # the predictions in mmdet's format, as its tools/test.py dumps them
            from mmdet.evaluation import DumpDetResults as DumpResults
        return DumpResults(out_file_path=out)
    evaluator = cfg.test_evaluator
    metrics = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    if task == "seg":  # a folder of predicted label PNGs, as mmseg's tools/test.py writes
        for metric in metrics:
            metric["output_dir"] = out
        return None
    if not out.endswith(".json"):
        raise PreflightError(f"--out {out}: a detection result file ends in .pkl or .json")
    coco = [m for m in metrics if isinstance(m, dict) and "Coco" in str(m.get("type", ""))]
    if not coco:
        raise PreflightError(
            f"--out {out}: .json output is written by CocoMetric, which the config's "
            "test_evaluator does not use; use a .pkl file instead"
        )
    for metric in coco:  # CocoMetric writes <prefix>.bbox.json
        metric["outfile_prefix"] = osp.splitext(out)[0]
    return None


def format_metrics(metrics: Dict[str, Any]) -> str:
    """One line per scalar metric, e.g. ``'  coco/bbox_mAP     0.2790'``."""
    lines = []
    for name, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if name.startswith("coco/") and number == -1:  # pycocotools' "not applicable"
            lines.append(f"  {name:<24s}n/a (no objects of this size)")
        else:
            lines.append(f"  {name:<24s}{number:.4f}")
    return "\n".join(lines)


def evaluate(
    cfg_path: str,
    checkpoint: str,
    work_dir: str | None = None,
    out: str | None = None,
    show_dir: str | None = None,
    cfg_options: Dict[str, Any] | None = None,
    launcher: str = "none",
) -> Dict[str, Any]:
    """Evaluate a checkpoint on the config's test set (the test_evaluator's metrics), after the
    preflight checks.

    Args:
        cfg_path (str): Config file (``default_scope`` 'mmdet' or 'mmseg').
        checkpoint (str): Weights saved by :func:`train` for this kind of model.
        work_dir (str, optional): Where the logs go. Defaults to None (as :func:`train`).
        out (str, optional): ``.pkl`` (all predictions); detection ``.json`` (COCO results, as
            ``<name>.bbox.json``); segmentation: a folder for label PNGs. Defaults to None.
        show_dir (str, optional): Folder for images with the predictions drawn. Defaults to None.
        cfg_options (dict, optional): ``--cfg-options`` overrides. Defaults to None.
        launcher (str): ``'none'`` or ``'pytorch'``. Defaults to 'none'.

    Returns:
        dict: The metrics.
    """
    cfg = _load_run_config(cfg_path, cfg_options, work_dir, launcher)
    task = task_of(cfg)
    check_dataset_paths(cfg, ("test",), task)
    check_checkpoint_readable(checkpoint, "checkpoint to test")
    check_checkpoint_task(checkpoint, cfg, task)
    check_datasets(cfg, ("test",), task)
    cfg.load_from = checkpoint
    image_dir = _set_visualization(cfg, task, show_dir) if show_dir else None
    extra_metric = _set_output(cfg, task, out) if out else None
    with _runner(cfg) as runner:
        check_checkpoint_fits(checkpoint, runner.model, cfg)
        if extra_metric is not None:
            runner.test_evaluator.metrics.append(extra_metric)
        metrics = runner.test()
    if runner.rank == 0:
        print(f"Test results of {checkpoint}:\n{format_metrics(metrics)}", flush=True)
        if out:
            where = f"{osp.splitext(out)[0]}.bbox.json" if out.endswith(".json") else out
            print(f"Predictions written to {where}", flush=True)
        if image_dir:
            print(f"Drawn predictions saved in {image_dir}", flush=True)
    return metrics
