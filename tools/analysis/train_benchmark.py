"""How far a training run gets and how fast: validation metrics per iteration, images/second.

    python tools/analysis/train_benchmark.py CONFIG [--work-dir DIR] [--val-interval K]
        [--cfg-options KEY=VALUE ...] [--warmup-iters N] [--compare] [--compare-iters N]
        [--json OUT.json]

    # the no-download detection demo, validating after every epoch, beside mmdet's
    # SSDLite-MobileNetV2 on the same batches
    python tools/analysis/train_benchmark.py \
        configs/det/ssdlite_edgenext-xxs_1xb16-16e_shapes-256.py \
        --val-interval 1 --compare --json work_dirs/train_benchmark/det.json

Trains exactly as tools/train.py does (work dir: work_dirs/train_benchmark/<config name>);
--val-interval counts epochs for epoch-based configs (det) and iterations for iteration-based
ones (seg). What is measured: edgenext_dense/analysis/train_benchmark.py.
"""

import argparse
import sys
from typing import Callable

import edgenext_dense  # noqa: F401  (registers modules, applies the compat fixes)
from edgenext_dense.analysis.train_benchmark import (
    DEFAULT_COMPARE_ITERS,
    DEFAULT_WARMUP_ITERS,
    format_report,
    run_train_benchmark,
    save_report,
)
from edgenext_dense.engine import PreflightError
from edgenext_dense.engine.config import add_cfg_options_arg

PROG = "tools/analysis/train_benchmark.py"


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` for whole numbers of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("config", help="config file (configs/det/*.py or configs/seg/*.py)")
    parser.add_argument(
        "--work-dir", help="output folder (default: work_dirs/train_benchmark/<config name>)"
    )
    parser.add_argument(
        "--val-interval",
        type=_at_least(1),
        help="validate every K epochs (epoch-based configs) or K iterations (iteration-based "
        "configs) instead of the config's train_cfg.val_interval",
    )
    add_cfg_options_arg(parser)
    parser.add_argument(
        "--warmup-iters",
        type=_at_least(0),
        default=DEFAULT_WARMUP_ITERS,
        help=f"first training iterations left out of images/s (default {DEFAULT_WARMUP_ITERS})",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also time training steps of mmdet's SSDLite-MobileNetV2 / mmseg's "
        "DeepLabv3-MobileNetV2 beside a fresh copy of this model, on the same batches",
    )
    parser.add_argument(
        "--compare-iters",
        type=_at_least(1),
        default=DEFAULT_COMPARE_ITERS,
        help=f"timed steps per model for --compare (default {DEFAULT_COMPARE_ITERS})",
    )
    parser.add_argument("--json", help="write everything measured to this JSON file")
    return parser.parse_args()


def main() -> None:
    """Train, print the report, write the JSON; user errors exit with a one-line message."""
    args = parse_args()
    try:
        report = run_train_benchmark(
            args.config,
            work_dir=args.work_dir,
            val_interval=args.val_interval,
            cfg_options=args.cfg_options,
            compare=args.compare,
            compare_iters=args.compare_iters,
            warmup=args.warmup_iters,
        )
    except PreflightError as exc:
        sys.exit(f"{PROG}: error: {exc}")
    print(format_report(report), end="", flush=True)
    if args.json:
        save_report(report, args.json)
        print(f"JSON written to {args.json}")


if __name__ == "__main__":
    main()
