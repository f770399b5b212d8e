"""The demos' image files: an image or a folder in, each image read by mmcv or skipped.

The reports read as the ONNX Runtime tools' (``skipped <image>: <reason>``, then
``N image(s) processed, M skipped``); their torch-free package keeps its own copy.
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

from edgenext_dense.engine.preflight import PreflightError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """An input image that cannot be read; the message names the file and the reason."""


@dataclass
class DemoSummary:
    """What a demo run returned per image processed, and the ``(image, reason)`` skipped."""

    results: List[Any] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)


def list_images(path: str) -> List[str]:
    """The images of a folder (sorted, extensions in any case), or the file itself.

    A file is returned whatever its extension, so that a broken file given by name is reported
    rather than ignored.

    Raises:
        FileNotFoundError: When ``path`` does not exist or a folder holds no images.
    """
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f"{path} is neither an image file nor a folder")
    files = sorted(osp.join(path, n) for n in scandir(path, IMAGE_EXTENSIONS, case_sensitive=False))
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {path}")
    return files


def read_image(path: str) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` BGR uint8 with ``mmcv.imread``, saying why when it cannot.

    Raises:
        ImageReadError: For a folder, an empty file or one that is not a decodable image.
        FileNotFoundError: When the file does not exist.
    """
    if osp.isdir(path):
        raise ImageReadError(f"{path} is a folder, not an image file: pass one image file")
    if osp.isfile(path) and osp.getsize(path) == 0:  # cv2.imdecode asserts on no bytes
        raise ImageReadError(f"{path} is empty (0 bytes)")
    image = mmcv.imread(path)
    if image is None:
        raise ImageReadError(f"{path} is not a readable image (corrupt, truncated or not an image)")
    return image


def process_images(images: Sequence[str], process: Callable[[str], Any]) -> DemoSummary:
    """Run ``process`` on each image; any exception skips that image, reported on stderr.

    Whatever goes wrong with one image (reading, inference, drawing, writing) must not stop a
    folder; each skip is printed as ``skipped <image>: <reason>``.
    """
    summary = DemoSummary()
    for image in images:
        try:
            summary.results.append(process(image))
        except Exception as err:  # noqa: BLE001  (one odd image must not stop the folder)
            reason = " ".join(str(err).split())
            if not isinstance(err, ImageReadError):  # its message already names file and cause
                module = "cv2." if type(err).__module__ == "cv2" else ""  # "cv2.error", not "error"
                reason = f"{module}{type(err).__name__}: {reason}"
            print(f"skipped {image}: {reason}", file=sys.stderr)
            summary.skipped.append((image, reason))
    return summary


def add_demo_args(parser: argparse.ArgumentParser, task: str) -> None:
    """Add the arguments both demos take: inputs, config, --weights, --out-dir, --device."""
    model = "detector" if task == "det" else "segmentor"
    out_dir = f"outputs/{task}_demo"
    parser.add_argument("inputs", help="an image file or a folder of images")
    parser.add_argument("config", help=f"the {model}'s config (configs/{task}/*.py)")
    parser.add_argument(
        "--weights", required=True, help=f"{model} checkpoint saved by tools/train.py"
    )
    parser.add_argument("--out-dir", default=out_dir, help=f"output folder (default: {out_dir})")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")


def demo_main(run: Callable[[], DemoSummary], outputs: str) -> int:
    """Run a demo for its command line: ``error: ...`` on stderr when it cannot start.

    Args:
        run (Callable[[], DemoSummary]): The demo with its arguments bound.
        outputs (str): Where the outputs went, printed after the summary line.

    Returns:
        int: 0 when at least one image was processed, 1 on an error or when all were skipped.
    """
    try:
        summary = run()
    except (PreflightError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    done, skipped = len(summary.results), len(summary.skipped)
    print(f"{done} image(s) processed, {skipped} skipped; {outputs}", file=sys.stderr)
    return 0 if summary.results else 1
