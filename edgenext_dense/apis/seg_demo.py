"""Segmentation demo behind ``tools/demo/image_seg_demo.py``: classes blended over the images.

``OUT_DIR/<image name>.png`` holds mmseg ``SegLocalVisualizer``'s blend (the same pixels) and a
legend of the classes present. Prediction and drawing go a class or a strip at a time, where
mmseg's ``inference_model`` and visualizer hold several full-size float copies of a big photo.
"""

from __future__ import annotations

import argparse
import os.path as osp
from typing import Callable, List

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

from edgenext_dense.apis.image_files import add_demo_args, demo_main
from edgenext_dense.apis.loading import load_trained_model
from edgenext_dense.engine.config import config_test_pipeline
from edgenext_dense.engine.preflight import PreflightError
from edgenext_dense.image_files import (
    DemoSummary,
    draw_segmentation,
    list_images,
    process_images,
    read_image,
)

# dropped from the test pipeline: demo images have no masks
_ANNOTATION_LOADERS = ("LoadAnnotations", "LoadCheckedAnnotations")


def build_demo_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline for ``dict(img=BGR array)``, without annotation loading;
    PreflightError when the config has none."""
    steps = config_test_pipeline(cfg)
    if not steps:
        raise PreflightError(f"the config {cfg.filename} has no test pipeline: add test_pipeline")
    steps = [dict(s) for s in steps if s.get("type") not in _ANNOTATION_LOADERS]
    steps[0] = dict(type="LoadImageFromNDArray")
    init_default_scope("mmseg")
    return Compose(steps)


@torch.no_grad()
def predict_labels(model: torch.nn.Module, pipeline: Compose, image: np.ndarray) -> np.ndarray:
    """The ``(H, W)`` int64 labels mmseg's ``test_step`` gives a BGR image, in bounded memory:
    each class's logits resized as mmseg does and arg-maxed as they come (first maximum kept).
    """
    data = pipeline(dict(img=image))
    sample = data["data_samples"]
    batch = dict(inputs=[data["inputs"]], data_samples=[sample])
    if model.decode_head.out_channels == 1:  # one map (sigmoid): mmseg's own resize is small
        return model.test_step(batch)[0].pred_sem_seg.data[0].cpu().numpy()
    ori_shape = tuple(sample.ori_shape)
    # NOTE: mmseg resizes the logits to ori_shape; set to the network's size, that resize is a
    # no-op and seg_logits are the unpadded logits at the network's size.
    sample.set_metainfo(dict(ori_shape=tuple(sample.img_shape)))
    logits = model.test_step(batch)[0].seg_logits.data.cpu()[None]

    def upsample(c: int) -> torch.Tensor:
        return F.interpolate(
            logits[:, c : c + 1], ori_shape, mode="bilinear", align_corners=model.align_corners
        )[0, 0]

    # uint8 while the float maps are alive (1 byte a pixel), int64 only once they are freed
    labels = torch.zeros(ori_shape, dtype=torch.uint8 if logits.shape[1] <= 256 else torch.int64)
    best = upsample(0)
    for c in range(1, logits.shape[1]):
        scores = upsample(c)
        labels.masked_fill_(scores > best, c)
        torch.maximum(best, scores, out=best)
    del best, scores
    return labels.to(torch.int64).numpy()


def run_seg_demo(
    inputs: str,
    config: str,
    weights: str,
    out_dir: str = "outputs/seg_demo",
    opacity: float = 0.5,
    device: str = "cpu",
    log: Callable[[str], None] = print,
) -> DemoSummary:
    """Segment an image or every image of a folder and write the blended pictures.

    Args:
        inputs (str): Image file or folder.
        config (str): Segmentation config.
        weights (str): Segmentor checkpoint.
        out_dir (str): Output folder. Defaults to ``'outputs/seg_demo'``.
        opacity (float): Opacity of the class colours, in (0, 1]. Defaults to 0.5.
        device (str): Torch device. Defaults to ``'cpu'``.
        log (Callable[[str], None]): Receives one line per image segmented. Defaults to print.

    Returns:
        DemoSummary: The files written and the images skipped.

    Raises:
        ValueError: For an opacity outside (0, 1].
        FileNotFoundError: When ``inputs`` does not exist or holds no images.
        PreflightError: For a missing config or checkpoint, or a checkpoint of another task.
    """
    if not 0.0 < opacity <= 1.0:
        raise ValueError(f"opacity must be in (0, 1], got {opacity}")
    images = list_images(inputs)
    model = load_trained_model(config, weights, "seg", device=device)
    pipeline = build_demo_pipeline(model.cfg)
    classes = model.dataset_meta["classes"]

    def segment(path: str) -> str:
        image = read_image(path)
        labels = predict_labels(model, pipeline, image)
        out_file = osp.join(out_dir, f"{osp.basename(path)}.png")
        mmcv.imwrite(draw_segmentation(image, labels, model.dataset_meta, opacity), out_file)
        counts = np.bincount(labels.ravel(), minlength=len(classes))  # np.unique sorts a copy
        log(f"{path} -> {out_file} ({', '.join(classes[i] for i in np.flatnonzero(counts))})")
        return out_file

    return process_images(images, segment)


def main(argv: List[str] | None = None) -> int:
    """``tools/demo/image_seg_demo.py``: 0 when at least one image was segmented, else 1."""
    parser = argparse.ArgumentParser(
        description="Segment an image, or every image in a folder, and blend the classes over it."
    )
    add_demo_args(parser, "seg")
    parser.add_argument("--opacity", type=float, default=0.5,
                        help="opacity of the colours, (0, 1] (default: 0.5)")  # fmt: skip
    args = parser.parse_args(argv)
    # the options are run_seg_demo's arguments
    return demo_main(lambda: run_seg_demo(**vars(args)), f"outputs in {args.out_dir}")
