"""Latency, images/s and peak memory in eager PyTorch and ONNX Runtime, beside the references.

    # our detector and segmentor at their paper sizes, the backbone at 256x256, 2 threads,
    # next to mmdet's SSDLite-MobileNetV2 and mmseg's DeepLabv3-MobileNetV2
    python tools/analysis/benchmark.py configs/det/ssdlite_edgenext-s_4xb32-200e_coco-320.py \
        configs/seg/deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py --backbone small \
        --threads 2 --compare --rounds 3 --json bench.json --markdown bench.md

What is timed and how memory is measured: ``edgenext_dense/analysis/benchmark.py``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import mmengine
import torch

from edgenext_dense.analysis import benchmark, benchmark_report
from edgenext_dense.analysis.timing import load_average
from edgenext_dense.engine import PreflightError


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", help="configs/det/*.py or configs/seg/*.py")
    parser.add_argument(
        "--backbone",
        nargs="+",
        default=[],
        metavar="ARCH",
        help="EdgeNeXt backbones to measure (xx_small, x_small, small, base)",
    )
    parser.add_argument(
        "--shape",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="input size for every model (default: backbones 256x256, detectors their test "
        "resize, segmentors their training crop)",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default cpu")
    parser.add_argument(
        "--runtimes",
        nargs="+",
        default=["pytorch", "onnxruntime"],
        choices=benchmark.RUNTIMES,
        help="default: pytorch onnxruntime; pytorch-amp runs eager under torch.autocast "
        "(float16 on CUDA, bfloat16 on CPU)",
    )
    for flag, default, text in (
        ("--batch-size", 1, "images per call"),
        ("--threads", 2, "threads per runtime"),
        ("--warmup", 5, "untimed calls"),
        ("--runs", 20, "timed calls per round"),
        ("--rounds", 1, "measure every model/runtime this many times, interleaved"),
    ):
        parser.add_argument(flag, type=int, default=default, help=f"{text} (default {default})")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also measure, at the same input size, mmpretrain's EdgeNeXt beside each backbone, "
        "mmdet's SSDLite-MobileNetV2 beside a detector, mmseg's DeepLabv3-MobileNetV2-D8 beside "
        "a segmentor, and print the latency ratios",
    )
    parser.add_argument(
        "--no-isolate", action="store_true", help="measure in this process (no peak memory)"
    )
    parser.add_argument("--json", help="write the results as JSON here")
    parser.add_argument("--markdown", help="write the table as Markdown here")
    args = parser.parse_args(argv)
    if not args.configs and not args.backbone:
        parser.error("give at least one config or --backbone ARCH")
    for name in ("batch_size", "threads", "runs", "rounds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to torch here")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Measure, print the table, write the JSON and Markdown; 1 on a bad target."""
    args = parse_args(argv)
    try:
        targets = [benchmark.backbone_target(a, args.shape) for a in args.backbone]
        targets += [benchmark.config_target(c, args.shape) for c in args.configs]
        if args.compare:
            targets += benchmark.reference_targets(targets)
    except (ValueError, PreflightError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    machine = benchmark_report.machine_info()
    settings = {k: getattr(args, k) for k in ("batch_size", "threads", "device", "warmup")}
    settings.update(runs=args.runs, rounds=args.rounds)
    measurements = benchmark.run_benchmark(
        targets,
        runtimes=args.runtimes,
        isolate=not args.no_isolate,
        log=lambda msg: print(msg, file=sys.stderr),
        **settings,
    )
    machine["load_after"] = (load_average() or [None])[0]
    if args.device == "cuda":
        memory = "torch.cuda.max_memory_allocated (PyTorch only)"
    elif args.no_isolate:
        memory = "not measured (--no-isolate)"
    else:
        memory = "peak RSS (VmHWM) of a fresh process per measurement"
    print(benchmark_report.format_table(measurements), end="")
    print(f"peak memory: {memory}")
    if args.json:
        report = dict(
            machine=machine,
            settings=dict(settings, isolated=not args.no_isolate, memory=memory),
            results=[m.row() for m in measurements],
            ratios=benchmark_report.ratios(measurements),
        )
        mmengine.dump(report, args.json, file_format="json", indent=2)
    if args.markdown:
        mmengine.put_text(benchmark_report.format_table(measurements, machine), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
