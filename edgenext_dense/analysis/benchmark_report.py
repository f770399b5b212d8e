"""The benchmark's report: speed ratios, the table (text or Markdown) and the machine line."""

from __future__ import annotations

import contextlib
import os
import platform
from importlib import metadata
from typing import Any, Dict, List, Optional, Sequence

import torch
from prettytable import PrettyTable, TableStyle

from edgenext_dense.analysis.benchmark import COLUMNS, EXPORTED, Measurement


def ratios(measurements: Sequence[Measurement]) -> List[Dict[str, Any]]:
    """Speed-ups over eager PyTorch, and reference / ours latency ratios.

    Args:
        measurements (Sequence[Measurement]): From :func:`run_benchmark`.

    Returns:
        list[dict]: ``kind`` (``'RUNTIME_speedup'``, ``'vs_onnxruntime'``: an exported runtime
        beside ONNX Runtime float32, or ``'ours_vs_reference'``),
        ``model``/``reference``, ``runtime``, ``ratio`` of the median latencies and
        ``ratio_min`` of the minimums (> 1: the first is faster). On a machine shared with
        other jobs the minimum estimates the unloaded ratio better: contention only adds time.
    """

    def ratio(slow: Measurement, fast: Measurement, **fields: Any) -> Dict[str, Any]:
        fields.update(ratio=round(slow.median_ms / fast.median_ms, 3))
        return dict(fields, ratio_min=round(min(slow.times_ms) / min(fast.times_ms), 3))

    by_key = {(m.target, m.runtime): m for m in measurements}
    out = [
        ratio(eager, m, kind=f"{m.runtime}_speedup", model=m.target.name, runtime=m.runtime)
        for m in measurements
        if m.runtime != "pytorch" and (eager := by_key.get((m.target, "pytorch")))
    ]
    out += [
        ratio(ort, m, kind="vs_onnxruntime", model=m.target.name, runtime=m.runtime)
        for m in measurements
        if m.runtime in EXPORTED and m.runtime != "onnxruntime"
        if (ort := by_key.get((m.target, "onnxruntime")))
    ]
    for ref in (m for m in measurements if m.target.role == "reference"):
        for ours in (m for m in measurements if m.target.role == "ours"):
            if (ours.target.group, ours.runtime) == (ref.target.group, ref.runtime):
                names = dict(model=ours.target.name, reference=ref.target.name)
                out.append(ratio(ref, ours, kind="ours_vs_reference", **names, runtime=ref.runtime))
    return out


def format_table(
    measurements: Sequence[Measurement], machine: Optional[Dict[str, Any]] = None
) -> str:
    """The table, then the ours-vs-reference and vs-ONNX-Runtime ratios; Markdown with a machine
    line if given one.

    Args:
        measurements (Sequence[Measurement]): From :func:`run_benchmark`.
        machine (dict, optional): :func:`machine_info`, for Markdown. Defaults to None (text).

    Returns:
        str: The text.
    """
    all_ratios = ratios(measurements)
    speedups = {
        (r["model"], r["runtime"]): (r["ratio"], r["ratio_min"])
        for r in all_ratios
        if r["kind"].endswith("_speedup")
    }
    cell = lambda v, fmt: "-" if v is None else format(v, fmt)  # noqa: E731
    table = PrettyTable(COLUMNS, align="l")
    for m in measurements:
        row = m.row()
        speedup = (1.0, 1.0) if m.runtime == "pytorch" else speedups.get((row["model"], m.runtime))
        table.add_row(
            [row[k] for k in ("model", "runtime", "input", "threads")]
            + [cell(row[k], ".2f") for k in ("median_ms", "min_ms", "max_ms")]
            + [cell(row["images_per_s"], ".1f"), cell(row["peak_memory_mb"], ".0f")]
            + [cell(row["spread"], ".0%")]
            + (["-", "-"] if speedup is None else [f"{v:.2f}x" for v in speedup])
        )
    table.set_style(TableStyle.DEFAULT if machine is None else TableStyle.MARKDOWN)
    lines = [
        f"{'- ' if machine else ''}{r['model']} vs {r['reference']} ({r['runtime']}): reference "
        f"latency / ours = {r['ratio']:.2f} median, {r['ratio_min']:.2f} min "
        f"({'ours faster' if r['ratio_min'] > 1 else 'reference faster'})"
        for r in all_ratios
        if r["kind"] == "ours_vs_reference"
    ]
    lines += [
        f"{'- ' if machine else ''}{r['model']}, {r['runtime']} vs onnxruntime float32: "
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
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:  # the deploy extra is not installed
            versions[package] = None
    return dict(
        cpu=cpu,
        logical_cpus=os.cpu_count(),
        python=platform.python_version(),
        torch=torch.__version__,
        **versions,
        load_before=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    )
