"""Segmentation-mask loading that fails loudly, naming the file, on masks training cannot use.

mmseg's ``LoadAnnotations`` loads an RGB-coloured or foreign mask without a word; its labels
then crash the loss far from the file, and a corrupt PNG raises PIL's error without its name.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS


class SegMaskError(ValueError):
    """A segmentation mask that cannot be used as ground truth; the message names the file."""


@TRANSFORMS.register_module()
class LoadCheckedAnnotations(LoadAnnotations):
    """``LoadAnnotations`` that raises, naming the file, for a missing mask (FileNotFoundError)
    or one that is undecodable, not single-channel, not its image's size or holds labels
    outside ``0..num_classes-1`` and ``ignore_index`` (:class:`SegMaskError`). Without a
    ``seg_map_path`` (bare images through the test pipeline) it does nothing.

    Args:
        num_classes (int): Number of classes; valid labels are ``0..num_classes-1``.
            Defaults to 21 (Pascal VOC with background).
        ignore_index (int): The label of ignored pixels (VOC's object borders). Defaults to 255.
        **kwargs: ``LoadAnnotations`` arguments.
    """

    def __init__(self, num_classes: int = 21, ignore_index: int = 255, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 1 <= num_classes <= 256:
            raise ValueError(f"num_classes must be in 1..256, got {num_classes!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: Dict[str, Any]) -> None:
        path = results["seg_map_path"]
        image = results.get("img_path", "?")
        try:
            super()._load_seg_map(results)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"segmentation mask {path} (for image {image}) does not exist. Every name in the "
                "split file needs <data_root>/<seg_map_path>/<name>.png: re-run the dataset "
                "converter or remove the name from the split file."
            ) from err
        except AssertionError:  # mmseg's reduce_zero_label check, not a decoding failure
            raise
        except Exception as err:  # PIL.UnidentifiedImageError, OSError on truncated files, ...
            raise SegMaskError(
                f"could not decode segmentation mask {path} (for image {image}): "
                f"{type(err).__name__}: {err}. Masks are PNG files with one class index per "
                "pixel; replace or re-convert this file."
            ) from err

    def transform(self, results: Dict[str, Any]) -> Dict[str, Any] | None:
        """Load ``gt_seg_map`` and check it; pass results without a mask path through."""
        if results.get("seg_map_path") is None:
            return results
        results = super().transform(results)
        path = results["seg_map_path"]
        seg = results["gt_seg_map"]
        if seg.ndim != 2:
            raise SegMaskError(
                f"segmentation mask {path} has shape {seg.shape}: expected one channel of class "
                "indices. An RGB-coloured mask must be converted to indices (VOC's "
                "SegmentationClass PNGs are palettised, the palette only colours the indices)."
            )
        # ori_shape: the image as loaded (mmseg's test pipelines load masks after Resize).
        ori_shape = results.get("ori_shape")
        if ori_shape is not None and tuple(seg.shape) != tuple(ori_shape[:2]):
            raise SegMaskError(
                f"segmentation mask {path} is {seg.shape[1]}x{seg.shape[0]} (WxH) but its image "
                f"{results.get('img_path', '?')} is {ori_shape[1]}x{ori_shape[0]}: check that "
                "the mask belongs to the image."
            )
        counts = np.bincount(seg.ravel(), minlength=256)
        present = np.flatnonzero(counts)
        bad = [int(v) for v in present if v >= self.num_classes and v != self.ignore_index]
        if bad:
            shown = ", ".join(map(str, bad[:10])) + (", ..." if len(bad) > 10 else "")
            raise SegMaskError(
                f"segmentation mask {path} has label values {shown} outside "
                f"0..{self.num_classes - 1} and {self.ignore_index} (ignore): "
                f"{int(counts[bad].sum())} pixels. Is it a mask of another dataset, or saved "
                "with colours instead of class indices? Fix the mask, or set num_classes to "
                "match the dataset."
            )
        return results

    def __repr__(self) -> str:
        return (
            f"{super().__repr__()[:-1]}, num_classes={self.num_classes}, "
            f"ignore_index={self.ignore_index})"
        )
