"""Image files for the batch tools: an image-or-folder input, reading, per-image skipping, outputs.

Shared by ``tools/deploy/onnx_infer.py`` and ``tools/deploy/onnx_eval.py`` so that both list,
read, skip and name as the PyTorch demos do (:mod:`edgenext_dense.apis.image_files`, which this
stand-alone package cannot import). Outputs are named after the input's whole file name, so
that ``pic.jpg`` and ``pic.png`` of one folder never share one: the drawing keeps the name
(``vis/pic.jpg``), other outputs append their extension (``preds/pic.jpg.json``, ``pic.jpg.png``).
"""

from __future__ import annotations

import json
import os
import os.path as osp
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Tuple, TypeVar

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

T = TypeVar("T")
R = TypeVar("R")


class ImageReadError(ValueError):
    """An input image that cannot be read; the message names the file and the reason."""


def list_images(path: str) -> List[str]:
    """The image files of a folder (sorted, by extension), or the path itself.

    A single file is returned whatever its extension, so that a broken file given by name is
    reported rather than ignored.

    Args:
        path (str): An image file or a folder.

    Returns:
        list[str]: The images to process.

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
    """Read an image as ``(H, W, 3)`` BGR uint8, as ``mmcv.imread(path, flag='color')``.

    Args:
        path (str): Image file.

    Raises:
        ImageReadError: When the file is missing, empty, unreadable or not a decodable image.
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


def _skip_reason(err: Exception) -> str:
    """One line: an ImageReadError's message, else e.g. ``cv2.error: ... in function 'resize'``."""
    message = " ".join(str(err).split())
    if isinstance(err, ImageReadError):
        return message
    kind = ("cv2." if type(err).__module__ == "cv2" else "") + type(err).__name__
    return f"{kind}: {message}" if message else kind


def process_each(
    items: Iterable[T],
    process: Callable[[T], R],
    skipped: List[Tuple[str, str]],
    name: Callable[[T], str] = str,
) -> Iterator[Tuple[T, R]]:
    """Process items one at a time; one that raises is reported on stderr and passed over.

    Args:
        items (Iterable): Image paths, or anything ``name`` turns into one.
        process (Callable): All the work for one item (read, predict, draw, write).
        skipped (list[tuple[str, str]]): Receives ``(path, reason)`` of each failed item.
        name (Callable): The image path of an item, for the report. Defaults to ``str``.

    Yields:
        tuple: Each item processed and its result.
    """
    for item in items:
        try:
            result = process(item)
        except Exception as err:  # noqa: BLE001  (one odd image must not stop the folder)
            path, reason = name(item), _skip_reason(err)
            print(f"skipped {path}: {reason}", file=sys.stderr)
            skipped.append((path, reason))
            continue
        yield item, result


def summary_line(processed: int, skipped: int) -> str:
    """The batch tools' closing line: ``N image(s) processed, M skipped``."""
    return f"{processed} image(s) processed, {skipped} skipped"


def output_name(image: str, extension: str = "") -> str:
    """The base name of one of an image's outputs: the input's name plus ``extension``.

    Args:
        image (str): The input image path.
        extension (str): ``'.json'``, ``'.png'``...; ``''`` names a drawing in the input's own
            format (``.jpg`` appended to a name that is not an image format). Defaults to ``''``.
    """
    name = osp.basename(image)
    if extension:
        return name + extension
    return name if osp.splitext(name)[1].lower() in IMAGE_EXTENSIONS else name + ".jpg"


def output_paths(out_dir: str, image: str) -> Tuple[str, str]:
    """``out_dir/vis/<image name>`` and ``out_dir/preds/<image name>.json`` (mmdet's layout)."""
    return (
        osp.join(out_dir, "vis", output_name(image)),
        osp.join(out_dir, "preds", output_name(image, ".json")),
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
