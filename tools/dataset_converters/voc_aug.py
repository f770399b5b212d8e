"""Convert the SBD annotations for Pascal VOC 2012 into mmseg's SegmentationClassAug layout.

    python tools/dataset_converters/voc_aug.py data/VOCdevkit data/VOCdevkit/benchmark_RELEASE \
        [-o OUT_DIR] [--nproc 4]

Writes VOC2012/SegmentationClassAug/*.png (SBD's dataset/cls/*.mat as palettised PNGs, plus
VOC's own masks of its train/val images) and VOC2012/ImageSets/Segmentation/aug.txt: the
10,582 training ids (SBD train + val + VOC train, minus VOC val) that
configs/seg/deeplabv3_edgenext*_voc12aug-512.py train on. Needs scipy (installed with mmseg).
"""

from __future__ import annotations

import argparse
import sys
from typing import List

from edgenext_dense.datasets.seg_converters import VOC_AUG_LEN, convert_voc_aug


def parse_args(argv: List[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("devkit_path", help="the VOCdevkit folder (holding VOC2012/)")
    parser.add_argument("aug_path", help="the SBD folder (holding dataset/cls), benchmark_RELEASE")
    parser.add_argument(
        "-o", "--out-dir", help="mask folder (default: VOCdevkit/VOC2012/SegmentationClassAug)"
    )
    parser.add_argument("--nproc", type=int, default=1, help="worker processes (default: 1)")
    return parser.parse_args(argv)


def main(argv: List[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        info = convert_voc_aug(args.devkit_path, args.aug_path, args.out_dir, nproc=args.nproc)
    except (FileNotFoundError, ValueError) as err:
        print(f"voc_aug.py: error: {err}", file=sys.stderr)
        return 1
    print(
        f"{info['num_sbd']} SBD masks converted and {info['num_voc']} VOC masks copied to "
        f"{info['out_dir']}\n{info['num_aug']} training ids written to {info['aug_list']}"
    )
    if info["num_sbd"] >= 11000 and info["num_aug"] != VOC_AUG_LEN:
        print(
            f"warning: the full SBD + VOC 2012 data give {VOC_AUG_LEN} training ids, got "
            f"{info['num_aug']}: check the VOC and SBD split lists",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
