"""Pretrain an EdgeNeXt classifier on rendered shapes (the no-download demos' ImageNet stand-in).

    python tools/pretrain_shapes.py --out checkpoints/edgenext_xx_small_shapes.pth

The file holds the backbone in the published checkpoint layout (official names), so the demo
configs load it with ``init_cfg=dict(type='Pretrained', checkpoint=...)`` exactly as
they would load ImageNet weights. An existing file is kept when it was trained with the same
settings and recipe (its meta says), retrained when not, and always with ``--force``; a file
this script did not write is never overwritten without ``--force``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List

import torch

from edgenext_dense.apis.shapes_pretrain import pretrain_shapes_classifier, recipe_mismatch

# the options that are pretrain_shapes_classifier's keyword arguments
TRAINING_ARGS = ("arch", "iters", "batch_size", "img_size", "lr", "num_train", "num_val", "seed")


def parse_args(argv: List[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train an EdgeNeXt classifier on rendered shape crops and save its backbone "
        "in the published checkpoint layout."
    )
    parser.add_argument("--out", default="checkpoints/edgenext_xx_small_shapes.pth")
    parser.add_argument("--arch", default="xx_small", help="EdgeNeXt arch (default xx_small)")
    parser.add_argument("--iters", type=int, default=1600, help="iterations (default 1600)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per iteration")
    parser.add_argument("--img-size", type=int, default=64, help="image side (default 64)")
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate (2e-3)")
    parser.add_argument("--num-train", type=int, default=800, help="training scenes (800)")
    parser.add_argument("--num-val", type=int, default=100, help="validation scenes (100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--force", action="store_true", help="retrain even if --out exists")
    return parser.parse_args(argv)


def main(argv: List[str] | None = None) -> int:
    """Train and save, or keep an existing checkpoint: 0, or 2 on invalid arguments."""
    args = parse_args(argv)
    settings = {name: getattr(args, name) for name in TRAINING_ARGS}
    try:
        if os.path.exists(args.out) and not args.force:
            differs = recipe_mismatch(args.out, **settings)
            if differs is None:
                print(
                    f"{args.out} exists, trained with these settings; keeping it (--force retrains)"
                )
                return 0
            print(f"{args.out} was trained differently ({differs}); retraining it")
        if args.threads:
            torch.set_num_threads(args.threads)
        result = pretrain_shapes_classifier(args.out, **settings)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"{result.arch} classifier: val accuracy {result.val_accuracy:.3f} after "
        f"{result.iters} iterations ({result.seconds:.0f} s); wrote {result.path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
