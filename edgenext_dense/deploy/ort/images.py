"""Image files for the demos: an image-or-folder input, reading, skipping and output paths.

Shared by the PyTorch demos (``tools/demo/image_demo.py``, ``tools/demo/image_seg_demo.py``)
and ``tools/deploy/onnx_infer.py``, so all three list a folder, read its images, report and
skip the unreadable ones and name their outputs the same way. Like the rest of this folder it
imports only the standard library, numpy and OpenCV.

Images are read as BGR uint8 with ``cv2.imdecode(..., IMREAD_COLOR)``, what ``mmcv.imread``
does with its default ``cv2`` backend.
"""

from __future__ import annotations

import json
import os
import os.path as osp
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """An input image that cannot be read; the message names the file and the reason."""


def list_images(path: str) -> List[str]:
    """The image files of a folder (sorted, by extension), or the path itself.

    Args:
        path (str): An image file or a folder.

    Returns:
        list[str]: The images to process. A single file is returned whatever its extension,
        so that a broken file given by name is reported rather than ignored.

    Raises:
        FileNotFoundError: When ``path`` does not exist or a folder holds no images.
    """
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f"{path} is neither an image file nor a folder")
    files = sorted(
        str(p) for p in Path(path).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {path}")
    return files


def read_image(path: str) -> np.ndarray:
    """Read an image as BGR uint8, as ``mmcv.imread(path, flag='color')``.

    Args:
        path (str): Image file.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8, BGR.

    Raises:
        ImageReadError: When the file is missing, empty, cannot be read or is not a decodable
            image.
    """
    if not osp.isfile(path):
        raise ImageReadError(f"{path} does not exist")
    if osp.getsize(path) == 0:
        raise ImageReadError(f"{path} is empty (0 bytes)")
    try:
        img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    except (OSError, cv2.error) as err:  # e.g. no read permission
        raise ImageReadError(f"{path} is not a readable image: {err}") from err
    if img is None or img.size == 0:
        raise ImageReadError(f"{path} is not a readable image (corrupt, truncated or not an image)")
    return img


def _print_skipped(path: str, err: ImageReadError) -> None:
    print(f"skipped {path}: {err}", file=sys.stderr)


def iter_images(
    paths: Iterable[str],
    skipped: List[Tuple[str, str]],
    on_skip: Optional[Callable[[str, ImageReadError], None]] = None,
) -> Iterator[Tuple[str, np.ndarray]]:
    """Read the images one at a time; an unreadable one is reported, recorded and passed over.

    Args:
        paths (Iterable[str]): Image paths, e.g. from :func:`list_images`.
        skipped (list[tuple[str, str]]): Receives ``(path, reason)`` for each unreadable image.
        on_skip (Callable[[str, ImageReadError], None], optional): Reports an unreadable image;
            None prints ``skipped <path>: <reason>`` on stderr. Defaults to None.

    Yields:
        tuple[str, np.ndarray]: Each readable image's path and its BGR uint8 pixels.
    """
    report = _print_skipped if on_skip is None else on_skip
    for path in paths:
        try:
            img = read_image(path)
        except ImageReadError as err:
            report(path, err)
            skipped.append((path, str(err)))
            continue
        yield path, img


def output_name(image: str) -> str:
    """The file name of an image's drawing: its own, with ``.jpg`` added to another extension.

    Args:
        image (str): The input image path.

    Returns:
        str: The base name to write the drawing under.
    """
    name = osp.basename(image)
    return name if osp.splitext(name)[1].lower() in IMAGE_EXTENSIONS else name + ".jpg"


def output_paths(out_dir: str, image: str) -> Tuple[str, str]:
    """Where an image's drawing and JSON record go, in mmdet ``DetInferencer``'s layout.

    Args:
        out_dir (str): Output folder.
        image (str): The input image path.

    Returns:
        tuple[str, str]: ``out_dir/vis/<image name>`` and ``out_dir/preds/<image stem>.json``.
    """
    name = output_name(image)
    return osp.join(out_dir, "vis", name), osp.join(
        out_dir, "preds", osp.splitext(name)[0] + ".json"
    )


def write_json(path: str, record: Dict[str, Any]) -> None:
    """Write a record as indented JSON, creating its folder.

    Args:
        path (str): The ``.json`` file.
        record (dict): JSON-ready data.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f, indent=2)
