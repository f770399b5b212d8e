"""The runtime's image files: :mod:`edgenext_dense.image_files` (listing, reading, skipping as
the PyTorch demos do) and its outputs, named after the input's whole file name so that
``pic.jpg`` and ``pic.png`` never share one (``vis/pic.jpg``, ``preds/pic.jpg.json``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import os.path as osp
import sys
from typing import Any, Tuple

import cv2
import numpy as np

if "edgenext_dense" not in sys.modules:  # loaded stand-alone: the package's __init__ needs torch
    _spec = importlib.util.spec_from_file_location(
        "edgenext_dense.image_files", osp.join(osp.dirname(__file__), "..", "..", "image_files.py")
    )
    sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules[_spec.name])

from edgenext_dense.image_files import (  # noqa: E402,F401  (the runtime's image API)
    IMAGE_EXTENSIONS,
    DemoSummary,
    ImageReadError,
    detections_record,
    draw_legend,
    list_images,
    process_each,
    process_images,
    read_image,
    summary_line,
)


def output_paths(out_dir: str, image: str) -> Tuple[str, str]:
    """``out_dir/vis/<image name>`` (``.jpg`` appended to a name that is not an image format)
    and ``out_dir/preds/<image name>.json``, mmdet's layout."""
    name = osp.basename(image)
    drawing = name if name.lower().endswith(IMAGE_EXTENSIONS) else f"{name}.jpg"
    return osp.join(out_dir, "vis", drawing), osp.join(out_dir, "preds", f"{name}.json")


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
