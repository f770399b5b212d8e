"""Reporting the speed benchmark: ratios, the plain-text and Markdown tables, the machine.

Turns the :class:`~edgenext_dense.analysis.report.Measurement` list that
:func:`edgenext_dense.analysis.benchmark.run_benchmark` returns into what
``tools/analysis/benchmark.py`` prints and writes (see :mod:`edgenext_dense.analysis.benchmark`
for what is measured and how).
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import torch
from prettytable import PrettyTable, TableStyle

from edgenext_dense.analysis.bench_targets import Target


@dataclass
class Measurement:
    """The timings of one model in one runtime (all rounds).

    Args:
        target (Target): What was measured.
        runtime (str): One of :data:`RUNTIMES`.
        batch_size (int): Images per call.
        threads (int): Threads given to the runtime.
        device (str): ``'cpu'`` or ``'cuda'``.
        times_ms (list[float]): Every timed call.
        round_medians_ms (list[float]): Median of each round.
        peak_memory_mb (float, optional): Peak RSS (CPU, isolated) or peak CUDA allocation.
        rss_before_mb (float, optional): Resident size after the imports (CPU, isolated).
    """

    target: Target
    runtime: str
    batch_size: int
    threads: int
    device: str
    times_ms: List[float] = field(default_factory=list)
    round_medians_ms: List[float] = field(default_factory=list)
    peak_memory_mb: Optional[float] = None
    rss_before_mb: Optional[float] = None

    @property
    def median_ms(self) -> float:
        """Median latency over all timed calls."""
        return statistics.median(self.times_ms)

    @property
    def images_per_s(self) -> float:
        """Throughput at the median latency."""
        return 1e3 * self.batch_size / self.median_ms

    @property
    def spread(self) -> Optional[float]:
        """(max - min) of the per-round medians over the median; None with one round."""
        if len(self.round_medians_ms) < 2:
            return None
        return (max(self.round_medians_ms) - min(self.round_medians_ms)) / self.median_ms

    def row(self) -> Dict[str, Any]:
        """A flat JSON-ready record."""
        h, w = self.target.input_size
        return dict(
            model=self.target.name,
            source=self.target.source,
            group=self.target.group,
            role=self.target.role,
            runtime=self.runtime,
            input=f"{self.batch_size}x3x{h}x{w}",
            threads=self.threads,
            device=self.device,
            median_ms=round(self.median_ms, 3),
            min_ms=round(min(self.times_ms), 3),
            max_ms=round(max(self.times_ms), 3),
            images_per_s=round(self.images_per_s, 2),
            peak_memory_mb=None if self.peak_memory_mb is None else round(self.peak_memory_mb, 1),
            rss_before_mb=None if self.rss_before_mb is None else round(self.rss_before_mb, 1),
            runs=len(self.times_ms),
            rounds=len(self.round_medians_ms),
            round_medians_ms=[round(t, 3) for t in self.round_medians_ms],
            spread=None if self.spread is None else round(self.spread, 4),
        )


# --------------------------------------------------------------------------- measuring
def ratios(measurements: Sequence[Measurement]) -> List[Dict[str, Any]]:
    """ONNX Runtime speed-ups over eager PyTorch, and reference / ours latency ratios.

    Args:
        measurements (Sequence[Measurement]): From :func:`run_benchmark`.

    Returns:
        list[dict]: ``kind`` (``'onnxruntime_speedup'`` or ``'ours_vs_reference'``),
        ``model``/``reference``, ``runtime``, ``ratio`` of the median latencies and
        ``ratio_min`` of the minimum latencies (> 1: the first is faster). On a machine shared
        with other jobs the minimum is the better estimate of the unloaded ratio: contention
        only ever adds time, and more to OpenMP's barrier-synchronised PyTorch ops.
    """
    by_key = {(m.target, m.runtime): m for m in measurements}
    out: List[Dict[str, Any]] = []
    for m in measurements:
        eager = by_key.get((m.target, "pytorch"))
        if m.runtime != "pytorch" and eager is not None:
            out.append(
                dict(
                    kind=f"{m.runtime}_speedup",
                    model=m.target.name,
                    runtime=m.runtime,
                    ratio=round(eager.median_ms / m.median_ms, 3),
                    ratio_min=round(min(eager.times_ms) / min(m.times_ms), 3),
                )
            )
    for m in measurements:
        if m.target.role != "reference":
            continue
        for ours in measurements:
            same_group = ours.target.group == m.target.group and ours.runtime == m.runtime
            if same_group and ours.target.role == "ours":
                out.append(
                    dict(
                        kind="ours_vs_reference",
                        model=ours.target.name,
                        reference=m.target.name,
                        runtime=m.runtime,
                        ratio=round(m.median_ms / ours.median_ms, 3),
                        ratio_min=round(min(m.times_ms) / min(ours.times_ms), 3),
                    )
                )
    return out


COLUMNS = (
    ("model", "model"),
    ("runtime", "runtime"),
    ("input", "input"),
    ("threads", "threads"),
    ("median_ms", "median ms"),
    ("min_ms", "min ms"),
    ("max_ms", "max ms"),
    ("images_per_s", "img/s"),
    ("peak_memory_mb", "peak mem MB"),
    ("spread", "spread"),
    ("speedup", "vs eager"),
    ("speedup_min", "vs eager (min)"),
)


def table_rows(measurements: Sequence[Measurement]) -> List[Dict[str, str]]:
    """The table's cells as strings, keyed by :data:`COLUMNS`.

    Args:
        measurements (Sequence[Measurement]): From :func:`run_benchmark`.

    Returns:
        list[dict]: One row per measurement.
    """
    speedups = {
        (r["model"], r["runtime"]): (r["ratio"], r["ratio_min"])
        for r in ratios(measurements)
        if r["kind"].endswith("_speedup")
    }
    rows = []
    for m in measurements:
        row = m.row()
        cells = {key: str(row.get(key, "")) for key, _ in COLUMNS}
        cells["median_ms"] = f"{m.median_ms:.2f}"
        cells["min_ms"] = f"{min(m.times_ms):.2f}"
        cells["max_ms"] = f"{max(m.times_ms):.2f}"
        cells["images_per_s"] = f"{m.images_per_s:.1f}"
        cells["peak_memory_mb"] = "-" if m.peak_memory_mb is None else f"{m.peak_memory_mb:.0f}"
        cells["spread"] = "-" if m.spread is None else f"{100 * m.spread:.0f}%"
        speedup = (1.0, 1.0) if m.runtime == "pytorch" else speedups.get((m.target.name, m.runtime))
        cells["speedup"] = "-" if speedup is None else f"{speedup[0]:.2f}x"
        cells["speedup_min"] = "-" if speedup is None else f"{speedup[1]:.2f}x"
        rows.append(cells)
    return rows


def _ratio_lines(measurements: Sequence[Measurement]) -> List[str]:
    lines = []
    for r in ratios(measurements):
        if r["kind"] == "ours_vs_reference":
            lines.append(
                f"{r['model']} vs {r['reference']} ({r['runtime']}): reference latency / ours "
                f"= {r['ratio']:.2f} median, {r['ratio_min']:.2f} min "
                f"({'ours faster' if r['ratio_min'] > 1 else 'reference faster'})"
            )
    return lines


def _table(measurements: Sequence[Measurement], style: TableStyle) -> str:
    table = PrettyTable([h for _, h in COLUMNS], align="l")
    table.add_rows([[r[k] for k, _ in COLUMNS] for r in table_rows(measurements)])
    table.set_style(style)
    return table.get_string()


def format_table(measurements: Sequence[Measurement]) -> str:
    """A plain-text table, then the ours-vs-reference ratios.

    Args:
        measurements (Sequence[Measurement]): From :func:`run_benchmark`.

    Returns:
        str: The text.
    """
    lines = [_table(measurements, TableStyle.DEFAULT), "", *_ratio_lines(measurements)]
    return "\n".join(lines).rstrip() + "\n"


def format_markdown(measurements: Sequence[Measurement], machine: Dict[str, Any]) -> str:
    """A Markdown table with the machine and the ratios (for the README).

    Args:
        measurements (Sequence[Measurement]): From :func:`run_benchmark`.
        machine (dict): From :func:`machine_info`.

    Returns:
        str: The Markdown.
    """
    out = [_table(measurements, TableStyle.MARKDOWN)]
    ratio_lines = [f"- {line}" for line in _ratio_lines(measurements)]
    out += [""] + ratio_lines + ([""] if ratio_lines else [])
    out.append(
        f"Measured on {machine['cpu']} ({machine['logical_cpus']} logical CPUs), "
        f"torch {machine['torch']}, onnxruntime {machine['onnxruntime']}; load average "
        f"{machine['load_before']} before, {machine['load_after']} after. Peak memory: the "
        "measuring process's peak RSS (VmHWM) in a fresh process per model and runtime."
    )
    return "\n".join(out) + "\n"


def machine_info() -> Dict[str, Any]:
    """CPU model, CPU count, library versions and the 1-minute load average."""
    import onnxruntime

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return dict(
        cpu=cpu,
        logical_cpus=os.cpu_count(),
        python=platform.python_version(),
        torch=torch.__version__,
        onnxruntime=onnxruntime.__version__,
        load_before=None if load is None else round(load, 2),
    )
