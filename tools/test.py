"""Evaluate a checkpoint: COCO bbox mAP (detection) or mIoU and per-class IoU (segmentation).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl|results.json|DIR]
        [--show-dir DIR] [--cfg-options KEY=VALUE ...] [--launcher none|pytorch]

--out: detection .pkl (all predictions) or .json (COCO results, written as <name>.bbox.json);
segmentation .pkl or a folder for the predicted label PNGs. --show-dir: images with the
predictions drawn. Multi-GPU (or multi-process CPU): tools/dist_test.sh.
"""

import argparse
import sys

import edgenext_dense  # noqa: F401  (first: registers modules, applies compat fixes)
from edgenext_dense.engine import PreflightError, add_runner_args, evaluate
from edgenext_dense.engine.runner import set_local_rank_env


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="config file (configs/det/*.py or configs/seg/*.py)")
    parser.add_argument("checkpoint", help="checkpoint saved by tools/train.py")
    parser.add_argument(
        "--out", help="save predictions: .pkl, .json (detection) or a folder (segmentation)"
    )
    parser.add_argument("--show-dir", help="save images with the predictions drawn here")
    add_runner_args(parser)
    args = parser.parse_args()
    set_local_rank_env(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    try:
        evaluate(
            args.config,
            args.checkpoint,
            work_dir=args.work_dir,
            out=args.out,
            show_dir=args.show_dir,
            cfg_options=args.cfg_options,
            launcher=args.launcher,
        )
    except PreflightError as exc:
        sys.exit(f"tools/test.py: error: {exc}")


if __name__ == "__main__":
    main()
