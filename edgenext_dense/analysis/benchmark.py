"""Latency, throughput and peak memory of our models and the references, PyTorch and ONNX Runtime.

Behind ``tools/analysis/benchmark.py`` (its command line is
:mod:`edgenext_dense.analysis.benchmark_cli`). What is measured, for each model and runtime:

- **what runs**: the network from the normalised input batch to its outputs, the same graph in
  both runtimes (:mod:`edgenext_dense.deploy.graphs`): a backbone's maps; a detector's final
  detections (its NMS is in the graph); a segmentor's logits at the input size. Weights are
  random (speed depends on them only through the number of boxes that reach NMS).
- **latency**: ``warmup`` untimed calls, then ``runs`` timed calls (``time.perf_counter``;
  ``torch.cuda.synchronize`` on CUDA); median, min and max in ms; images/s is
  ``batch_size / median``. With ``rounds > 1`` every model/runtime pair is measured once per
  round, the pairs in a rotated order, so that load from other jobs on a shared machine falls
  on all of them alike; ``spread`` is the range of the per-round medians over their median.
- **runtimes**: ``pytorch`` (eager, as trained), ``pytorch-fused`` (after
  ``EdgeNeXt.fuse()``), ``pytorch-amp`` (eager under ``torch.autocast``: float16 on CUDA,
  bfloat16 on CPU; :func:`amp_dtype`), ``onnxruntime`` (the exported float32 graph) and
  ``onnxruntime-int8`` (its dynamic int8 quantisation, :mod:`edgenext_dense.deploy.quantize`).
- **threads**: ``torch.set_num_threads(threads)`` (and ``OMP_NUM_THREADS``) for PyTorch,
  ``intra_op_num_threads=threads`` (one inter-op thread, sequential execution) for ONNX
  Runtime.
- **peak memory** (CPU): each measurement runs in a fresh Python process (unless
  ``isolate=False``) and reports its peak resident set size (Linux ``VmHWM``, the kernel's
  high-water mark; ``ru_maxrss`` would include the parent's, see
  :func:`edgenext_dense.deploy.ort.timing.peak_rss_mb`): interpreter, libraries, weights and
  activations together, what a process serving the model needs. The PyTorch process imports
  torch and the OpenMMLab stack; the ONNX Runtime process only numpy, OpenCV and onnxruntime.
  ``rss_before_mb`` is the resident size after the imports, before the model is built. On
  CUDA, PyTorch reports ``torch.cuda.max_memory_allocated`` instead.

What is measured (the targets, and the references ``--compare`` adds) is defined in
:mod:`edgenext_dense.analysis.bench_targets`; the ratios and tables are made in
:mod:`edgenext_dense.analysis.report`.
"""

from __future__ import annotations

import contextlib
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from edgenext_dense.analysis.bench_targets import (
    Target,
    build_deploy,
)
from edgenext_dense.analysis.report import (
    Measurement,
)
from edgenext_dense.deploy import ort
from edgenext_dense.deploy.export import export_onnx, fuse_for_inference
from edgenext_dense.deploy.graphs import DeployModel
from edgenext_dense.deploy.ort import timing
from edgenext_dense.deploy.quantize import quantize_dynamic_int8

RUNTIMES = ("pytorch", "pytorch-fused", "pytorch-amp", "onnxruntime", "onnxruntime-int8")
ORT_DIR = Path(ort.__file__).resolve().parent
# The fresh-process measurements print their result as one JSON line after this prefix (the
# libraries may print too).
RESULT_PREFIX = "EDGENEXT_BENCHMARK_RESULT "
# The ONNX Runtime measurement, ``python -c _ORT_WORKER ORT_DIR REQUEST_JSON``: loads
# edgenext_dense/deploy/ort as a stand-alone package, so that the measured process never
# imports torch (edgenext_dense/__init__.py does).
_ORT_WORKER = f"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location(
    "edgenext_dense_ort", sys.argv[1] + "/__init__.py", submodule_search_locations=[sys.argv[1]]
)
sys.modules["edgenext_dense_ort"] = module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from edgenext_dense_ort.timing import time_session
print({RESULT_PREFIX!r} + json.dumps(time_session(**json.loads(sys.argv[2]))), flush=True)
"""

__all__ = ["RUNTIMES", "amp_dtype", "run_benchmark", "time_pytorch"]


def amp_dtype(device: str) -> torch.dtype:
    """The autocast dtype of the ``pytorch-amp`` runtime on ``device``.

    Args:
        device (str): ``'cpu'`` or ``'cuda'`` (``'cuda:N'``).

    Returns:
        torch.dtype: ``torch.float16`` on CUDA (what mixed-precision inference there uses),
        ``torch.bfloat16`` on CPU (the only reduced precision CPU autocast runs).
    """
    return torch.float16 if device.startswith("cuda") else torch.bfloat16


def time_pytorch(
    deploy: DeployModel,
    batch_size: int,
    threads: int,
    warmup: int,
    runs: int,
    device: str = "cpu",
    fuse: bool = False,
    amp: bool = False,
) -> Dict[str, Any]:
    """Time the eager graph on a random batch (in this process).

    Args:
        deploy (DeployModel): The graph.
        batch_size (int): Images per call.
        threads (int): ``torch.set_num_threads``.
        warmup (int): Untimed calls.
        runs (int): Timed calls.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        fuse (bool): Fold EdgeNeXt's inference constants first (``EdgeNeXt.fuse``).
            Defaults to False.
        amp (bool): Run under ``torch.autocast`` with :func:`amp_dtype` (weights and input
            stay float32, as in mixed-precision training and serving). Defaults to False.

    Returns:
        dict: ``times_ms`` and, on CUDA, ``peak_memory_mb`` (``max_memory_allocated``).
    """
    torch.set_num_threads(threads)
    graph = deploy.graph.eval().to(device)
    if fuse:
        fuse_for_inference(graph)
    x = torch.randn(batch_size, 3, *deploy.input_size, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    if sync is not None:
        torch.cuda.reset_peak_memory_stats()
    device_type = torch.device(device).type
    autocast = torch.autocast(device_type, dtype=amp_dtype(device), enabled=amp)
    # NOTE: not torch.utils.benchmark.Timer: it returns means over blocks of calls (we keep every
    # call for median/min/max) and its timeit() adds warm-up calls of its own; and the same loop
    # times ONNX Runtime in a process without torch.
    with torch.inference_mode(), autocast:
        times = timing.time_callable(lambda: graph(x), warmup, runs, sync)
    result: Dict[str, Any] = dict(times_ms=times)
    if sync is not None:
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def _run_worker(command: List[str], threads: int) -> Dict[str, Any]:
    """Run a measurement process and parse its result line."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    raise RuntimeError(
        f"the benchmark worker failed (exit {proc.returncode}): {proc.stderr[-3000:]}"
    )


def _measure_once(
    target: Target,
    runtime: str,
    onnx_path: Optional[str],
    settings: Dict[str, Any],
    isolate: bool,
    cache: Dict[Target, DeployModel],
) -> Dict[str, Any]:
    """One round of one model in one runtime: ``times_ms`` and the memory fields."""
    common = {k: settings[k] for k in ("batch_size", "threads", "warmup", "runs", "device")}
    if runtime.startswith("onnxruntime"):
        request = dict(path=onnx_path, input_size=list(target.input_size), **common)
        if not isolate:
            result = timing.time_session(**request)
            return dict(times_ms=result["times_ms"])
        command = [sys.executable, "-c", _ORT_WORKER, str(ORT_DIR), json.dumps(request)]
        return _run_worker(command, settings["threads"])
    flags = dict(fuse=runtime == "pytorch-fused", amp=runtime == "pytorch-amp")
    if not isolate:
        if target not in cache:
            cache[target] = build_deploy(target)
        return time_pytorch(cache[target], **flags, **common)
    request = json.dumps(dict(target=asdict(target), **flags, **common))
    command = [sys.executable, "-m", "edgenext_dense.analysis.benchmark", "--worker", request]
    return _run_worker(command, settings["threads"])


def _pytorch_worker(request_json: str) -> int:
    """Entry point of the fresh-process PyTorch measurement (``--worker JSON``)."""
    request = json.loads(request_json)
    fields = request.pop("target")  # JSON made its tuples lists
    fields["input_size"] = tuple(fields["input_size"])
    fields["cfg_options"] = tuple(tuple(kv) for kv in fields["cfg_options"])
    target = Target(**fields)
    rss_before = timing.current_rss_mb()
    torch.set_num_interop_threads(1)
    result = time_pytorch(build_deploy(target), **request)
    if not request["device"].startswith("cuda"):
        result.update(peak_memory_mb=timing.peak_rss_mb(), rss_before_mb=rss_before)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def run_benchmark(
    targets: Sequence[Target],
    runtimes: Sequence[str] = ("pytorch", "onnxruntime"),
    batch_size: int = 1,
    threads: int = 2,
    device: str = "cpu",
    warmup: int = 5,
    runs: int = 20,
    rounds: int = 1,
    isolate: bool = True,
    work_dir: Optional[str] = None,
    log: Any = None,
) -> List[Measurement]:
    """Measure every target in every runtime, round after round.

    Args:
        targets (Sequence[Target]): The models.
        runtimes (Sequence[str]): Among :data:`RUNTIMES`. Defaults to
            ``('pytorch', 'onnxruntime')``.
        batch_size (int): Images per call. Defaults to 1.
        threads (int): Threads per runtime. Defaults to 2.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        warmup (int): Untimed calls per round. Defaults to 5.
        runs (int): Timed calls per round. Defaults to 20.
        rounds (int): Rounds (each measures every pair once, order rotated). Defaults to 1.
        isolate (bool): A fresh process per measurement (honest peak memory, no thread pools
            shared between runtimes). Defaults to True.
        work_dir (str, optional): Where the ONNX files are written; None uses a temporary
            folder. Defaults to None.
        log (Callable[[str], None], optional): Progress messages. Defaults to None.

    Returns:
        list[Measurement]: One per (target, runtime), in target then runtime order.

    Raises:
        ValueError: For an unknown runtime or non-positive counts.
    """
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise ValueError(f"unknown runtimes {unknown}; choose from {RUNTIMES}")
    if min(batch_size, threads, runs, rounds) < 1 or warmup < 0:
        raise ValueError(
            "batch_size, threads, runs and rounds must be at least 1 and warmup at least 0, "
            f"got {batch_size}, {threads}, {runs}, {rounds}, {warmup}"
        )
    log = log or (lambda msg: None)
    settings = dict(batch_size=batch_size, threads=threads, warmup=warmup, runs=runs, device=device)
    pairs = [(t, r) for t in targets for r in runtimes]
    results = {p: Measurement(p[0], p[1], batch_size, threads, device) for p in pairs}
    cache: Dict[Target, DeployModel] = {}
    with contextlib.ExitStack() as stack:
        folder = work_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_"))
        onnx_paths: Dict[Tuple[Target, str], str] = {}
        if any(r.startswith("onnxruntime") for r in runtimes):
            for i, target in enumerate(targets):
                if target not in cache:
                    cache[target] = build_deploy(target)
                log(f"exporting {target.name} ({target.input_size[0]}x{target.input_size[1]})")
                path = export_onnx(
                    cache[target], osp.join(folder, f"model_{i}.onnx"), batch_size=batch_size
                )
                onnx_paths[(target, "onnxruntime")] = path
                if "onnxruntime-int8" in runtimes:
                    onnx_paths[(target, "onnxruntime-int8")] = quantize_dynamic_int8(
                        path, osp.join(folder, f"model_{i}_int8.onnx")
                    )
        for r in range(rounds):
            shift = r % len(pairs)
            for target, runtime in pairs[shift:] + pairs[:shift]:
                log(f"round {r + 1}/{rounds}: {target.name} / {runtime}")
                out = _measure_once(
                    target, runtime, onnx_paths.get((target, runtime)), settings, isolate, cache
                )
                m = results[(target, runtime)]
                m.times_ms.extend(out["times_ms"])
                m.round_medians_ms.append(statistics.median(out["times_ms"]))
                if out.get("peak_memory_mb") is not None:
                    m.peak_memory_mb = max(m.peak_memory_mb or 0.0, out["peak_memory_mb"])
                if out.get("rss_before_mb") is not None:
                    m.rss_before_mb = out["rss_before_mb"]
    return [results[p] for p in pairs]


if __name__ == "__main__":  # the fresh-process PyTorch measurement: ``-m ... --worker JSON``
    if len(sys.argv) != 3 or sys.argv[1] != "--worker":
        sys.exit("usage: python -m edgenext_dense.analysis.benchmark --worker JSON (internal)")
    sys.exit(_pytorch_worker(sys.argv[2]))
