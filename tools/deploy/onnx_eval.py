"""Score exported models on their config's test set with the config's own metric.

    python tools/deploy/onnx_eval.py CONFIG MODEL.onnx [MODEL_INT8.onnx ...] \
        [--threads N] [--limit N] [--json results.json] [--cfg-options KEY=VALUE ...]

Predicts as ``tools/deploy/onnx_infer.py`` does; the figures compare one to one with
``tools/test.py``'s. See ``edgenext_dense/deploy/evaluate.py``.
"""

import sys

from edgenext_dense.deploy.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
