"""Export the classifier, an SSDLite detector or a DeepLabv3 segmentor to ONNX.

    # a detector or segmentor trained with tools/train.py
    python tools/deploy/export_onnx.py configs/det/ssdlite_edgenext-s_4xb32-200e_coco-320.py \
        work_dirs/ssdlite/epoch_200.pth --out ssdlite_s.onnx [--dynamic-batch]
    python tools/deploy/export_onnx.py configs/seg/deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py \
        work_dirs/deeplabv3/best_mIoU.pth --out deeplabv3_s.onnx
    # an ImageNet classifier: the pseudo-config 'classifier' (or 'classifier:ARCH')
    python tools/deploy/export_onnx.py classifier checkpoints/edgenext_small.pth --out cls.onnx

Options: ``--shape H W`` (traced size), ``--dynamic-batch``, ``--opset`` (default 17),
``--no-fuse``, ``--int8`` (dynamic int8 matrix multiplications), ``--no-verify``. The
detector's graph ends in the final detections (the config's ``test_cfg`` with ONNX
``NonMaxSuppression``); ``tools/deploy/onnx_infer.py`` reads everything else it needs
(preprocessing, classes) from the file's metadata. See
``edgenext_dense/deploy/export.py``.
"""

import sys

from edgenext_dense.deploy.export import main

if __name__ == "__main__":
    sys.exit(main())
