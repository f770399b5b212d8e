"""The settings an exported model carries in its ONNX ``metadata_props``.

``tools/deploy/export_onnx.py`` stores one JSON document under the key :data:`METADATA_KEY`,
so that the ``.onnx`` file alone is enough to run the model as its config's test pipeline
does::

    {
      "format_version": 2,
      "task": "det" | "seg" | "cls",
      "model": "configs/det/....py" or "classifier",   # where it came from (information only)
      "input_name": "images", "output_names": [...],
      "input_size": [H, W],          # the traced size; det and cls graphs accept only this
      "dynamic_batch": bool, "dynamic_hw": bool,
      "preprocess": {
        "mean": [3 floats], "std": [3 floats],  # per channel, after the channel conversion
        "to_rgb": bool,                         # BGR (as read) -> RGB before normalising
        "resize": {"type": "stretch", "size": [W, H], "interpolation": "bilinear"}
                | {"type": "keep_ratio", "scale": [A, B], "interpolation": "bilinear"}
                | {"type": "short_side_crop", "short_side": S, "crop_size": C,
                   "interpolation": "bicubic", "backend": "pillow"}
                | {"type": "none"}
      },
      "classes": [names], "palette": [[r, g, b], ...],
      "postprocess": {...}   # per task, see below
    }

``postprocess`` holds, for segmentors, ``align_corners`` and ``threshold``; for classifiers
``topk``. Detectors need none: their graph ends in the final detections (NMS included).
Format 1 files (detectors ending in decoded boxes and per-class scores) are refused: re-export.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping

METADATA_KEY = "edgenext_dense"
FORMAT_VERSION = 2
TASKS = ("det", "seg", "cls")
RESIZE_TYPES = ("stretch", "keep_ratio", "short_side_crop", "none")


class MetadataError(ValueError):
    """An ONNX file without (or with unusable) edgenext_dense metadata."""


def parse_metadata(props: Mapping[str, str], source: str) -> Dict[str, Any]:
    """The checked metadata document from a model's ``metadata_props``.

    Args:
        props (Mapping[str, str]): The model's custom metadata map.
        source (str): The ``.onnx`` file, for messages.

    Returns:
        dict: The metadata document (see the module docstring).

    Raises:
        MetadataError: When the file was not written by ``tools/deploy/export_onnx.py``, or
            by another version, saying which file and what to do.
    """
    if METADATA_KEY not in props:
        raise MetadataError(
            f"the ONNX model {source} has no '{METADATA_KEY}' metadata (keys: "
            f"{sorted(props) or 'none'}): export it with tools/deploy/export_onnx.py, which "
            "records the preprocessing and post-processing this runtime needs"
        )
    try:
        meta = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as err:
        raise MetadataError(
            f"the '{METADATA_KEY}' metadata of {source} is not JSON: {err}"
        ) from err
    check_metadata(meta, source)
    return meta


def check_metadata(meta: Dict[str, Any], source: str = "<metadata>") -> None:
    """Check the fields the runtime reads.

    Args:
        meta (dict): A metadata document.
        source (str): Where it came from, for messages. Defaults to ``'<metadata>'``.

    Raises:
        MetadataError: Naming the first missing or unsupported field.
    """
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise MetadataError(
            f"{source} has metadata format {version!r}; this runtime reads format "
            f"{FORMAT_VERSION}: re-export the model with this version of export_onnx.py"
        )
    if meta.get("task") not in TASKS:
        raise MetadataError(f"{source}: task must be one of {TASKS}, got {meta.get('task')!r}")
    for key in ("input_name", "output_names", "input_size", "preprocess", "classes"):
        if key not in meta:
            raise MetadataError(f"{source}: metadata has no '{key}'")
    kind = meta["preprocess"].get("resize", {}).get("type")
    if kind not in RESIZE_TYPES:
        raise MetadataError(
            f"{source}: preprocess.resize.type must be one of {RESIZE_TYPES}, got {kind!r}"
        )
