"""Torch-free ONNX Runtime inference for the models ``tools/deploy/export_onnx.py`` writes.

Everything under this folder imports only the standard library, numpy, OpenCV, Pillow and
onnxruntime, and uses only relative imports among its own modules, so it runs where PyTorch
and the OpenMMLab stack are not installed. ``tools/deploy/onnx_infer.py`` loads the folder as a
stand-alone package (``edgenext_dense_ort``) without importing :mod:`edgenext_dense`, whose
``__init__`` imports torch; inside the full package it is :mod:`edgenext_dense.deploy.ort`.

Modules:

- :mod:`.metadata`: the preprocessing and post-processing settings stored in the ONNX file;
- :mod:`.images`: image-or-folder inputs, image reading, skipping and reporting the images
  that cannot be processed, and the demos' output paths (also used by the PyTorch demos);
- :mod:`.preprocess`: the test pipelines' resizes and normalisation, in numpy/OpenCV/Pillow;
- :mod:`.postprocess`: the detections' rescale to the original image (NMS is in the graph),
  mmseg's logit resizing and the classifier's top-k, in numpy;
- :mod:`.visualize`: drawn outputs of the demos (boxes, blended masks with a legend);
- :mod:`.infer`: the ONNX Runtime session (the one place that calls onnxruntime),
  :class:`OnnxModel` and the image-or-folder loop behind ``onnx_infer.py``;
- :mod:`.timing`: latency and peak-memory measurement of an ONNX Runtime session.
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
