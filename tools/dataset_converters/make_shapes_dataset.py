"""Generate a synthetic shape dataset for the no-download demo (detection or segmentation).

    # COCO 2017 layout: train2017/, val2017/, annotations/instances_{train,val}2017.json
    python tools/dataset_converters/make_shapes_dataset.py det data/coco_shapes
    # Pascal VOC 2012 layout under OUT_DIR/VOC2012 (mmseg's pascal_voc12 data_root)
    python tools/dataset_converters/make_shapes_dataset.py seg data/VOCdevkit --size 256

Running it again with the same arguments finds the dataset complete and returns at once.
"""

from __future__ import annotations

import argparse
import sys
from typing import List

from edgenext_dense.datasets import make_coco_shapes, make_voc_shapes


def parse_args(argv: List[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Write a deterministic synthetic shapes dataset: 'det' in the COCO 2017 "
        "layout (mmdet CocoDataset), 'seg' in the Pascal VOC 2012 layout (mmseg "
        "PascalVOCDataset, data_root OUT_DIR/VOC2012)."
    )
    parser.add_argument(
        "task", choices=("det", "seg"), help="detection (COCO) or segmentation (VOC)"
    )
    parser.add_argument("out_dir", help="output directory (created if missing)")
    parser.add_argument("--num-train", type=int, help="training images (det: 800, seg: 500)")
    parser.add_argument("--num-val", type=int, help="validation images (default: 100)")
    parser.add_argument("--size", type=int, help="image side in pixels (det: 320, seg: 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--force", action="store_true", help="regenerate even if up to date")
    return parser.parse_args(argv)


def main(argv: List[str] | None = None) -> int:
    """Generate the dataset and print what was written: 0, or 2 on invalid arguments or an
    occupied directory."""
    args = parse_args(argv)
    make = make_coco_shapes if args.task == "det" else make_voc_shapes
    sizes = dict(num_train=args.num_train, num_val=args.num_val, img_size=args.size)
    sizes = {k: v for k, v in sizes.items() if v is not None}  # else the task's defaults
    try:
        summary = make(args.out_dir, seed=args.seed, force=args.force, **sizes)
    except (ValueError, FileExistsError) as err:
        print(f"make_shapes_dataset: error: {err}", file=sys.stderr)
        return 2
    state = "written"
    if summary["reused"]:
        state = "already complete with these parameters, nothing written (--force regenerates)"
    print(f"{args.task} dataset in {summary['out_dir']}: {state}")
    counts = summary["num_images"]
    print(f"  images: {counts['train']} train, {counts['val']} val")
    if args.task == "det":
        anns = summary["num_annotations"]
        print(f"  objects: {anns['train']} train, {anns['val']} val")
        print(f"  classes: {', '.join(summary['classes'])} (category ids from 1)")
        for key in ("train_img_dir", "val_img_dir", "train_ann_file", "val_ann_file"):
            print(f"  {key}: {summary[key]}")
    else:
        ids = ", ".join(f"{c}={i}" for c, i in summary["class_ids"].items())
        print(f"  classes (as VOC labels): {ids}; 0 background, 255 ignored borders")
        for key in ("data_root", "img_dir", "seg_map_dir", "train_split", "val_split"):
            print(f"  {key}: {summary[key]}")
    print(f"  manifest: {summary['manifest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
