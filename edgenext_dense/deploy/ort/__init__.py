"""Torch-free inference (ONNX Runtime or OpenVINO) of the models ``export_onnx.py`` writes.

Imports only the standard library, numpy, OpenCV, Pillow, onnxruntime, (optionally) openvino
and the torch-free :mod:`edgenext_dense.image_files`, so :mod:`.standalone` can load it (and
that module) as the package ``edgenext_dense_ort`` without ``edgenext_dense/__init__`` (which
imports torch).
:mod:`.metadata` is the settings the ``.onnx`` file carries, :mod:`.preprocess`,
:mod:`.postprocess` and :mod:`.visualize` reproduce the test pipelines, post-processing and
box drawings in numpy/OpenCV, :mod:`.backends` creates the sessions, :mod:`.infer` runs them.
"""

from edgenext_dense.image_files import ImageReadError, list_images, read_image

from .backends import BackendError, create_session, open_model
from .infer import OnnxModel, main, read_metadata, run_inference
from .metadata import METADATA_KEY, MetadataError
from .postprocess import detection_postprocess, resize_bilinear, segmentation_labels
from .preprocess import preprocess_image

__all__ = [
    "METADATA_KEY",
    "BackendError",
    "ImageReadError",
    "MetadataError",
    "OnnxModel",
    "create_session",
    "open_model",
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
