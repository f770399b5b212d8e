"""Latency and peak memory of an ONNX Runtime session, without PyTorch.

Used by ``tools/analysis/benchmark.py`` (:mod:`edgenext_dense.analysis.benchmark`), which runs
:func:`time_session` in a fresh process that loads this folder as a stand-alone package, so
that the peak resident set size it reports is what a deployment process holding only numpy
and onnxruntime needs. Eager PyTorch is timed by the same loop, :func:`time_callable`, so that
the two runtimes' figures compare like with like.

Memory is the process's peak resident set size as the kernel tracks it (``VmHWM``, see
:func:`peak_rss_mb`): the interpreter, the libraries, the weights and the activations together,
a high-water mark, so nothing is missed between samples. ``rss_before_mb`` is the resident size
just before the session is created (after the imports).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB.

    On Linux this is ``VmHWM`` of ``/proc/self/status``, the high-water mark of this
    process's own memory. ``resource.getrusage``'s ``ru_maxrss`` is not used there: across
    ``fork``/``vfork`` + ``exec`` it keeps the parent's high-water mark, so a worker started
    by a process holding torch would report torch's memory too. Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return peak / 1024.0 if sys.platform != "darwin" else peak / 2**20


def current_rss_mb() -> float:
    """The process's current resident set size in MiB (``/proc/self/statm``; else the peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def time_callable(fn: Any, warmup: int, runs: int, sync: Optional[Any] = None) -> List[float]:
    """Milliseconds of ``runs`` calls of ``fn()`` after ``warmup`` untimed calls.

    Args:
        fn (Callable[[], Any]): What to time.
        warmup (int): Untimed calls first.
        runs (int): Timed calls.
        sync (Callable[[], None], optional): Called after each call inside the timing (e.g.
            ``torch.cuda.synchronize``). Defaults to None.

    Returns:
        list[float]: One latency per timed call, in ms.
    """
    for _ in range(warmup):
        fn()
    if sync is not None:
        sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def time_session(
    path: str,
    batch_size: int,
    input_size: Sequence[int],
    threads: int,
    warmup: int,
    runs: int,
    device: str = "cpu",
) -> Dict[str, Any]:
    """Time an exported model on random input.

    Args:
        path (str): The ``.onnx`` file.
        batch_size (int): Batch size of the input.
        input_size (Sequence[int]): ``(H, W)``.
        threads (int): ``intra_op_num_threads``.
        warmup (int): Untimed runs first (the first runs allocate and tune).
        runs (int): Timed runs.
        device (str): ``'cpu'`` or ``'cuda'`` (CUDAExecutionProvider). Defaults to ``'cpu'``.

    Returns:
        dict: ``times_ms`` (list), ``rss_before_mb`` and ``peak_memory_mb`` (peak RSS).

    Raises:
        RuntimeError: When ``device='cuda'`` and onnxruntime has no CUDA provider.
    """
    import onnxruntime as ort

    from .backends import create_session

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise RuntimeError(
                "onnxruntime has no CUDAExecutionProvider here (available: "
                f"{ort.get_available_providers()}): install onnxruntime-gpu to benchmark "
                "ONNX Runtime on CUDA"
            )
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    rss_before = current_rss_mb()
    session = create_session(path, threads=threads, providers=providers)
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(0)
    h, w = int(input_size[0]), int(input_size[1])
    batch = rng.standard_normal((batch_size, 3, h, w), dtype=np.float32)
    times = time_callable(lambda: session.run(None, {name: batch}), warmup, runs)
    return dict(
        times_ms=times,
        rss_before_mb=rss_before,
        peak_memory_mb=peak_rss_mb(),
    )
