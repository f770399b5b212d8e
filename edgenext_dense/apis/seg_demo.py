"""Segmentation demo: run a trained segmentor on images and blend its classes over them.

Behind ``tools/demo/image_seg_demo.py``. Each prediction is drawn with mmseg's
:class:`~mmseg.visualization.SegLocalVisualizer` (the dataset palette blended over the image)
and a legend of the classes present, with their share of the pixels, is added on the right.
Folders are processed one image at a time; an unreadable image is reported and skipped.
"""

from __future__ import annotations

import os
import os.path as osp
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint

from edgenext_dense.engine.preflight import PreflightError, check_checkpoint_task

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Annotation loading is dropped from the test pipeline: demo images have no masks.
_ANNOTATION_LOADERS = ("LoadAnnotations", "LoadCheckedAnnotations")


class ImageReadError(ValueError):
    """An input image that cannot be read; the message names the file."""


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
    if isinstance(config, (str, os.PathLike)):
        if not osp.isfile(config):
            raise PreflightError(f"the config file {config} does not exist")
        cfg = Config.fromfile(str(config))
    else:
        cfg = config.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get("default_scope") != "mmseg" or "decode_head" not in cfg.get("model", {}):
        raise PreflightError(
            f"the config {cfg.filename} is not a segmentation config (default_scope="
            f"{cfg.get('default_scope')!r}, no model.decode_head): use one under configs/seg"
        )
    check_checkpoint_task(checkpoint, cfg, "seg")

    init_default_scope("mmseg")
    from mmseg.registry import MODELS

    cfg.model.backbone.init_cfg = None
    cfg.model.pretrained = None
    cfg.model.train_cfg = None
    cfg.model.auxiliary_head = None
    model = revert_sync_batchnorm(MODELS.build(cfg.model))

    ckpt = _load_checkpoint(checkpoint, map_location="cpu")
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else {}
    state = {
        (k[len("module.") :] if k.startswith("module.") else k): v
        for k, v in state.items()
        if not k.startswith(("auxiliary_head.", "module.auxiliary_head."))
    }
    try:
        incompatible = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise ValueError(
            f"the checkpoint {checkpoint} does not fit {cfg.filename}: {err}. Was it trained "
            "with another config (backbone arch, head width, number of classes)?"
        ) from err
    if incompatible.missing_keys or incompatible.unexpected_keys:
        raise ValueError(
            f"the checkpoint {checkpoint} does not fit {cfg.filename}: "
            f"{len(incompatible.missing_keys)} weights missing "
            f"(e.g. {incompatible.missing_keys[:3]}), {len(incompatible.unexpected_keys)} "
            f"unexpected (e.g. {incompatible.unexpected_keys[:3]}). Was it trained with "
            "another config?"
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


def read_image(path: str) -> np.ndarray:
    """Read an image as BGR uint8.

    Raises:
        ImageReadError: When the file is missing or not a decodable image.
    """
    if not osp.isfile(path):
        raise ImageReadError(f"{path} does not exist")
    try:
        img = mmcv.imread(path, flag="color")
    except Exception as err:  # noqa: BLE001  (whatever the decoder raises)
        raise ImageReadError(f"{path} is not a readable image: {err}") from err
    if img is None or img.size == 0:
        raise ImageReadError(f"{path} is not a readable image (corrupt or not an image file)")
    return img


def list_images(path: str) -> List[str]:
    """The image files of a folder (sorted, by extension), or the file itself.

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


@torch.no_grad()
def predict_labels(model: torch.nn.Module, pipeline: Compose, image: np.ndarray) -> np.ndarray:
    """Segment one BGR image; returns (H, W) int64 class labels at the image's size."""
    data = pipeline(dict(img=image))
    batch = dict(inputs=[data["inputs"]], data_samples=[data["data_samples"]])
    result = model.test_step(batch)[0]
    return result.pred_sem_seg.data[0].cpu().numpy()


def draw_legend(
    labels: np.ndarray,
    classes: Sequence[str],
    palette: Sequence[Sequence[int]],
    height: int,
) -> np.ndarray:
    """A white RGB panel listing the classes present, largest share first, with their colour.

    Args:
        labels (np.ndarray): (H, W) predicted labels.
        classes (Sequence[str]): Class names.
        palette (Sequence[Sequence[int]]): RGB colour of each class.
        height (int): Least panel height (the image's).

    Returns:
        np.ndarray: (max(height, rows), W_legend, 3) uint8 RGB.
    """
    counts = np.bincount(labels.ravel(), minlength=len(classes))[: len(classes)]
    present = [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1
    row, pad, swatch = 22, 8, 14
    lines = [f"{classes[i]} {100.0 * counts[i] / labels.size:.1f}%" for i in present]
    text_w = max([cv2.getTextSize(t, font, scale, thick)[0][0] for t in lines] + [60])
    panel = np.full(
        (max(height, pad * 2 + row * (len(lines) + 1)), pad * 3 + swatch + text_w, 3),
        255,
        np.uint8,
    )
    cv2.putText(panel, "classes", (pad, pad + 12), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
    for k, (i, text) in enumerate(zip(present, lines), start=1):
        y = pad + k * row
        color = tuple(int(c) for c in palette[i])
        cv2.rectangle(panel, (pad, y), (pad + swatch, y + swatch), color, -1)
        cv2.rectangle(panel, (pad, y), (pad + swatch, y + swatch), (0, 0, 0), 1)
        cv2.putText(
            panel, text, (2 * pad + swatch, y + 12), font, scale, (0, 0, 0), thick, cv2.LINE_AA
        )
    return panel


def render(
    image_bgr: np.ndarray,
    labels: np.ndarray,
    dataset_meta: Dict[str, Any],
    opacity: float = 0.5,
    visualizer: Any = None,
) -> np.ndarray:
    """Blend the class colours over the image and add the legend; returns RGB uint8."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    from mmseg.visualization import SegLocalVisualizer

    if visualizer is None:
        visualizer = SegLocalVisualizer(name=f"seg_demo_{id(image_bgr)}", alpha=opacity)
    visualizer.alpha = opacity
    visualizer.dataset_meta = dict(classes=dataset_meta["classes"], palette=dataset_meta["palette"])
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(labels[None].astype(np.int64)))
    rgb = mmcv.bgr2rgb(image_bgr)
    visualizer.add_datasample(
        "seg_demo", rgb, sample, draw_gt=False, draw_pred=True, with_labels=False
    )
    blended = visualizer.get_image()
    legend = draw_legend(labels, dataset_meta["classes"], dataset_meta["palette"], rgb.shape[0])
    canvas = np.full((legend.shape[0], blended.shape[1] + legend.shape[1], 3), 255, np.uint8)
    canvas[: blended.shape[0], : blended.shape[1]] = blended
    canvas[:, blended.shape[1] :] = legend
    return canvas


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
        out_dir (str): Output folder; ``<out_dir>/<image stem>.png``. Defaults to
            ``'outputs/seg_demo'``.
        opacity (float): Opacity of the class colours, in (0, 1]. Defaults to 0.5.
        device (str): Torch device. Defaults to ``'cpu'``.
        log (callable): Receives one line per image. Defaults to print.

    Returns:
        DemoSummary: The files written and the images skipped with the reason.

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
    from mmseg.visualization import SegLocalVisualizer

    visualizer = SegLocalVisualizer(name=f"seg_demo_{os.getpid()}_{id(model)}", alpha=opacity)
    os.makedirs(out_dir, exist_ok=True)
    summary = DemoSummary()
    for path in files:
        try:
            image = read_image(path)
        except ImageReadError as err:
            summary.skipped.append((path, str(err)))
            log(f"skipped: {err}")
            continue
        labels = predict_labels(model, pipeline, image)
        drawn = render(image, labels, model.dataset_meta, opacity, visualizer)
        out_file = osp.join(out_dir, f"{Path(path).stem}.png")
        mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        summary.written.append(out_file)
        names = [model.dataset_meta["classes"][i] for i in np.unique(labels)]
        log(f"{path} -> {out_file} ({', '.join(names)})")
    return summary
