"""Export the classifier, an SSDLite detector or a DeepLabv3 segmentor to ONNX.

    python tools/deploy/export_onnx.py configs/det/ssdlite_edgenext-s_4xb32-200e_coco-320.py \
        work_dirs/ssdlite/epoch_200.pth --out ssdlite_s.onnx [--dynamic-batch] [--int8]
    python tools/deploy/export_onnx.py classifier checkpoints/edgenext_small.pth --out cls.onnx

The file carries its preprocessing and classes for ``tools/deploy/onnx_infer.py``; a
detector's graph ends in its final detections. See ``edgenext_dense/deploy/export.py``.
"""

import sys

from edgenext_dense.deploy.export import main

if __name__ == "__main__":
    sys.exit(main())
