"""Latency, images/s and peak memory of our models and the references, PyTorch and exported.

Behind ``tools/analysis/benchmark.py``. Every runtime runs the same graph
(:mod:`edgenext_dense.deploy.graphs`, random seeded weights): a backbone's last map, a
detector's detections (NMS included), a segmentor's logits. Each measurement is ``warmup``
untimed calls then ``runs`` single timed calls; with ``rounds > 1`` every model/runtime pair is
measured once per round in a rotated order, so that load from other jobs falls on all alike
(``spread``: range of the round medians over the median). With ``isolate`` each measurement runs
in a fresh process and reports its peak RSS (the ONNX Runtime one never imports torch); on CUDA,
PyTorch reports ``torch.cuda.max_memory_allocated``. Ratios set each runtime beside eager
PyTorch and each reference beside our model, on the medians and on the minimums.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.utils.benchmark

from edgenext_dense.analysis import timing
from edgenext_dense.deploy.export import export_onnx, fuse_for_inference
from edgenext_dense.deploy.graph_modules import BackboneGraph
from edgenext_dense.deploy.graphs import (
    DeployModel,
    config_input_size,
    config_task,
    deploy_from_config,
    pipeline_resize,
)
from edgenext_dense.deploy.quantize import quantize_dynamic_int8, quantize_static_int8
from edgenext_dense.engine.config import load_config
from edgenext_dense.models.backbones import EdgeNeXt, resolve_arch

# exported runtimes: (backend, precision, file: the float32 export or its int8 quantisation);
# static int8 is calibrated on random inputs: its speed does not depend on the ranges
EXPORTED = {
    "onnxruntime": ("onnxruntime", "fp32", "fp32"),
    "onnxruntime-int8": ("onnxruntime", "int8", "dynamic"),
    "onnxruntime-int8-static": ("onnxruntime", "int8", "static"),
    "openvino": ("openvino", "fp32", "fp32"),
    "openvino-bf16": ("openvino", "bf16", "fp32"),
    "openvino-int8": ("openvino", "int8", "static"),
    "openvino-int8-bf16": ("openvino", "bf16", "static"),  # what the int8 file leaves in bf16
}
RUNTIMES = ("pytorch", "pytorch-fused", "pytorch-amp", *EXPORTED)
MMDET_SSDLITE = "mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py"
MMSEG_DEEPLABV3 = "mmseg::mobilenet_v2/mobilenet-v2-d8_deeplabv3_4xb4-160k_ade20k-512x512.py"
COLUMNS = ("model", "runtime", "input", "threads", "median ms", "min ms", "max ms", "img/s")
COLUMNS += ("peak mem MB", "spread", "vs eager", "vs eager (min)")


def cell(value: Any, fmt: str) -> str:
    """A table cell: ``value`` formatted, ``'-'`` for None."""
    return "-" if value is None else format(value, fmt)


# --------------------------------------------------------------------------- what is measured
@dataclass(frozen=True)
class Target:
    """One model to measure: ``kind`` ``'backbone'``, ``'mmpretrain'`` (mmpretrain's EdgeNeXt) or
    ``'config'``; ``source`` its arch or det/seg config; ``input_size`` ``(H, W)``; ``group``
    (``'backbone:ARCH'``, ``'det'``, ``'seg'``) what a reference is set beside; ``role``
    ``'ours'`` or ``'reference'``; ``cfg_options`` config overrides, as pairs."""

    name: str
    kind: str
    source: str
    input_size: Tuple[int, int]
    group: str
    role: str = "ours"
    cfg_options: Tuple[Tuple[str, Any], ...] = ()


def backbone_target(arch: str, input_size: Optional[Sequence[int]] = None) -> Target:
    """An EdgeNeXt backbone (its last stage's map), in the group ``'backbone:ARCH'``.

    Args:
        arch (str): EdgeNeXt arch (``'small'``, ``'xx_small'``, ``'s'``...).
        input_size (Sequence[int], optional): ``(H, W)``. Defaults to None (256x256).
    """
    arch = resolve_arch(arch)
    short = {"xx_small": "XXS", "x_small": "XS", "small": "S", "base": "B"}[arch]
    size = (256, 256) if input_size is None else (int(input_size[0]), int(input_size[1]))
    return Target(f"EdgeNeXt-{short} backbone", "backbone", arch, size, f"backbone:{arch}")


def config_target(config: str, input_size: Optional[Sequence[int]] = None) -> Target:
    """A detector or segmentor config, named after its file.

    Args:
        config (str): Config path (``mmdet::``/``mmseg::`` prefixes allowed).
        input_size (Sequence[int], optional): ``(H, W)``. Defaults to None: the detector's test
            resize, the segmentor's training crop.
    """
    cfg = load_config(config)
    task = config_task(cfg)
    if input_size is None:
        size = config_input_size(cfg, task, pipeline_resize(cfg, task))
    else:
        size = (int(input_size[0]), int(input_size[1]))
    name = osp.splitext(osp.basename(config.split("::")[-1]))[0]
    return Target(name, "config", config, size, task)


def reference_targets(targets: Sequence[Target]) -> List[Target]:
    """What a user would pick instead, at the input size of each of our models: mmpretrain's
    EdgeNeXt of the same arch, mmdet's SSDLite-MobileNetV2, mmseg's DeepLabv3-MobileNetV2 (21
    classes).

    Args:
        targets (Sequence[Target]): Our backbones and det/seg configs.

    Raises:
        ValueError: When nothing can be compared, or mmpretrain is missing for a backbone.
    """
    from edgenext_dense.analysis import mmpretrain_reference as mmpretrain

    refs = []
    for ours in (t for t in targets if t.kind == "backbone" and t.role == "ours"):
        if not mmpretrain.mmpretrain_available():
            raise ValueError(
                f"--compare sets {ours.name} beside mmpretrain's EdgeNeXt, which is not "
                f"installed: {mmpretrain.INSTALL_HINT}"
            )
        name = ours.name.replace(" backbone", " (mmpretrain)")
        ref = Target(name, "mmpretrain", ours.source, ours.input_size, ours.group, "reference")
        refs += [ref] if ref not in refs else []
    seg_classes = (("model.auxiliary_head.num_classes", 21), ("model.decode_head.num_classes", 21))
    for group, config, name, options in (
        ("det", MMDET_SSDLITE, "SSDLite MobileNetV2 (mmdet)", ()),
        ("seg", MMSEG_DEEPLABV3, "DeepLabv3 MobileNetV2-D8 (mmseg)", seg_classes),
    ):
        ours = next((t for t in targets if t.group == group and t.role == "ours"), None)
        if ours is not None:
            load_config(config, dict(options))  # a missing reference config fails here
            refs.append(
                Target(name, "config", config, ours.input_size, group, "reference", options)
            )
    if not refs:
        raise ValueError(
            "--compare needs a backbone or a detection/segmentation config to set beside "
            "mmpretrain's EdgeNeXt, mmdet's SSDLite-MobileNetV2 or mmseg's DeepLabv3-MobileNetV2"
        )
    return refs


def build_deploy(target: Target) -> DeployModel:
    """``target``'s graph with random weights (seeded), in eval mode: what both runtimes run."""
    torch.manual_seed(0)
    if target.kind == "config":
        with contextlib.redirect_stdout(sys.stderr):
            options = dict(target.cfg_options) or None
            return deploy_from_config(target.source, None, target.input_size, options)
    if target.kind == "mmpretrain":
        from edgenext_dense.analysis.mmpretrain_reference import build_mmpretrain_edgenext

        backbone = build_mmpretrain_edgenext(target.source, out_indices=(3,))
    else:
        backbone = EdgeNeXt(arch=target.source, out_indices=(3,)).eval()
    graph = BackboneGraph(backbone).eval()
    return DeployModel(graph, "backbone", target.input_size, ("feat3",), False)


# --------------------------------------------------------------------------- measuring
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
    """Time the eager graph on a random batch, in this process: ``times_ms`` and, on CUDA,
    ``peak_memory_mb``.

    Args:
        deploy (DeployModel): The graph.
        batch_size (int): Images per call.
        threads (int): ``torch.set_num_threads``.
        warmup (int): Untimed calls.
        runs (int): Timed calls.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        fuse (bool): Fold EdgeNeXt's inference constants first. Defaults to False.
        amp (bool): Run under ``torch.autocast``: float16 on CUDA, bfloat16 on CPU, weights
            and input float32 (mixed-precision serving). Defaults to False.
    """
    torch.set_num_threads(threads)
    graph = deploy.graph.eval().to(device)
    if fuse:  # on a copy: the eager runtime may time the same graph next
        graph = fuse_for_inference(copy.deepcopy(graph))
    x = torch.randn(batch_size, 3, *deploy.input_size, device=device)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    dtype = torch.float16 if cuda else torch.bfloat16
    with torch.inference_mode(), torch.autocast(torch.device(device).type, dtype, enabled=amp):
        # torch.utils.benchmark.timer synchronises CUDA before reading the clock
        times = timing.time_calls(lambda: graph(x), warmup, runs, torch.utils.benchmark.timer)
    if cuda:
        return dict(times_ms=times, peak_memory_mb=torch.cuda.max_memory_allocated() / 2**20)
    return dict(times_ms=times)


def _pytorch_worker(request: Dict[str, Any]) -> Dict[str, Any]:
    """The fresh-process PyTorch measurement (``python -m edgenext_dense.analysis.benchmark``)."""
    target = Target(**request.pop("target"))  # JSON made its tuples lists: fine for building
    rss_before = timing.rss_mb(peak=False)
    torch.set_num_interop_threads(1)
    result = time_pytorch(build_deploy(target), **request)
    if not request["device"].startswith("cuda"):
        result.update(peak_memory_mb=timing.rss_mb(), rss_before_mb=rss_before)
    return result


def _onnx_providers(device: str) -> List[str]:
    import onnxruntime as ort

    if not device.startswith("cuda"):
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise RuntimeError(
            "onnxruntime has no CUDAExecutionProvider here (available: "
            f"{ort.get_available_providers()}): install onnxruntime-gpu to benchmark ONNX "
            "Runtime on CUDA"
        )
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


@dataclass
class Measurement:
    """The timings of one model in one runtime (:data:`RUNTIMES`), all rounds together; the
    peak memory is the RSS (CPU, isolated) or the CUDA allocation, ``rss_before_mb`` the
    resident size after the imports."""

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

    def row(self) -> Dict[str, Any]:
        """A flat JSON-ready record; ``spread`` is None with one round."""
        h, w = self.target.input_size
        rounds = self.round_medians_ms
        spread = (max(rounds) - min(rounds)) / self.median_ms if len(rounds) > 1 else None
        rounded = lambda v, n: None if v is None else round(v, n)  # noqa: E731
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
            images_per_s=round(1e3 * self.batch_size / self.median_ms, 2),
            peak_memory_mb=rounded(self.peak_memory_mb, 1),
            rss_before_mb=rounded(self.rss_before_mb, 1),
            runs=len(self.times_ms),
            rounds=len(rounds),
            round_medians_ms=[round(t, 3) for t in rounds],
            spread=rounded(spread, 4),
        )


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
    log: Optional[Callable[[str], None]] = None,
) -> List[Measurement]:
    """Measure every target in every runtime, round after round: one :class:`Measurement` per
    (target, runtime), in target then runtime order.

    Args:
        targets (Sequence[Target]): The models.
        runtimes (Sequence[str]): Among :data:`RUNTIMES`. Defaults to pytorch, onnxruntime.
        batch_size (int): Images per call. Defaults to 1.
        threads (int): Threads per runtime (PyTorch's and OpenMP's; ONNX Runtime's intra-op,
            one inter-op). Defaults to 2.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        warmup (int): Untimed calls per round. Defaults to 5.
        runs (int): Timed calls per round. Defaults to 20.
        rounds (int): Rounds (each measures every pair once, order rotated). Defaults to 1.
        isolate (bool): A fresh process per measurement (peak memory). Defaults to True.
        work_dir (str, optional): For the ONNX files. Defaults to None (a temporary folder).
        log (Callable[[str], None], optional): Progress messages. Defaults to None.

    Raises:
        ValueError: For an unknown runtime, non-positive counts or OpenVINO on CUDA.
    """
    unknown = [r for r in runtimes if r not in RUNTIMES]
    if unknown:
        raise ValueError(f"unknown runtimes {unknown}; choose from {RUNTIMES}")
    if min(batch_size, threads, runs, rounds) < 1 or warmup < 0:
        raise ValueError(
            "batch_size, threads, runs and rounds must be at least 1 and warmup at least 0, "
            f"got {batch_size}, {threads}, {runs}, {rounds}, {warmup}"
        )
    if device.startswith("cuda") and any(r.startswith("openvino") for r in runtimes):
        raise ValueError("OpenVINO runs on the CPU here: leave the openvino runtimes out with cuda")
    log = log or (lambda msg: None)
    common = dict(batch_size=batch_size, threads=threads, warmup=warmup, runs=runs)
    pairs = [(t, r) for t in targets for r in runtimes]
    results = {p: Measurement(p[0], p[1], batch_size, threads, device) for p in pairs}
    kinds = {EXPORTED[r][2] for r in runtimes if r in EXPORTED}
    providers = _onnx_providers(device) if kinds else []
    cache = {t: build_deploy(t) for t in targets} if kinds or not isolate else {}
    onnx_paths: Dict[Tuple[Target, str], str] = {}

    def measure(target: Target, runtime: str) -> Dict[str, Any]:
        """One round of one pair: ``times_ms`` and the memory fields."""
        if runtime in EXPORTED:
            backend, precision, kind = EXPORTED[runtime]
            request = dict(common, path=onnx_paths[(target, kind)], providers=providers)
            request.update(input_size=target.input_size, backend=backend, precision=precision)
            if not isolate:
                from edgenext_dense.deploy.ort import open_model

                return dict(times_ms=timing.time_session(open_model, request))
            command = [sys.executable, "-I", timing.__file__]
        else:
            request = dict(common, device=device, fuse=runtime == "pytorch-fused")
            request.update(amp=runtime == "pytorch-amp")
            if not isolate:
                return time_pytorch(cache[target], **request)
            request.update(target=asdict(target))
            command = [sys.executable, "-m", "edgenext_dense.analysis.benchmark"]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        proc = subprocess.run(
            [*command, json.dumps(request)], capture_output=True, text=True, env=env
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"the benchmark worker failed ({proc.returncode}): {proc.stderr[-3000:]}"
            )
        return json.loads(proc.stdout.splitlines()[-1])  # the worker's last line

    with contextlib.ExitStack() as stack:
        folder = work_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_"))
        for i, target in enumerate(targets if kinds else []):
            log(f"exporting {target.name} ({target.input_size[0]}x{target.input_size[1]})")
            stem = osp.join(folder, f"model_{i}")
            path = export_onnx(cache[target], f"{stem}.onnx", batch_size=batch_size)
            onnx_paths[(target, "fp32")] = path
            if "dynamic" in kinds:
                onnx_paths[(target, "dynamic")] = quantize_dynamic_int8(path, f"{stem}_int8.onnx")
            if "static" in kinds:
                shape = (batch_size, 3, *target.input_size)
                batch = np.random.default_rng(0).standard_normal(shape, np.float32)
                static = quantize_static_int8(path, f"{stem}_int8_static.onnx", [batch], 1)
                onnx_paths[(target, "static")] = static
        for r in range(rounds):
            shift = r % len(pairs)
            for target, runtime in pairs[shift:] + pairs[:shift]:
                log(f"round {r + 1}/{rounds}: {target.name} / {runtime}")
                out = measure(target, runtime)
                m = results[(target, runtime)]
                m.times_ms += out["times_ms"]
                m.round_medians_ms.append(statistics.median(out["times_ms"]))
                if out.get("peak_memory_mb") is not None:
                    m.peak_memory_mb = max(m.peak_memory_mb or 0.0, out["peak_memory_mb"])
                m.rss_before_mb = out.get("rss_before_mb", m.rss_before_mb)
    return [results[p] for p in pairs]


if __name__ == "__main__":
    print(json.dumps(_pytorch_worker(json.loads(sys.argv[1]))), flush=True)
