"""The project's hooks, registered in ``edgenext_dense.HOOKS``: loss/metric curves in the work
dir, and the raw weights scored beside the EMA ones.
"""

from __future__ import annotations

import copy
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.hooks import EMAHook, Hook
from mmengine.logging import MessageHub, print_log
from mmengine.runner import autocast

from edgenext_dense.registry import HOOKS

# (iterations, values) of one curve; iterations count from the start of training.
Curve = Tuple[List[int], List[float]]
# Runtime-info key of the validation history; saved in checkpoints, so it survives --resume.
VAL_HISTORY_KEY = "edgenext_dense/val_history"
RAW_PREFIX = "raw/"


def collect_curves(message_hub: MessageHub, current_iter: int) -> Dict[str, Dict[str, Curve]]:
    """``{'train': {loss name: (iters, values)}, 'val': {metric: (iters, values)}}`` from the
    message hub (``train/<loss>`` scalars, whose last value is ``current_iter``'s, and
    ``VAL_HISTORY_KEY``).

    Args:
        message_hub (MessageHub): The runner's message hub.
        current_iter (int): Iterations done so far (``runner.iter``).
    """
    train: Dict[str, Curve] = {}
    for key, buffer in message_hub.log_scalars.items():
        mode, _, name = key.partition("/")
        # 'loss', 'loss_cls', 'decode.loss_ce'; not 'decode.acc_seg', 'lr', 'time'
        if mode != "train" or not name.rsplit(".", 1)[-1].startswith("loss"):
            continue
        values = [float(v) for v in np.asarray(buffer.data[0]).reshape(-1)]
        start = current_iter - len(values) + 1
        train[name] = (list(range(start, current_iter + 1)), values)
    val: Dict[str, Curve] = {}
    for record in message_hub.get_info(VAL_HISTORY_KEY) or []:
        for name, value in record["metrics"].items():
            iters, values = val.setdefault(name, ([], []))
            iters.append(int(record["iter"]))
            values.append(float(value))
    return {"train": train, "val": val}


def _scalar(value: object) -> float | None:
    """A plottable float from a metric value; None for tables, strings, NaN and -1."""
    try:
        number = float(value)  # type: ignore[arg-type]  (python/numpy/0-d tensor scalars)
    except (TypeError, ValueError):
        return None
    # pycocotools reports -1 for "no objects of this size in the split": not a value to plot
    return number if np.isfinite(number) and number >= 0 else None


def plot_curves(curves: Dict[str, Dict[str, Curve]], out_file: str, title: str = "") -> List[str]:
    """Draw the loss curves (top) and validation-metric curves (bottom) into a PNG (matplotlib's
    Agg canvas, not pyplot: no display needed, the caller's backend left alone).

    Args:
        curves (dict): As returned by :func:`collect_curves`.
        out_file (str): PNG path to write.
        title (str): Figure title, e.g. the config name. Defaults to "".

    Returns:
        list[str]: The legend labels drawn, losses first (``'train: loss_cls'``, ...).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [("train", "loss"), ("val", "validation metric")]
    panels = [(mode, ylabel) for mode, ylabel in panels if curves.get(mode)] or [("train", "loss")]
    fig = Figure(figsize=(8, 3.2 * len(panels)), dpi=100)
    FigureCanvasAgg(fig)
    labels: List[str] = []
    for index, (mode, ylabel) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, index + 1)
        for name, (iters, values) in sorted(curves.get(mode, {}).items()):
            label = f"{mode}: {name}"
            if mode == "train":
                # a running mean over ~1% of training (first value repeated before the start)
                # keeps long runs readable
                window = max(1, len(values) // 100)
                padded = np.concatenate([np.full(window - 1, values[0]), values])
                smooth = np.convolve(padded, np.ones(window) / window, mode="valid")
                ax.plot(iters, smooth, label=label, linewidth=1)
            else:
                ax.plot(iters, values, marker="o", label=label)
            labels.append(label)
        ax.set_xlabel("iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small", loc="best")
        else:
            ax.text(0.5, 0.5, "no values yet", ha="center", va="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_file)
    return labels


@HOOKS.register_module()
class TrainingCurvesHook(Hook):
    """Redraw ``curves.png`` (numbers in ``curves.json``) in the work dir after every validation
    and at the end of training; a resumed run continues the same curves (the history is in the
    message hub, which checkpoints save). ``tools/train.py`` adds it when a config lacks it.

    Args:
        out_file (str): File name inside ``runner.work_dir``. Defaults to 'curves.png'.
    """

    priority = "LOW"  # after RuntimeInfoHook (VERY_HIGH) has recorded the iteration's outputs

    def __init__(self, out_file: str = "curves.png") -> None:
        self.out_file = out_file

    def before_train(self, runner) -> None:
        """On resume, take back from ``curves.json`` the validations run after the checkpoint
        was saved (a checkpoint is saved before its epoch's validation)."""
        path = osp.join(runner.work_dir, osp.splitext(self.out_file)[0] + ".json")
        if runner.iter == 0 or not osp.isfile(path):
            return
        try:
            with open(path) as f:
                previous = json.load(f).get("val", {})
        except (OSError, ValueError):
            return
        history = {r["iter"]: r for r in runner.message_hub.get_info(VAL_HISTORY_KEY) or []}
        for name, (iters, values) in previous.items():
            for it, value in zip(iters, values):
                if it <= runner.iter:
                    record = history.setdefault(it, dict(iter=it, epoch=None, metrics={}))
                    record["metrics"].setdefault(name, float(value))
        if history:
            runner.message_hub.update_info(VAL_HISTORY_KEY, [history[k] for k in sorted(history)])

    def after_val_epoch(self, runner, metrics: Dict[str, float] | None = None) -> None:
        """Record the scalar metrics of this validation and redraw."""
        if metrics:
            history = list(runner.message_hub.get_info(VAL_HISTORY_KEY) or [])
            scalars = {k: s for k, v in metrics.items() if (s := _scalar(v)) is not None}
            history.append(dict(iter=runner.iter, epoch=runner.epoch, metrics=scalars))
            runner.message_hub.update_info(VAL_HISTORY_KEY, history)
        self._write(runner)

    def after_train(self, runner) -> None:
        """Draw the final curves."""
        self._write(runner, final=True)

    @master_only
    def _write(self, runner, final: bool = False) -> None:
        curves = collect_curves(runner.message_hub, runner.iter)
        if not curves["train"] and not curves["val"]:
            return
        out_file = osp.join(runner.work_dir, self.out_file)
        config_file = getattr(runner.cfg, "filename", None)
        title = osp.splitext(osp.basename(config_file))[0] if config_file else ""
        plot_curves(curves, out_file, title=title or runner.experiment_name)
        with open(osp.splitext(out_file)[0] + ".json", "w") as f:
            json.dump(curves, f)
        if final:
            runner.logger.info(f"loss/metric curves written to {out_file}")


@HOOKS.register_module()
class RawAndEMAEvalHook(EMAHook):
    """``EMAHook`` that also scores the raw weights at validation and test, as ``raw/<metric>``
    (as cvnets does); the averaged weights stay the ones saved and the best checkpoint's.

    Args:
        eval_raw (bool): Run the second, raw-weights evaluation. Defaults to True.
        **kwargs: ``EMAHook`` arguments (``ema_type``, ``momentum``, ``update_buffers``,
            ``begin_iter``, ...).
    """

    def __init__(self, eval_raw: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.eval_raw = eval_raw
        self._raw_state: Optional[Dict[str, torch.Tensor]] = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the raw weights of a checkpoint loaded for testing (its ``ema_state_dict``)."""
        resuming = runner._resume
        super().after_load_checkpoint(runner, checkpoint)
        raw = checkpoint.get("ema_state_dict")
        if not resuming and raw is not None:
            self._raw_state = {k[len("module.") :]: v for k, v in raw.items() if k != "steps"}

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        """Swap the raw weights back, then score them."""
        super().after_val_epoch(runner, metrics)
        if self.eval_raw:
            self._report(runner, runner.val_loop, "val", metrics)

    def after_test_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        """Score the raw weights of the tested checkpoint, when it has them."""
        super().after_test_epoch(runner, metrics)
        if not self.eval_raw or self._raw_state is None:
            return
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        averaged = copy.deepcopy(model.state_dict())
        model.load_state_dict(self._raw_state)
        try:
            self._report(runner, runner.test_loop, "test", metrics)
        finally:
            model.load_state_dict(averaged)

    @torch.no_grad()
    def _report(self, runner, loop, mode: str, metrics: Optional[Dict[str, float]]) -> None:
        runner.model.eval()
        for data_batch in loop.dataloader:
            with autocast(enabled=getattr(loop, "fp16", False)):
                outputs = getattr(runner.model, f"{mode}_step")(data_batch)
            loop.evaluator.process(data_samples=outputs, data_batch=data_batch)
        raw = loop.evaluator.evaluate(len(loop.dataloader.dataset))
        for name, value in raw.items():
            runner.message_hub.update_scalar(f"{mode}/{RAW_PREFIX}{name}", value)
            if metrics is not None:
                metrics[f"{RAW_PREFIX}{name}"] = value
        shown = ", ".join(f"{k}: {float(v):.4f}" for k, v in raw.items() if np.ndim(v) == 0)
        print_log(f"raw (not averaged) weights, {mode}: {shown}", logger="current")
