"""Torch-free ONNX Runtime inference for the models ``tools/deploy/export_onnx.py`` writes.

This folder imports only the standard library, numpy, OpenCV, Pillow and onnxruntime, and its
modules import one another relatively, so ``tools/deploy/onnx_infer.py`` loads it as the
stand-alone package ``edgenext_dense_ort`` where PyTorch and the OpenMMLab stack are absent
(``edgenext_dense/__init__`` imports torch). :mod:`.metadata` is the settings the ``.onnx``
file carries; :mod:`.preprocess`, :mod:`.postprocess` and :mod:`.visualize` reproduce the test
pipelines, the post-processing and the demos' drawings in numpy/OpenCV; :mod:`.images` reads,
skips and names as the demos do; :mod:`.infer` creates the sessions (the backend seam) and
holds :class:`OnnxModel` and ``onnx_infer.py``'s loop; :mod:`.timing` measures latency and
peak memory.
"""

from .images import ImageReadError, list_images, read_image
from .infer import OnnxModel, create_session, main, read_metadata, run_inference
from .metadata import METADATA_KEY, MetadataError
from .postprocess import detection_postprocess, resize_bilinear, segmentation_labels
from .preprocess import preprocess_image

__all__ = [
    "METADATA_KEY",
    "ImageReadError",
    "MetadataError",
    "OnnxModel",
    "create_session",
    "detection_postprocess",
    "list_images",
    "main",
    "preprocess_image",
    "read_image",
    "read_metadata",
    "resize_bilinear",
    "run_inference",
    "segmentation_labels",
]
