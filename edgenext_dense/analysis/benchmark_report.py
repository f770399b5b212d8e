"""The benchmark's report: speed-up ratios, the table (text or Markdown) and the machine.

Reads the :class:`~edgenext_dense.analysis.benchmark.Measurement` list that
:func:`~edgenext_dense.analysis.benchmark.run_benchmark` returns.
"""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from prettytable import PrettyTable, TableStyle

from edgenext_dense.analysis import timing
from edgenext_dense.analysis.benchmark import COLUMNS, EXPORTED, Measurement, cell


def _ratio(slow: Measurement, fast: Measurement) -> Tuple[float, float]:
    """``slow`` over ``fast`` latency: of the medians and of the minimums."""
    return (
        round(slow.median_ms / fast.median_ms, 3),
        round(min(slow.times_ms) / min(fast.times_ms), 3),
    )


def ratios(measurements: Sequence[Measurement]) -> List[Dict[str, Any]]:
    """Speed-ups over eager PyTorch, over ONNX Runtime float32, and reference / ours.

    Args:
        measurements (Sequence[Measurement]): From :func:`run_benchmark`.

    Returns:
        list[dict]: ``kind`` (``'RUNTIME_speedup'``, ``'vs_onnxruntime'`` or
        ``'ours_vs_reference'``), ``model`` (and ``reference``), ``runtime``, ``ratio`` of the
        median latencies and ``ratio_min`` of the minimums (> 1: the second is faster; under
        load from other jobs the minimums estimate the unloaded ratio better).
    """

    def ratio(slow: Measurement, fast: Measurement, kind: str, **names: str) -> Dict[str, Any]:
        median, minimum = _ratio(slow, fast)
        names.update(runtime=fast.runtime, ratio=median, ratio_min=minimum)
        return dict(kind=kind, model=fast.target.name, **names)

    by_key = {(m.target, m.runtime): m for m in measurements}
    out = [
        ratio(by_key[(m.target, base)], m, kind or f"{m.runtime}_speedup")
        for base, kind in (("pytorch", None), ("onnxruntime", "vs_onnxruntime"))
        for m in measurements
        if m.runtime != base and (base == "pytorch" or m.runtime in EXPORTED)
        if (m.target, base) in by_key
    ]
    for ref in (m for m in measurements if m.target.role == "reference"):
        for ours in (m for m in measurements if m.target.role == "ours"):
            if (ours.target.group, ours.runtime) == (ref.target.group, ref.runtime):
                out.append(ratio(ref, ours, "ours_vs_reference", reference=ref.target.name))
    return out


def format_table(
    measurements: Sequence[Measurement], machine: Optional[Dict[str, Any]] = None
) -> str:
    """The table, then the ours-vs-reference and vs-ONNX-Runtime lines.

    Args:
        measurements (Sequence[Measurement]): From :func:`run_benchmark`.
        machine (dict, optional): :func:`machine_info` for Markdown with a machine line.
            Defaults to None (plain text).
    """
    all_ratios = ratios(measurements)
    eager = {m.target: m for m in measurements if m.runtime == "pytorch"}
    table = PrettyTable(COLUMNS, align="l")
    for m in measurements:
        row = m.row()
        base = eager.get(m.target)
        speedup = [f"{v:.2f}x" for v in _ratio(base, m)] if base else ["-", "-"]
        table.add_row(
            [row[k] for k in ("model", "runtime", "input", "threads")]
            + [cell(row[k], ".2f") for k in ("median_ms", "min_ms", "max_ms")]
            + [cell(row["images_per_s"], ".1f"), cell(row["peak_memory_mb"], ".0f")]
            + [cell(row["spread"], ".0%")]
            + speedup
        )
    table.set_style(TableStyle.DEFAULT if machine is None else TableStyle.MARKDOWN)
    bullet = "- " if machine else ""
    lines = [
        f"{bullet}{r['model']} vs {r['reference']} ({r['runtime']}): reference "
        f"latency / ours = {r['ratio']:.2f} median, {r['ratio_min']:.2f} min "
        f"({'ours faster' if r['ratio_min'] > 1 else 'reference faster'})"
        for r in all_ratios
        if r["kind"] == "ours_vs_reference"
    ]
    lines += [
        f"{bullet}{r['model']}, {r['runtime']} vs onnxruntime float32: "
        f"{r['ratio']:.2f}x median, {r['ratio_min']:.2f}x min (> 1: faster)"
        for r in all_ratios
        if r["kind"] == "vs_onnxruntime"
    ]
    text = "\n".join([table.get_string(), "", *lines]).rstrip() + "\n"
    if machine is None:
        return text
    return text + (
        f"\nMeasured on {machine['cpu']} ({machine['logical_cpus']} logical CPUs), torch "
        f"{machine['torch']}, onnxruntime {machine['onnxruntime']}, openvino "
        f"{machine.get('openvino')}; load average "
        f"{machine['load_before']} before, {machine['load_after']} after. Peak memory: the "
        "measuring process's peak RSS (VmHWM) in a fresh process per model and runtime.\n"
    )


def machine_info() -> Dict[str, Any]:
    """CPU model, CPU count, library versions and the 1-minute load average."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    versions = {}
    for package in ("onnxruntime", "openvino"):
        with contextlib.suppress(metadata.PackageNotFoundError):  # the deploy extra is missing
            versions[package] = None
            versions[package] = metadata.version(package)
    return dict(
        cpu=cpu,
        logical_cpus=os.cpu_count(),
        python=platform.python_version(),
        torch=torch.__version__,
        **versions,
        load_before=(timing.load_average() or [None])[0],
    )
