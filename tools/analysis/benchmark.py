"""Latency, images/s and peak memory in eager PyTorch and ONNX Runtime, beside the references.

    # our detector and segmentor at their paper sizes, the backbone at 256x256, 2 threads,
    # next to mmdet's SSDLite-MobileNetV2 and mmseg's DeepLabv3-MobileNetV2
    python tools/analysis/benchmark.py configs/det/ssdlite_edgenext-s_4xb32-200e_coco-320.py \
        configs/seg/deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py --backbone small \
        --threads 2 --compare --rounds 3 --json bench.json --markdown bench.md

Options: ``--shape H W``, ``--batch-size``, ``--threads``, ``--device cpu|cuda``,
``--runtimes pytorch [pytorch-fused pytorch-amp onnxruntime-int8] onnxruntime``
(``pytorch-amp``: autocast, float16 on CUDA, bfloat16 on CPU), ``--warmup``, ``--runs``,
``--rounds`` (interleaved repeats on a shared machine), ``--no-isolate``. What is timed and how
memory is measured: ``edgenext_dense/analysis/benchmark.py``.
"""

import sys

from edgenext_dense.analysis.benchmark_cli import main

if __name__ == "__main__":
    sys.exit(main())
