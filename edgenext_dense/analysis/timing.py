"""The benchmark's clock and memory readings, without torch, and its ONNX Runtime worker.

``python -I timing.py REQUEST_JSON`` times one exported model in a fresh process that loads
``edgenext_dense/deploy/ort`` as a stand-alone package and never imports torch, so the peak
resident size it reports is what a process serving the model with onnxruntime needs; it prints
the result as its last line, JSON. :mod:`edgenext_dense.analysis.benchmark` starts it.
"""

from __future__ import annotations

import importlib.util
import json
import os.path as osp
import sys
import timeit
from typing import Any, Callable, Dict, List, Optional, Sequence

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
        timer (Callable[[], float]): The clock; ``torch.utils.benchmark.timer`` synchronises
            an accelerator first. Defaults to ``timeit.default_timer``.

    Returns:
        list[float]: One latency per call, in ms.
    """
    # NOTE: timeit's single-call repeats (the loop inside torch.utils.benchmark.Timer), not Timer:
    # it averages blocks of calls of its own choosing, and the ONNX Runtime worker has no torch.
    times = timeit.Timer(fn, timer=timer).repeat(warmup + runs, number=1)
    return [1e3 * t for t in times[warmup:]]


def rss_mb(peak: bool = True) -> Optional[float]:
    """This process's peak (``VmHWM``) or current (``VmRSS``) resident size in MiB; None off Linux.

    ``ru_maxrss`` is not used: across fork + exec it keeps the parent's high-water mark.
    """
    if not osp.isfile("/proc/self/status"):
        return None
    key = "VmHWM:" if peak else "VmRSS:"
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) / 1024


def time_session(
    open_model: Callable[..., Any],
    path: str,
    batch_size: int,
    input_size: Sequence[int],
    threads: int,
    warmup: int,
    runs: int,
    providers: Sequence[str],
    backend: str = "onnxruntime",
    precision: str = "fp32",
    input_name: str = "images",
) -> List[float]:
    """Latencies (ms) of an exported model on a random batch (see :func:`time_calls`).

    Args:
        open_model (Callable): ``edgenext_dense.deploy.ort.open_model``.
        path (str): The ``.onnx`` file.
        batch_size (int): Images per call.
        input_size (Sequence[int]): ``(H, W)``.
        threads (int): Threads one inference may use.
        warmup (int): Untimed runs.
        runs (int): Timed runs.
        providers (Sequence[str]): ONNX Runtime execution providers.
        backend (str): ``'onnxruntime'`` or ``'openvino'``. Defaults to ``'onnxruntime'``.
        precision (str): ``'fp32'``, ``'bf16'`` or ``'int8'``. Defaults to ``'fp32'``.
        input_name (str): The graph's input. Defaults to ``'images'``.

    Returns:
        list[float]: One latency per run, in ms.
    """
    session = open_model(path, backend, precision, threads, providers)
    batch = np.random.default_rng(0).standard_normal((batch_size, 3, *input_size), np.float32)
    feed = {input_name: batch}
    return time_calls(lambda: session.run(None, feed), warmup, runs)


def _worker(request: Dict[str, Any]) -> Dict[str, Any]:
    import onnxruntime  # noqa: F401  (part of rss_before_mb, as torch is for PyTorch)

    if request.get("backend") == "openvino":
        import openvino  # noqa: F401

    spec = importlib.util.spec_from_file_location(
        "edgenext_dense_ort", osp.join(ORT_DIR, "__init__.py"), submodule_search_locations=[ORT_DIR]
    )
    sys.modules[spec.name] = runtime = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runtime)
    rss_before = rss_mb(peak=False)
    times = time_session(runtime.open_model, **request)
    return dict(times_ms=times, rss_before_mb=rss_before, peak_memory_mb=rss_mb())


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))), flush=True)
