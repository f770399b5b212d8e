"""Parameters and FLOPs of a detector or segmentor config, for ``tools/analysis/get_flops.py``.

mmengine's fvcore counter counts one multiply-add as one FLOP, what papers call "MAdds" (the
EdgeNeXt paper's 2.1G for SSDLite-EdgeNeXt-S), over the forward a deployed model runs
(:data:`FORWARD_DESCRIPTIONS`); an auxiliary head (training only) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from mmengine.config import Config
from prettytable import PrettyTable
from torch import nn

from edgenext_dense.engine.config import build_model_without_init, config_test_pipeline

# The paper's evaluation sizes: SSDLite at 320x320, DeepLabv3 at 512x512.
DEFAULT_SHAPES: Dict[str, Tuple[int, int]] = {"det": (320, 320), "seg": (512, 512)}
FORWARD_DESCRIPTIONS = {
    "det": "tensor mode: backbone + neck + head outputs for all priors, no box decoding/NMS",
    "seg": "encode-decode: backbone + decode head + resize of the logits to the input size",
}


@dataclass
class Complexity:
    """What :func:`model_complexity` measured."""

    params: int
    flops: int
    shape: Tuple[int, int]
    shape_source: str
    by_component: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # name: (params, flops)
    uncounted_ops: Dict[str, int] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


class _InferenceForward(nn.Module):
    """``forward(image)``: the detector's/segmentor's inference network alone."""

    def __init__(self, model: nn.Module, task: str, shape: Tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.img_meta = dict(img_shape=shape, pad_shape=shape, ori_shape=shape)

    def forward(self, image: torch.Tensor) -> Any:
        if self.task == "det":
            return self.model._forward(image)
        return self.model.encode_decode(image, [self.img_meta] * image.shape[0])


def default_input_shape(cfg: Config, task: str) -> Tuple[Tuple[int, int], str]:
    """``((H, W), where it came from)``: the test pipeline's fixed resize, or the square of a
    ``keep_ratio`` resize's short side (what a square image becomes), else the task's default.

    Args:
        cfg (Config): The config.
        task (str): ``'det'`` or ``'seg'``, for the default.
    """
    for transform in config_test_pipeline(cfg):
        if str(transform.get("type", "")).split(".")[-1] not in ("Resize", "FixShapeResize"):
            continue
        scale = transform.get("scale")
        if scale is None and "width" in transform:  # FixShapeResize
            scale = (transform["width"], transform["height"])
        if scale is None:
            continue
        width, height = (scale, scale) if isinstance(scale, int) else tuple(scale)
        source = f"test pipeline Resize scale={tuple(scale)}"
        if transform.get("keep_ratio", False):
            return (min(width, height),) * 2, f"{source}, keep_ratio: short side"
        return (height, width), f"{source} (w, h)"
    return DEFAULT_SHAPES[task], f"default for {task}"


def model_complexity(cfg: Config, task: str, shape: Tuple[int, int] | None = None) -> Complexity:
    """Parameters and FLOPs (multiply-adds) of a config's inference network: totals, per
    top-level component, and the operators the counter skips (elementwise ops, ...).

    Args:
        cfg (Config): The config.
        task (str): ``'det'`` or ``'seg'``.
        shape (tuple[int, int], optional): Input (H, W). Defaults to None
            (:func:`default_input_shape`).
    """
    shape_source = "--shape"
    if shape is None:
        shape, shape_source = default_input_shape(cfg, task)
    model = build_model_without_init(cfg)
    wrapper = _InferenceForward(model, task, shape)
    analyzer = FlopAnalyzer(wrapper, (torch.randn(1, 3, *shape),))
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.tracer_warnings("none")
    flops, params = analyzer.by_module(), parameter_count(wrapper)  # both default to 0
    keys = {name: f"model.{name}" for name, _ in model.named_children()}
    parts = {n: (int(params[k]), int(flops[k])) for n, k in keys.items() if params[k] or flops[k]}
    rest = int(analyzer.total()) - sum(f for _, f in parts.values())
    if rest:  # ops outside any component's forward, e.g. the segmentor's final resize
        parts["other"] = (0, rest)
    aux = cfg.model.get("auxiliary_head")
    notes = ["auxiliary head left out (it only adds a training loss)"] if aux else []
    return Complexity(
        int(params[""]), int(analyzer.total()), tuple(shape), shape_source, parts,
        dict(analyzer.unsupported_ops()), notes,
    )  # fmt: skip


def format_complexity(result: Complexity, task: str) -> str:
    """A human-readable report of :func:`model_complexity`'s result."""
    height, width = result.shape
    lines = [
        f"Input:    1x3x{height}x{width} ({result.shape_source})",
        f"Forward:  {FORWARD_DESCRIPTIONS[task]}",
        f"Params:   {result.params:,} ({result.params / 1e6:.3f} M)",
        f"FLOPs (multiply-adds): {result.flops:,} ({result.flops / 1e9:.3f} G); mmengine counts "
        "one multiply-add as one FLOP",
    ]
    table = PrettyTable(["component", "params (M)", "FLOPs (G)"], align="l")
    for name, (params, flops) in result.by_component.items():
        table.add_row([name, f"{params / 1e6:.3f}", f"{flops / 1e9:.3f}"])
    lines.append(table.get_string())
    if result.uncounted_ops:
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(result.uncounted_ops.items()))
        lines.append(f"Not counted (no multiply-adds, or unknown to the counter): {ops}")
    lines.extend(f"Note: {note}" for note in result.notes)
    return "\n".join(lines)
