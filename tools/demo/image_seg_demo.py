"""Segment an image, or every image in a folder, and blend the classes over it.

    python tools/demo/image_seg_demo.py IMAGE_OR_DIR CONFIG --weights CKPT \
        [--out-dir outputs/seg_demo] [--opacity 0.5] [--device cpu]

CONFIG is a segmentation config (configs/seg/*.py) and CKPT a checkpoint tools/train.py saved
for it. Each result, <out-dir>/<image name>.png (e.g. pic.jpg.png), shows the dataset palette
blended over the image and a legend of the classes present with their share of the pixels.
An image that cannot be processed is reported on stderr and skipped; the exit status is 1 when
no image could be segmented.
"""

from __future__ import annotations

import argparse
import sys
from typing import List

import edgenext_dense  # noqa: F401  (first: registers modules, applies compat fixes)
from edgenext_dense.apis.image_files import add_demo_args
from edgenext_dense.apis.seg_demo import run_seg_demo
from edgenext_dense.engine.preflight import PreflightError


def parse_args(argv: List[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` when None. Defaults to None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_demo_args(parser, "seg")
    parser.add_argument(
        "--opacity", type=float, default=0.5, help="opacity of the colours, (0, 1] (default: 0.5)"
    )
    return parser.parse_args(argv)


def main(argv: List[str] | None = None) -> int:
    """Run the segmentation demo.

    Args:
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` when None. Defaults to None.

    Returns:
        int: 0 when at least one image was segmented, 1 on an error or when every image was
        skipped.
    """
    args = parse_args(argv)
    try:
        summary = run_seg_demo(
            args.inputs, args.config, args.weights, args.out_dir, args.opacity, args.device
        )
    except (PreflightError, FileNotFoundError, ValueError) as err:
        print(f"image_seg_demo.py: error: {err}", file=sys.stderr)
        return 1
    print(f"{summary.line()}; outputs in {args.out_dir}", file=sys.stderr)
    return 0 if summary.results else 1


if __name__ == "__main__":
    sys.exit(main())
