"""Parameters and FLOPs (multiply-adds) of a detection or segmentation config.

    python tools/analysis/get_flops.py CONFIG [--shape H [W]] [--cfg-options KEY=VALUE ...]

The input size defaults to the config's test resize (else 320x320 detection, 512x512
segmentation). The model is built with backbone init off, so no checkpoint is needed.
"""

import argparse
import sys

import edgenext_dense  # noqa: F401  (registers modules, applies the compat fixes)
from edgenext_dense.analysis.flops import format_complexity, model_complexity
from edgenext_dense.engine import PreflightError
from edgenext_dense.engine.config import add_cfg_options_arg, load_config, task_of


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="config file (configs/det/*.py or configs/seg/*.py)")
    parser.add_argument(
        "--shape", type=int, nargs="+", help="input size: H W, or one number for a square"
    )
    add_cfg_options_arg(parser)
    args = parser.parse_args()
    if args.shape is not None and len(args.shape) not in (1, 2):
        parser.error(f"--shape takes H W or one size, got {args.shape}")
    return args


def main() -> None:
    args = parse_args()
    try:
        cfg = load_config(args.config, args.cfg_options)
        task = task_of(cfg)
    except PreflightError as exc:
        sys.exit(f"tools/analysis/get_flops.py: error: {exc}")
    shape = None if args.shape is None else (args.shape[0], args.shape[-1])
    print(f"Config:   {args.config} ({cfg.model.type}, backbone init off)")
    print(format_complexity(model_complexity(cfg, task, shape), task))


if __name__ == "__main__":
    main()
