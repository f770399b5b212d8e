"""Our eager EdgeNeXt, as built and fuse()d, against mmpretrain's, call by call, in one process.

    # XXS at 256x256 on 2 threads, 400 rounds of one call each, in a shuffled order
    python tools/analysis/compare_backbone.py --arch xx_small --shape 256 256 --threads 2
    # one thread, timed by its CPU time (what the thread did, not when it waited)
    python tools/analysis/compare_backbone.py --arch xx_small --threads 1 --clock thread

Prints each model's median latency and its paired ratio to mmpretrain's (median and quartiles
of the per-round ratios); ``edgenext_dense/analysis/paired_timing.py`` says why this way.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Dict, Optional, Sequence

import torch

from edgenext_dense.analysis.mmpretrain_reference import build_mmpretrain_edgenext
from edgenext_dense.analysis.paired_timing import CLOCKS, paired_ratio, time_paired
from edgenext_dense.models.backbones import EdgeNeXt, resolve_arch

REFERENCE = "mmpretrain"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="xx_small", help="xx_small, x_small, small or base")
    parser.add_argument("--shape", type=int, nargs=2, default=(256, 256), metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=2, help="default 2")
    parser.add_argument("--rounds", type=int, default=400, help="default 400")
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls (default 10)")
    parser.add_argument(
        "--clock",
        default="wall",
        choices=sorted(CLOCKS),
        help="wall (default) or thread: the CPU time of the timing thread, with --threads 1 only",
    )
    args = parser.parse_args(argv)
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread times only the calling thread: use it with --threads 1")
    if min(args.threads, args.rounds, *args.shape) < 1:
        parser.error("--threads, --rounds and --shape must be positive")
    return args


def build_models(arch: str) -> Dict[str, torch.nn.Module]:
    """Ours as built, ours fused (same weights) and mmpretrain's, all returning stage 4."""
    ours = EdgeNeXt(arch=arch, out_indices=(3,)).eval()
    fused = EdgeNeXt(arch=arch, out_indices=(3,)).eval()
    fused.load_state_dict(ours.state_dict())
    return {"ours": ours, "ours, fuse()d": fused.fuse(), REFERENCE: build_mmpretrain_edgenext(arch)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Time the three models and print the table."""
    args = parse_args(argv)
    arch = resolve_arch(args.arch)
    torch.set_num_threads(args.threads)
    models = build_models(arch)
    x = torch.randn(1, 3, *args.shape)
    with torch.inference_mode():
        times = time_paired(
            {name: (lambda m=m: m(x)) for name, m in models.items()},
            rounds=args.rounds,
            warmup=args.warmup,
            clock=args.clock,
        )
    print(
        f"EdgeNeXt {arch} at {args.shape[0]}x{args.shape[1]}, {args.threads} thread(s), "
        f"{args.rounds} rounds, {args.clock} clock"
    )
    print(f"| model | median ms | / {REFERENCE}, median of the rounds (quartiles) |")
    print("|---|---|---|")
    for name, series in times.items():
        r = paired_ratio(series, times[REFERENCE])
        ratio = f"{r['median']:.3f} ({r['q1']:.3f}-{r['q3']:.3f})"
        print(f"| {name} | {statistics.median(series):.2f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
