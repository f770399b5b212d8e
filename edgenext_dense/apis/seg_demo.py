"""Segmentation demo: run a trained segmentor on images and blend its classes over them.

Behind ``tools/demo/image_seg_demo.py``. Each prediction is drawn as mmseg's
:class:`~mmseg.visualization.SegLocalVisualizer` draws it (the dataset palette blended over the
image), with a legend of the classes present, with their share of the pixels, on the right.
Folders are processed one image at a time; an image that cannot be read, segmented, drawn or
written is reported and skipped. The image listing, reading and skipping, the output names
and the drawing are the ONNX Runtime runner's (:mod:`edgenext_dense.deploy.ort.images`,
:mod:`edgenext_dense.deploy.ort.visualize`), which bound the memory a big photo takes.
"""

from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

from edgenext_dense.apis.loading import load_task_config, load_trained_weights
from edgenext_dense.deploy.ort.images import (
    list_images,
    output_name,
    process_each,
    read_image,
    write_image,
)
from edgenext_dense.deploy.ort.visualize import add_legend, blend_classes, draw_legend
from edgenext_dense.engine.preflight import PreflightError, check_checkpoint_task

# Annotation loading is dropped from the test pipeline: demo images have no masks.
_ANNOTATION_LOADERS = ("LoadAnnotations", "LoadCheckedAnnotations")

# draw_legend lives in deploy/ort/visualize.py and is re-exported here, where callers find it.
__all__ = [
    "DemoSummary",
    "build_demo_pipeline",
    "draw_legend",
    "init_segmentor",
    "predict_labels",
    "render",
    "run_seg_demo",
]


@dataclass
class DemoSummary:
    """What a demo run did.

    Args:
        written (list[str]): Output files, one per image segmented.
        skipped (list[tuple[str, str]]): ``(input, reason)`` of the images that were skipped.
    """

    written: List[str] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)


def init_segmentor(
    config: Union[str, Config],
    checkpoint: str,
    device: str = "cpu",
    cfg_options: Optional[Dict[str, Any]] = None,
) -> torch.nn.Module:
    """Build the config's segmentor and load a checkpoint saved by ``tools/train.py``.

    The backbone's pretrained init is switched off and the auxiliary head dropped (it is not
    used for prediction). The class names and palette come from the checkpoint's
    ``dataset_meta``, else from the config's test dataset.

    Args:
        config (str | Config): An mmseg config (``configs/seg/*.py``).
        checkpoint (str): Segmentor checkpoint.
        device (str): Torch device. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Config overrides. Defaults to None.

    Returns:
        torch.nn.Module: The segmentor in eval mode, with ``cfg`` and ``dataset_meta`` set.

    Raises:
        PreflightError: When the config or checkpoint is missing, or the checkpoint is not a
            segmentor (an image classifier or a detector), naming what it looks like.
        ValueError: When the checkpoint's weights do not fit the config's model.
    """
    cfg = load_task_config(config, "seg", cfg_options)
    check_checkpoint_task(checkpoint, cfg, "seg")

    init_default_scope("mmseg")
    from mmseg.registry import MODELS

    cfg.model.backbone.init_cfg = None
    cfg.model.pretrained = None
    cfg.model.train_cfg = None
    cfg.model.auxiliary_head = None
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    ckpt = load_trained_weights(
        model,
        checkpoint,
        cfg,
        "backbone arch, head width, number of classes",
        drop_prefixes=("auxiliary_head.", "module.auxiliary_head."),
    )
    model.dataset_meta = _dataset_meta(ckpt, cfg, model.decode_head.num_classes)
    model.cfg = cfg
    return model.to(device).eval()


def _dataset_meta(ckpt: Any, cfg: Config, num_classes: int) -> Dict[str, Any]:
    meta = (ckpt.get("meta") or {}).get("dataset_meta") if isinstance(ckpt, dict) else None
    if not meta or "classes" not in meta:
        from mmseg.registry import DATASETS

        dataset_type = cfg.get("test_dataloader", {}).get("dataset", {}).get("type")
        dataset_cls = DATASETS.get(dataset_type) if dataset_type else None
        meta = dict(getattr(dataset_cls, "METAINFO", {}) or {})
    classes = list(meta.get("classes") or [])
    palette = [list(c) for c in (meta.get("palette") or [])]
    if len(classes) != num_classes:
        classes = [f"class {i}" for i in range(num_classes)]
    if len(palette) != num_classes:
        rng = np.random.default_rng(42)
        palette = rng.integers(0, 256, size=(num_classes, 3)).tolist()
    return dict(classes=classes, palette=palette)


def build_demo_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline for in-memory images, without annotation loading."""
    steps = cfg.get("test_dataloader", {}).get("dataset", {}).get("pipeline")
    if steps is None:
        steps = cfg.get("test_pipeline")
    if not steps:
        raise PreflightError(f"the config {cfg.filename} has no test pipeline")
    steps = [dict(s) for s in steps if s.get("type") not in _ANNOTATION_LOADERS]
    steps[0] = dict(type="LoadImageFromNDArray")
    init_default_scope("mmseg")
    return Compose(steps)


@torch.no_grad()
def predict_labels(model: torch.nn.Module, pipeline: Compose, image: np.ndarray) -> np.ndarray:
    """Segment one BGR image as mmseg's ``test_step``, with memory bounded for big photos.

    mmseg resizes all ``C`` logit maps to the image's size at once (4 GB of floats for 21
    classes at 48 megapixels) before the arg-max; here they are resized one class at a time,
    with the same ``F.interpolate``, and arg-maxed as they come (first maximum kept, as
    ``argmax``): the same labels.

    Args:
        model (torch.nn.Module): From :func:`init_segmentor`.
        pipeline (Compose): From :func:`build_demo_pipeline`.
        image (np.ndarray): ``(H, W, 3)`` uint8 BGR image.

    Returns:
        np.ndarray: ``(H, W)`` int64 class labels.
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
    logits = model.test_step(batch)[0].seg_logits.data.cpu()
    num_classes = logits.shape[0]
    # uint8 while the float maps are alive (1 byte a pixel), int64 only once they are freed
    labels = torch.zeros(ori_shape, dtype=torch.uint8 if num_classes <= 256 else torch.int64)
    best = F.interpolate(
        logits[None, :1], ori_shape, mode="bilinear", align_corners=model.align_corners
    )
    for c in range(1, num_classes):
        scores = F.interpolate(
            logits[None, c : c + 1], ori_shape, mode="bilinear", align_corners=model.align_corners
        )
        labels.masked_fill_(scores[0, 0] > best[0, 0], c)
        torch.maximum(best, scores, out=best)
    del best, scores
    return labels.to(torch.int64).numpy()


def render(
    image_bgr: np.ndarray,
    labels: np.ndarray,
    dataset_meta: Dict[str, Any],
    opacity: float = 0.5,
) -> np.ndarray:
    """Blend the class colours over the image and add the legend.

    Args:
        image_bgr (np.ndarray): ``(H, W, 3)`` uint8 BGR image.
        labels (np.ndarray): ``(H, W)`` class labels.
        dataset_meta (dict): ``classes`` and ``palette`` (RGB).
        opacity (float): Opacity of the class colours, in (0, 1]. Defaults to 0.5.

    Returns:
        np.ndarray: RGB uint8, the blended image with the legend on its right.
    """
    palette = dataset_meta["palette"]
    blended = blend_classes(image_bgr[..., ::-1], labels, palette, opacity)
    return add_legend(blended, labels, dataset_meta["classes"], palette)


def _segment_one(
    model: torch.nn.Module, pipeline: Compose, path: str, out_dir: str, opacity: float
) -> Tuple[str, List[str]]:
    """Read, segment, draw and write one image; returns the file written and the classes."""
    image = read_image(path)
    labels = predict_labels(model, pipeline, image)
    out_file = osp.join(out_dir, output_name(path, ".png"))
    write_image(out_file, render(image, labels, model.dataset_meta, opacity)[..., ::-1])
    classes = model.dataset_meta["classes"]
    counts = np.bincount(labels.ravel(), minlength=len(classes))  # np.unique would sort a copy
    return out_file, [classes[i] for i in np.flatnonzero(counts)]


def run_seg_demo(
    inputs: str,
    config: str,
    weights: str,
    out_dir: str = "outputs/seg_demo",
    opacity: float = 0.5,
    device: str = "cpu",
    log: Any = print,
) -> DemoSummary:
    """Segment an image or every image of a folder and write the blended pictures.

    Args:
        inputs (str): Image file or folder.
        config (str): Segmentation config.
        weights (str): Segmentor checkpoint.
        out_dir (str): Output folder; ``<out_dir>/<image name>.png``. Defaults to
            ``'outputs/seg_demo'``.
        opacity (float): Opacity of the class colours, in (0, 1]. Defaults to 0.5.
        device (str): Torch device. Defaults to ``'cpu'``.
        log (callable): Receives one line per image segmented. Defaults to print.

    Returns:
        DemoSummary: The files written and the images skipped with the reason (each also
        reported on stderr as ``skipped <image>: <reason>``).

    Raises:
        ValueError: For an opacity outside (0, 1].
        FileNotFoundError: When ``inputs`` does not exist or holds no images.
        PreflightError: For a missing config or checkpoint, or a checkpoint of another task.
    """
    if not 0.0 < opacity <= 1.0:
        raise ValueError(f"opacity must be in (0, 1], got {opacity}")
    files = list_images(inputs)
    model = init_segmentor(config, weights, device=device)
    pipeline = build_demo_pipeline(model.cfg)
    os.makedirs(out_dir, exist_ok=True)
    summary = DemoSummary()
    done = process_each(
        files, lambda path: _segment_one(model, pipeline, path, out_dir, opacity), summary.skipped
    )
    for path, (out_file, names) in done:
        summary.written.append(out_file)
        log(f"{path} -> {out_file} ({', '.join(names)})")
    return summary
