"""An EMA hook that also scores the raw weights, as cvnets validates both every epoch.

mmengine's ``EMAHook`` validates, tests and saves (as ``state_dict``; the raw weights go to
``ema_state_dict``) only the averaged model. The best checkpoint is still chosen on it, as
cvnets' ``checkpoint_ema_best.pt``.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Optional

import numpy as np
import torch
from mmengine.hooks import EMAHook
from mmengine.logging import print_log
from mmengine.runner import autocast

from edgenext_dense.registry import HOOKS

RAW_PREFIX = "raw/"


@HOOKS.register_module()
class RawAndEMAEvalHook(EMAHook):
    """``EMAHook`` that also scores the raw weights at validation and test, as ``raw/<metric>``.

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
