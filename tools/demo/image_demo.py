"""Draw a trained detector's boxes, class names and scores on images; print them as JSON.

    python tools/demo/image_demo.py IMAGE_OR_DIR CONFIG --weights CKPT \
        [--out-dir outputs/det_demo] [--score-thr 0.3] [--device cpu]

CKPT is a detector checkpoint saved by tools/train.py (not the backbone's ImageNet weights).
Writes OUT_DIR/vis/<image name> (the drawing) and OUT_DIR/preds/<image name>.json (e.g.
pic.jpg.json), and prints one JSON line per image. An image that cannot be processed is
reported on stderr and skipped; the exit status is 1 when no image could be processed.
"""

import sys

import edgenext_dense  # noqa: F401  (registers the SSDLite modules, applies stack workarounds)
from edgenext_dense.apis.det_demo import main

if __name__ == "__main__":
    sys.exit(main())
