"""Image files for the batch tools (the demos, ``onnx_infer.py``, ``onnx_eval.py``).

An image or a folder in; each image read as ``mmcv.imread`` reads it, or skipped and reported
(``skipped <image>: <reason>``, then ``N image(s) processed, M skipped``); the detection
tools' JSON record and the segmentation drawing. Imports only the standard library, numpy and
OpenCV: the torch-free runtime (``deploy/ort``) uses it too.
"""

from __future__ import annotations

import os.path as osp
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Sequence, Tuple, TypeVar

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Pixels of one strip of the blend (its float64 temporaries take 24 bytes a pixel).
_STRIP_PIXELS = 1 << 21
T = TypeVar("T")
R = TypeVar("R")


class ImageReadError(ValueError):
    """An input image that cannot be read; the message names the file and the reason."""


@dataclass
class DemoSummary:
    """What a batch run returned per image processed, and the ``(image, reason)`` skipped."""

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
    files = sorted(
        str(p) for p in Path(path).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {path}")
    return files


def read_image(path: str) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` BGR uint8, as ``mmcv.imread(path)`` (``cv2.imdecode``).

    Raises:
        FileNotFoundError: When the file does not exist.
        ImageReadError: For a folder, an empty file or one that is not a decodable image.
    """
    if osp.isdir(path):
        raise ImageReadError(f"{path} is a folder, not an image file: pass one image file")
    if not osp.isfile(path):
        raise FileNotFoundError(f"{path} does not exist")
    if osp.getsize(path) == 0:  # cv2.imdecode asserts on no bytes
        raise ImageReadError(f"{path} is empty (0 bytes)")
    try:
        img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    except (OSError, cv2.error) as err:  # e.g. no read permission
        raise ImageReadError(f"{path} is not a readable image: {err}") from err
    if img is None or img.size == 0:
        raise ImageReadError(f"{path} is not a readable image (corrupt, truncated or not an image)")
    return img


def process_each(
    items: Iterable[T],
    process: Callable[[T], R],
    skipped: List[Tuple[str, str]],
    name: Callable[[T], str] = str,
) -> Iterator[Tuple[T, R]]:
    """Yield ``(item, process(item))``; an item that raises is reported on stderr and skipped.

    Args:
        items (Iterable): Image paths, or anything ``name`` turns into one.
        process (Callable): All the work for one item (read, predict, draw, write).
        skipped (list[tuple[str, str]]): Receives ``(path, reason)`` of each failed item.
        name (Callable): The image path of an item, for the report. Defaults to ``str``.
    """
    for item in items:
        try:
            result = process(item)
        except Exception as err:  # noqa: BLE001  (one odd image must not stop the folder)
            reason = " ".join(str(err).split())
            if not isinstance(err, ImageReadError):  # its message already names file and cause
                kind = ("cv2." if type(err).__module__ == "cv2" else "") + type(err).__name__
                reason = f"{kind}: {reason}" if reason else kind
            print(f"skipped {name(item)}: {reason}", file=sys.stderr)
            skipped.append((name(item), reason))
            continue
        yield item, result


def process_images(images: Sequence[str], process: Callable[[str], Any]) -> DemoSummary:
    """Run ``process`` on each image (see :func:`process_each`); the results and the skipped."""
    summary = DemoSummary()
    summary.results = [r for _, r in process_each(images, process, summary.skipped)]
    return summary


def output_paths(out_dir: str, image: str) -> Tuple[str, str]:
    """``out_dir/vis/<image name>`` (``.jpg`` appended to a name that is not an image format)
    and ``out_dir/preds/<image name>.json``: mmdet's layout, named after the whole file name so
    that ``pic.jpg`` and ``pic.png`` never share an output."""
    name = osp.basename(image)
    drawing = name if name.lower().endswith(IMAGE_EXTENSIONS) else f"{name}.jpg"
    return osp.join(out_dir, "vis", drawing), osp.join(out_dir, "preds", f"{name}.json")


def summary_line(processed: int, skipped: int) -> str:
    """The batch tools' closing line: ``N image(s) processed, M skipped``."""
    return f"{processed} image(s) processed, {skipped} skipped"


def detections_record(
    image: str,
    shape: Sequence[int],
    classes: Sequence[str],
    bboxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    score_thr: float,
) -> Dict[str, Any]:
    """One image's detections scoring at least ``score_thr``, best first, as the JSON record
    the detection tools print: ``image``, ``height``, ``width`` and ``detections`` (``label``,
    ``class``, ``score``, ``bbox`` [x1, y1, x2, y2] in the image's pixels)."""
    detections = [
        {
            "label": int(labels[i]),
            "class": classes[int(labels[i])],
            "score": round(float(scores[i]), 4),
            "bbox": [round(float(v), 1) for v in bboxes[i]],
        }
        for i in np.argsort(-np.asarray(scores), kind="stable")
        if scores[i] >= score_thr
    ]
    return dict(image=image, height=int(shape[0]), width=int(shape[1]), detections=detections)


def draw_legend(
    labels: np.ndarray, classes: Sequence[str], palette: Sequence[Sequence[int]], height: int
) -> np.ndarray:
    """A white panel at least ``height`` high listing the classes present, largest share first,
    each with its ``palette`` colour (drawn in the palette's channel order)."""
    counts = np.bincount(labels.ravel(), minlength=len(classes))[: len(classes)]
    present = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    lines = ["classes"] + [f"{classes[i]} {100.0 * counts[i] / labels.size:.1f}%" for i in present]
    font, scale, row, pad, swatch = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 22, 8, 14
    text_w = max([cv2.getTextSize(t, font, scale, 1)[0][0] for t in lines] + [60])
    rows = max(height, pad * 2 + row * len(lines))
    panel = np.full((rows, pad * 3 + swatch + text_w, 3), 255, np.uint8)
    cv2.putText(panel, lines[0], (pad, pad + 12), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (i, text) in enumerate(zip(present, lines[1:]), start=1):
        y, colour = pad + k * row, [int(c) for c in palette[i]]
        cv2.rectangle(panel, (pad, y), (pad + swatch, y + swatch), colour, -1)
        cv2.rectangle(panel, (pad, y), (pad + swatch, y + swatch), (0, 0, 0), 1)
        cv2.putText(panel, text, (2 * pad + swatch, y + 12), font, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def draw_segmentation(
    image_bgr: np.ndarray, labels: np.ndarray, meta: Dict[str, Any], opacity: float = 0.5
) -> np.ndarray:
    """The class colours blended over the BGR image, with the legend on its right (BGR).

    The blend is mmseg ``SegLocalVisualizer``'s ``(image * (1 - opacity) + colour * opacity)
    .astype(uint8)``, a strip of rows at a time (the same pixels without its full-size float64
    copies).

    Args:
        image_bgr (np.ndarray): ``(H, W, 3)`` uint8 BGR image.
        labels (np.ndarray): ``(H, W)`` predicted labels.
        meta (dict): The model's ``classes`` and ``palette`` (RGB, one a class).
        opacity (float): Opacity of the class colours. Defaults to 0.5.
    """
    palette = np.asarray(meta["palette"], np.uint8).reshape(-1, 3)[:, ::-1]  # BGR: no image copy
    legend = draw_legend(labels, meta["classes"], palette, image_bgr.shape[0])
    height, width = image_bgr.shape[:2]
    canvas = np.full((legend.shape[0], width + legend.shape[1], 3), 255, np.uint8)
    canvas[:, width:] = legend
    step = max(1, _STRIP_PIXELS // max(1, width))
    for top in range(0, height, step):
        rows = slice(top, min(height, top + step))  # the canvas may be taller (legend)
        blended = image_bgr[rows] * (1 - opacity) + palette[labels[rows]] * opacity
        canvas[rows, :width] = blended.astype(np.uint8)
    return canvas
