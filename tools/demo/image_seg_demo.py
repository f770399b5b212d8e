"""Segment an image, or every image in a folder, and blend the classes over it.

    python tools/demo/image_seg_demo.py IMAGE_OR_DIR CONFIG --weights CKPT \
        [--out-dir outputs/seg_demo] [--opacity 0.5] [--device cpu]

CONFIG is a segmentation config (configs/seg/*.py) and CKPT a checkpoint tools/train.py saved
for it. Each result, <out-dir>/<image name>.png (e.g. pic.jpg.png), shows the dataset palette
blended over the image and a legend of the classes present with their share of the pixels.
An image that cannot be processed is reported on stderr and skipped; the exit status is 1 when
no image could be segmented.
"""

import sys

import edgenext_dense  # noqa: F401  (registers the modules, applies stack workarounds)
from edgenext_dense.apis.seg_demo import main

if __name__ == "__main__":
    sys.exit(main())
