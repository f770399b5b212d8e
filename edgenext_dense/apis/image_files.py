"""The demos' command line: the arguments both take and the run that reports errors and skips.

Listing, reading and skipping images is :mod:`edgenext_dense.image_files`, shared with the
torch-free runtime so that the reports read alike.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from edgenext_dense.engine.preflight import PreflightError
from edgenext_dense.image_files import DemoSummary, summary_line


def add_demo_args(parser: argparse.ArgumentParser, task: str) -> None:
    """Add the arguments both demos take: inputs, config, --weights, --out-dir, --device."""
    model = "detector" if task == "det" else "segmentor"
    out_dir = f"outputs/{task}_demo"
    parser.add_argument("inputs", help="an image file or a folder of images")
    parser.add_argument("config", help=f"the {model}'s config (configs/{task}/*.py)")
    parser.add_argument(
        "--weights", required=True, help=f"{model} checkpoint saved by tools/train.py"
    )
    parser.add_argument("--out-dir", default=out_dir, help=f"output folder (default: {out_dir})")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")


def demo_main(run: Callable[[], DemoSummary], outputs: str) -> int:
    """Run a demo for its command line: ``error: ...`` on stderr when it cannot start.

    Args:
        run (Callable[[], DemoSummary]): The demo with its arguments bound.
        outputs (str): Where the outputs went, printed after the summary line.

    Returns:
        int: 0 when at least one image was processed, 1 on an error or when all were skipped.
    """
    try:
        summary = run()
    except (PreflightError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{summary_line(len(summary.results), len(summary.skipped))}; {outputs}", file=sys.stderr)
    return 0 if summary.results else 1
