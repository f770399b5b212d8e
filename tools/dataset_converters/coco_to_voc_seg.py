"""Turn COCO instance annotations into Pascal VOC-style masks of the 20 VOC classes.

    python tools/dataset_converters/coco_to_voc_seg.py data/coco [--split train2017] \
        [--out-dir data/coco/voc_seg] [--min-size 256] [--min-labels 2]

Makes the masks of sacmehta/EdgeNets data_loader/segmentation/coco.py, the COCO data of the
MobileViT/EdgeNeXt recipe. The 20 COCO categories that VOC has are mapped by name (COCO or VOC
spelling: airplane/aeroplane, motorcycle/motorbike, couch/sofa, tv/tvmonitor, dining
table/diningtable, potted plant/pottedplant), all others stay background. The instances of an
image are painted in the json's order onto the pixels still background, so where they
overlap the first one wins; crowd regions are painted with their class; no pixel is 255.
Skips images with a side below --min-size pixels or whose mask holds fewer than --min-labels
distinct values, background included (with 2: all-background and all-one-class masks). Writes
OUT_DIR/SPLIT/<id>.png and the kept ids to OUT_DIR/SPLIT.txt, as
configs/seg/deeplabv3_edgenext-s_4xb32-50e_voc12aug-coco-512.py reads them; the images stay
where they are.
"""

from __future__ import annotations

import argparse
import sys
from typing import List

from edgenext_dense.datasets.seg_converters import convert_coco_to_voc


def parse_args(argv: List[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("coco_root", help="COCO root holding annotations/instances_SPLIT.json")
    parser.add_argument("--split", default="train2017", help="COCO split (default: train2017)")
    parser.add_argument("--out-dir", help="output folder (default: COCO_ROOT/voc_seg)")
    parser.add_argument(
        "--min-size",
        type=int,
        default=256,
        help="smallest image height and width kept (default: 256)",
    )
    parser.add_argument(
        "--min-labels",
        type=int,
        default=2,
        help="fewest distinct mask values, background included, kept (default: 2)",
    )
    return parser.parse_args(argv)


def main(argv: List[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        info = convert_coco_to_voc(
            args.coco_root, args.split, args.out_dir, args.min_size, args.min_labels
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"coco_to_voc_seg.py: error: {err}", file=sys.stderr)
        return 1
    print(
        f"{info['num_kept']} of {info['num_images']} images kept ({info['skipped_small']} "
        f"with a side below {args.min_size} px, {info['skipped_labels']} with fewer than "
        f"{args.min_labels} distinct mask values); masks in {info['out_dir']}, ids in "
        f"{info['list_file']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
