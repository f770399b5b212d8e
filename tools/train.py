"""Train a detector (mmdet config) or a segmentor (mmseg config); the config says which.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--auto-scale-lr]
        [--cfg-options KEY=VALUE ...] [--launcher none|pytorch]

Checkpoints, logs and curves.png (losses and validation metrics) go to the work dir
(default ./work_dirs/<config name>). Multi-GPU (or multi-process CPU): tools/dist_train.sh.
"""

import argparse
import sys

import edgenext_dense  # noqa: F401  (first: registers modules, applies compat fixes)
from edgenext_dense.engine import PreflightError, add_runner_args, train
from edgenext_dense.engine.runner import set_local_rank_env


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="config file (configs/det/*.py or configs/seg/*.py)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        help="resume from CKPT, or without a value from the latest checkpoint in the work dir",
    )
    parser.add_argument("--amp", action="store_true", help="automatic mixed precision")
    parser.add_argument(
        "--auto-scale-lr",
        action="store_true",
        help="scale the learning rate to the actual total batch size (auto_scale_lr in config)",
    )
    add_runner_args(parser)
    args = parser.parse_args()
    set_local_rank_env(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    try:
        train(
            args.config,
            work_dir=args.work_dir,
            resume=args.resume,
            amp=args.amp,
            auto_scale_lr=args.auto_scale_lr,
            cfg_options=args.cfg_options,
            launcher=args.launcher,
        )
    except PreflightError as exc:
        sys.exit(f"tools/train.py: error: {exc}")


if __name__ == "__main__":
    main()
