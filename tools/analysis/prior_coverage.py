"""How well a detection config's priors cover a dataset's boxes (no training needed).

    python tools/analysis/prior_coverage.py CONFIG [--split train|val] [--cfg-options ...]

Prints, per COCO size class, how many boxes get at least one positive prior at the assigner's
IoU threshold, how many positives they get on each level, and the IoU of their best prior.
"""

import argparse
import os.path as osp
import sys

import edgenext_dense  # noqa: F401  (registers modules, applies the compat fixes)
from edgenext_dense.analysis.prior_coverage import format_coverage, prior_coverage
from edgenext_dense.engine.config import add_cfg_options_arg, load_config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="detection config (configs/det/*.py)")
    parser.add_argument("--split", choices=("train", "val"), default="train")
    add_cfg_options_arg(parser)
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    dataset = cfg[f"{args.split}_dataloader"].dataset
    dataset = dataset.get("dataset", dataset)  # RepeatDataset and friends
    ann_file = osp.join(dataset.get("data_root") or "", dataset.ann_file)
    try:
        report = prior_coverage(cfg, ann_file)
    except FileNotFoundError as err:
        print(f"prior_coverage.py: error: {err}", file=sys.stderr)
        return 1
    print(f"{args.config} on {ann_file}: {format_coverage(report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
