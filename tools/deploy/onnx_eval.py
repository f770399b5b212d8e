"""Score exported models on their config's test set with the config's own metric.

    python tools/deploy/onnx_eval.py CONFIG MODEL.onnx [MODEL_INT8.onnx ...] \
        [--threads N] [--limit N] [--json results.json]

Each image is predicted with ONNX Runtime exactly as ``tools/deploy/onnx_infer.py`` does, and
scored by the config's ``test_evaluator`` (COCO mAP, mIoU) against the ground truth its test
pipeline loads: the numbers compare one to one with ``tools/test.py``'s, e.g. to measure what
int8 quantisation (``export_onnx.py --int8``) costs. A test image that cannot be read or
predicted is reported on stderr and skipped; the exit status is 1 when a model could predict
none. See ``edgenext_dense/deploy/evaluate.py``.
"""

import sys

from edgenext_dense.deploy.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
