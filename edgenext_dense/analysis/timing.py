"""The benchmarks' clock, memory and load readings, without torch, and the ONNX Runtime worker.

``python -I timing.py REQUEST_JSON`` times one exported model in a fresh process that loads
``edgenext_dense/deploy/ort`` as a stand-alone package and never imports torch, so its peak
resident size is what a process serving the model needs; the result is its last line, JSON.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import runpy
import sys
import timeit
from typing import Any, Callable, Dict, List, Optional

import numpy as np

ORT_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "deploy", "ort")


def time_calls(
    fn: Callable[[], Any], warmup: int, runs: int, timer: Callable[[], float] = timeit.default_timer
) -> List[float]:
    """Milliseconds of each of ``runs`` single calls of ``fn()``, after ``warmup`` untimed calls.

    Args:
        fn (Callable[[], Any]): What to time.
        warmup (int): Untimed calls first.
        runs (int): Timed calls.
        timer (Callable[[], float]): The clock. Defaults to ``timeit.default_timer``.
    """
    # NOTE: not torch.utils.benchmark.Timer: it averages blocks of calls of its own choosing,
    # and this worker has no torch.
    times = timeit.Timer(fn, timer=timer).repeat(warmup + runs, number=1)
    return [1e3 * t for t in times[warmup:]]


def rss_mb(peak: bool = True) -> Optional[float]:
    """This process's peak (``VmHWM``) or current (``VmRSS``) resident size in MiB; None off Linux.

    Not ``ru_maxrss``: across fork + exec it keeps the parent's high-water mark.
    """
    if not osp.isfile("/proc/self/status"):
        return None
    key = "VmHWM:" if peak else "VmRSS:"
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024


def load_average() -> List[float]:
    """The 1, 5 and 15-minute load averages, rounded; empty where the OS has none."""
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []


def time_session(open_model: Callable[..., Any], request: Dict[str, Any]) -> List[float]:
    """Latencies (ms) of an exported model on a random batch (see :func:`time_calls`).

    Args:
        open_model (Callable): ``edgenext_dense.deploy.ort.open_model``.
        request (dict): ``open_model``'s ``path`` (input ``images``), ``backend``,
            ``precision``, ``threads``, ``providers``; ``batch_size``, ``input_size``,
            ``warmup``, ``runs``.
    """
    r = request
    session = open_model(r["path"], r["backend"], r["precision"], r["threads"], r["providers"])
    shape = (r["batch_size"], 3, *r["input_size"])
    feed = {"images": np.random.default_rng(0).standard_normal(shape, np.float32)}
    return time_calls(lambda: session.run(None, feed), r["warmup"], r["runs"])


def _worker(request: Dict[str, Any]) -> Dict[str, Any]:
    import onnxruntime  # noqa: F401  (part of rss_before_mb, as torch is for PyTorch)

    if request.get("backend") == "openvino":
        import openvino  # noqa: F401

    runtime = runpy.run_path(osp.join(ORT_DIR, "standalone.py"))["load_runtime"]()
    rss_before = rss_mb(peak=False)
    times = time_session(runtime.open_model, request)
    return dict(times_ms=times, rss_before_mb=rss_before, peak_memory_mb=rss_mb())


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))), flush=True)
