"""Image files for the demos: an image-or-folder input, reading, per-image skipping, outputs.

Shared by ``tools/deploy/onnx_infer.py`` and ``tools/deploy/onnx_eval.py``, so that both list a
folder, read its images, skip and report any image they cannot process (one line each, then a
summary) and name their outputs the same way, in the words of the PyTorch demos
(:mod:`edgenext_dense.apis.image_files`, which this stand-alone package cannot import). Like the
rest of this folder it imports only the standard library, numpy and OpenCV.

Images are read as BGR uint8 with ``cv2.imdecode(..., IMREAD_COLOR)``, what ``mmcv.imread``
does with its default ``cv2`` backend.

Outputs are named after the input's whole file name, extension included, so that ``pic.jpg``
and ``pic.png`` of one folder never share an output: the drawing keeps the name
(``vis/pic.jpg``), other outputs append their own extension (``preds/pic.jpg.json``,
``pic.jpg.png``).
"""

from __future__ import annotations

import json
import os
import os.path as osp
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Tuple, TypeVar

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

T = TypeVar("T")
R = TypeVar("R")


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


def skip_reason(err: Exception) -> str:
    """Why an image was skipped, on one line.

    Args:
        err (Exception): What processing the image raised.

    Returns:
        str: An :class:`ImageReadError`'s message (it names the file and the reason); for any
        other error its type and message, e.g. ``"cv2.error: OpenCV(...) ... in function
        'resize'"``.
    """
    message = " ".join(str(err).split())
    if isinstance(err, ImageReadError):
        return message
    kind = type(err).__name__
    if type(err).__module__ == "cv2":  # cv2.error reads better than "error"
        kind = f"cv2.{kind}"
    return f"{kind}: {message}" if message else kind


def print_skipped(path: str, reason: str) -> None:
    """Report a skipped image on stderr: ``skipped <path>: <reason>``.

    Args:
        path (str): The image.
        reason (str): From :func:`skip_reason`.
    """
    print(f"skipped {path}: {reason}", file=sys.stderr)


def process_each(
    items: Iterable[T],
    process: Callable[[T], R],
    skipped: List[Tuple[str, str]],
    name: Callable[[T], str] = str,
) -> Iterator[Tuple[T, R]]:
    """Process items one at a time; one that fails is reported, recorded and passed over.

    Whatever goes wrong with one image (reading, preprocessing, inference, drawing, writing)
    must not stop a folder, so any :class:`Exception` of ``process`` skips its item; it is
    reported by :func:`print_skipped`.

    Args:
        items (Iterable): Image paths, or anything ``name`` turns into one.
        process (Callable): Does all the work for one item (read, predict, draw, write) and
            returns its result.
        skipped (list[tuple[str, str]]): Receives ``(path, reason)`` for each failed item.
        name (Callable): The image path of an item, for the report. Defaults to ``str``.

    Yields:
        tuple: Each item processed and its result.
    """
    for item in items:
        try:
            result = process(item)
        except Exception as err:  # noqa: BLE001  (one odd image must not stop the folder)
            path, reason = name(item), skip_reason(err)
            print_skipped(path, reason)
            skipped.append((path, reason))
            continue
        yield item, result


def summary_line(processed: int, skipped: int) -> str:
    """The batch tools' closing line: ``N image(s) processed, M skipped``.

    Args:
        processed (int): Images processed.
        skipped (int): Images skipped.

    Returns:
        str: The line, without where the outputs went.
    """
    return f"{processed} image(s) processed, {skipped} skipped"


def output_name(image: str, extension: str = "") -> str:
    """The file name of one of an image's outputs, made from the input's whole file name.

    Args:
        image (str): The input image path.
        extension (str): Appended to the input's name (``'.json'``, ``'.png'``); ``''`` names
            a drawing in the input's own format: the name itself, with ``.jpg`` appended when
            its extension is not an image format. Defaults to ``''``.

    Returns:
        str: The base name, e.g. ``pic.jpg`` (drawing), ``pic.jpg.json``, ``pic.jpg.png``.
    """
    name = osp.basename(image)
    if extension:
        return name + extension
    return name if osp.splitext(name)[1].lower() in IMAGE_EXTENSIONS else name + ".jpg"


def output_paths(out_dir: str, image: str) -> Tuple[str, str]:
    """Where an image's drawing and JSON record go, in mmdet ``DetInferencer``'s layout.

    Args:
        out_dir (str): Output folder.
        image (str): The input image path.

    Returns:
        tuple[str, str]: ``out_dir/vis/<image name>`` and ``out_dir/preds/<image name>.json``.
    """
    return (
        osp.join(out_dir, "vis", output_name(image)),
        osp.join(out_dir, "preds", output_name(image, ".json")),
    )


def write_image(path: str, image_bgr: np.ndarray) -> None:
    """Write a BGR uint8 image, creating its folder, in the format its extension names.

    Args:
        path (str): The image file.
        image_bgr (np.ndarray): ``(H, W, 3)`` uint8 BGR.

    Raises:
        OSError: When OpenCV cannot write it (``cv2.imwrite`` only returns False).
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, image_bgr):
        raise OSError(f"cannot write {path}: check the folder's permissions and free space")


def write_json(path: str, record: Dict[str, Any]) -> None:
    """Write a record as indented JSON, creating its folder.

    Args:
        path (str): The ``.json`` file.
        record (dict): JSON-ready data.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f, indent=2)
