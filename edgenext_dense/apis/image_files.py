"""The demos' image files: an image or a folder in, each image read by mmcv or skipped.

Used by :mod:`~edgenext_dense.apis.det_demo` and :mod:`~edgenext_dense.apis.seg_demo`. The
reports read as those of the ONNX Runtime tools (``skipped <image>: <reason>``, then
``N image(s) processed, M skipped``), whose torch-free package keeps its own copy.
"""

from __future__ import annotations

import argparse
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, List, Sequence, Tuple

import mmcv
import numpy as np
from mmengine.utils import scandir

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """An input image that cannot be read; the message names the file and the reason."""


@dataclass
class DemoSummary:
    """What a demo run did.

    Args:
        results (list): What was returned for each image processed (a record, a file name).
        skipped (list[tuple[str, str]]): ``(image, reason)`` of the images skipped.
    """

    results: List[Any] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        """The closing line: ``N image(s) processed, M skipped``."""
        return f"{len(self.results)} image(s) processed, {len(self.skipped)} skipped"


def list_images(path: str) -> List[str]:
    """The image files of a folder (sorted, extensions in any case), or the path itself.

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
    names = scandir(path, IMAGE_EXTENSIONS, case_sensitive=False)
    files = sorted(osp.join(path, name) for name in names)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {path}")
    return files


def read_image(path: str) -> np.ndarray:
    """Read an image as BGR uint8 with ``mmcv.imread``, saying why when it cannot.

    Args:
        path (str): Image file.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8, BGR.

    Raises:
        ImageReadError: When the file is empty or not a decodable image.
        FileNotFoundError: When the file does not exist.
    """
    if osp.isfile(path) and osp.getsize(path) == 0:
        raise ImageReadError(f"{path} is empty (0 bytes)")
    image = mmcv.imread(path)
    if image is None:
        raise ImageReadError(f"{path} is not a readable image (corrupt, truncated or not an image)")
    return image


def process_images(images: Sequence[str], process: Callable[[str], Any]) -> DemoSummary:
    """Process images one at a time; one that fails is reported on stderr and passed over.

    Whatever goes wrong with one image (reading, inference, drawing, writing) must not stop a
    folder, so any :class:`Exception` of ``process`` skips its image, reported on stderr as
    ``skipped <image>: <reason>``.

    Args:
        images (Sequence[str]): Image paths.
        process (Callable[[str], Any]): Does all the work for one image; returns its result.

    Returns:
        DemoSummary: The results and the images skipped with their reason.
    """
    summary = DemoSummary()
    for image in images:
        try:
            summary.results.append(process(image))
        except Exception as err:  # noqa: BLE001  (one odd image must not stop the folder)
            reason = " ".join(str(err).split())
            if not isinstance(err, ImageReadError):  # its message already names file and cause
                kind = type(err).__name__
                if type(err).__module__ == "cv2":  # "cv2.error" reads better than "error"
                    kind = f"cv2.{kind}"
                reason = f"{kind}: {reason}"
            print(f"skipped {image}: {reason}", file=sys.stderr)
            summary.skipped.append((image, reason))
    return summary


def add_demo_args(parser: argparse.ArgumentParser, task: str) -> None:
    """Add the arguments the detection and segmentation demos share.

    ``inputs``, ``config``, ``--weights``, ``--out-dir`` (``outputs/<task>_demo``) and
    ``--device``.

    Args:
        parser (argparse.ArgumentParser): The demo's parser.
        task (str): ``'det'`` or ``'seg'``.
    """
    model = "detector" if task == "det" else "segmentor"
    out_dir = f"outputs/{task}_demo"
    parser.add_argument("inputs", help="an image file or a folder of images")
    parser.add_argument("config", help=f"the {model}'s config (configs/{task}/*.py)")
    parser.add_argument(
        "--weights", required=True, help=f"{model} checkpoint saved by tools/train.py"
    )
    parser.add_argument("--out-dir", default=out_dir, help=f"output folder (default: {out_dir})")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
