"""The runtime's image files: :mod:`edgenext_dense.image_files` (listing, reading, skipping and
naming outputs as the PyTorch demos do) and the writers of its outputs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import os.path as osp
import sys
from typing import Any

import cv2
import numpy as np

# Loaded stand-alone (tools/deploy/onnx_infer.py), the module is registered under its own name
# so that the import below finds it without running edgenext_dense/__init__ (which needs torch).
if "edgenext_dense" not in sys.modules:
    _spec = importlib.util.spec_from_file_location(
        "edgenext_dense.image_files", osp.join(osp.dirname(__file__), "..", "..", "image_files.py")
    )
    sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_spec.name])

from edgenext_dense.image_files import (  # noqa: E402,F401  (the runtime's image API)
    DemoSummary,
    ImageReadError,
    detections_record,
    draw_segmentation,
    list_images,
    output_paths,
    process_images,
    read_image,
    summary_line,
)


def write_image(path: str, image_bgr: np.ndarray) -> None:
    """Write a BGR uint8 image in the format its extension names, creating its folder.

    Raises:
        OSError: When OpenCV cannot write it (``cv2.imwrite`` only returns False).
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, image_bgr):
        raise OSError(f"cannot write {path}: check the folder's permissions and free space")


def write_json(path: str, record: Any) -> None:
    """Write JSON-ready data as indented JSON, creating its folder."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f, indent=2)
