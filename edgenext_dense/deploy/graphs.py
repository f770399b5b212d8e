"""Deployable graphs of the classifier, the SSDLite detector and the DeepLabv3 segmentor.

Each takes the normalised ``(B, 3, H, W)`` float32 RGB batch and returns: the classifier
``logits (B, classes)``; the detector mmdet ``predict``'s detections with the config's
``test_cfg`` as ``boxes (B, K, 4)``, ``scores (B, K)``, ``labels (B, K)`` (each image's best
first, then padding rows of label -1); the segmentor ``seg_logits (B, classes, H, W)`` at any
input size. The config's test resize, normalisation, classes and palette become the metadata.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple, Union

from mmengine.config import Config
from torch import nn

from edgenext_dense.apis.loading import load_trained_model
from edgenext_dense.deploy.graph_modules import DetectorGraph, ExportError, SegmentorGraph
from edgenext_dense.engine.config import (
    build_model_without_init,
    check_task,
    config_test_pipeline,
    dataset_meta,
    load_config,
    task_of,
)
from edgenext_dense.engine.preflight import PreflightError

CLASSIFIER_SPEC = "classifier"
# test-pipeline steps that only load or pack data (nothing for the runtime to reproduce)
_PASSIVE_STEPS = ("LoadImageFromFile", "LoadImageFromNDArray", "LoadAnnotations")
_PASSIVE_STEPS += ("LoadCheckedAnnotations", "PackDetInputs", "PackSegInputs")


@dataclass
class DeployModel:
    """A graph to export, what it takes and gives, the runtime's metadata and the full PyTorch
    ``model`` (for comparisons); ``task`` may also be ``'backbone'`` (benchmarks)."""

    graph: nn.Module
    task: str
    input_size: Tuple[int, int]
    output_names: Tuple[str, ...]
    dynamic_hw: bool
    meta: Dict[str, Any] = field(default_factory=dict)
    model: Optional[nn.Module] = None


def config_task(cfg: Config) -> str:
    """``'det'`` or ``'seg'``, checked against the config's head.

    Raises:
        ExportError: For any other config, naming what to pass instead.
    """
    try:
        task = task_of(cfg)
        check_task(cfg, task)
    except PreflightError as err:
        raise ExportError(f"{err}, or '{CLASSIFIER_SPEC}' for an ImageNet checkpoint") from err
    return task


def pipeline_resize(cfg: Config, task: str) -> Dict[str, Any]:
    """The test pipeline's resize as runtime metadata (types in ``ort.preprocess``).

    Raises:
        ExportError: For a step the runtime cannot reproduce (flips, padding, Pillow
            resizes...), or a detector whose input size varies per image.
    """
    name = cfg.filename
    resizes = []
    for step in config_test_pipeline(cfg):
        if step.get("type") == "Resize":
            resizes.append(step)
        elif step.get("type") not in _PASSIVE_STEPS:
            raise ExportError(
                f"the test pipeline of {name} has a {step.get('type')} step, which the ONNX "
                f"runtime does not reproduce (it knows {', '.join(_PASSIVE_STEPS)} and one "
                "Resize); export with a config whose test pipeline is a single Resize"
            )
    if len(resizes) > 1:
        raise ExportError(f"the test pipeline of {name} has {len(resizes)} Resize steps")
    if not resizes and task == "det":
        raise ExportError(
            f"the detector config {name} has no test-time Resize: the exported graph needs "
            "one fixed input size (its priors are constants)"
        )
    if not resizes:
        return dict(type="none")
    step, interpolation = resizes[0], resizes[0].get("interpolation", "bilinear")
    scale = step.get("scale")
    if scale is None:
        raise ExportError(f"the Resize of {name} has no 'scale' (scale_factor only)")
    scale = [int(scale)] * 2 if isinstance(scale, (int, float)) else [int(s) for s in scale]
    if step.get("backend", "cv2") != "cv2":
        raise ExportError(
            f"the Resize of {name} uses backend {step['backend']!r}; "
            "the runtime reproduces mmcv's cv2 backend only"
        )
    if not step.get("keep_ratio", False):
        return dict(type="stretch", size=scale, interpolation=interpolation)
    if task == "det":
        raise ExportError(
            f"the detector config {name} resizes with keep_ratio=True, so its input size "
            "varies per image; the exported graph has fixed priors and needs keep_ratio=False "
            "(SSDLite's 320x320)"
        )
    return dict(type="keep_ratio", scale=scale, interpolation=interpolation)


def config_input_size(cfg: Config, task: str, resize: Dict[str, Any]) -> Tuple[int, int]:
    """The natural ``(H, W)``: the stretch resize's size, else the training crop, else 512."""
    if resize["type"] == "stretch":
        return int(resize["size"][1]), int(resize["size"][0])
    crop = cfg.get("crop_size") or (cfg.model.get("data_preprocessor") or {}).get("size")
    return (int(crop[0]), int(crop[1])) if crop else (512, 512)


def deploy_from_config(
    config: Union[str, Config],
    checkpoint: Optional[str] = None,
    input_size: Optional[Sequence[int]] = None,
    cfg_options: Optional[Dict[str, Any]] = None,
) -> DeployModel:
    """Wrap a detector or segmentor config's model for export.

    Args:
        config (str | Config): ``configs/det/*.py``, ``configs/seg/*.py`` or ``mmdet::...``.
        checkpoint (str, optional): From ``tools/train.py``; None keeps random weights.
        input_size (Sequence[int], optional): ``(H, W)``; None: the stretch resize's size,
            else the training crop, else 512x512.
        cfg_options (dict, optional): Config overrides. Defaults to None.

    Raises:
        ExportError: For another kind of config or a test pipeline the runtime cannot follow.
        PreflightError: When the checkpoint is missing or holds another kind of model.
    """
    cfg = load_config(config, cfg_options)
    task = config_task(cfg)
    resize = pipeline_resize(cfg, task)
    natural = config_input_size(cfg, task, resize)
    size = natural if input_size is None else (int(input_size[0]), int(input_size[1]))
    if task == "det" and size != natural:
        warnings.warn(
            f"exporting {cfg.filename} at {size[0]}x{size[1]} while its test pipeline resizes "
            f"to {natural[0]}x{natural[1]}: images will be resized to the exported size",
            stacklevel=2,
        )
        resize = dict(resize, size=[size[1], size[0]])
    if checkpoint is None:
        model = build_model_without_init(cfg)
        head = model.bbox_head if task == "det" else model.decode_head
        model.dataset_meta = dataset_meta(cfg, head.num_classes)
    else:
        model = load_trained_model(cfg, checkpoint, task)
    dp = cfg.model.get("data_preprocessor") or cfg.get("data_preprocessor") or {}
    if dp.get("mean") is None or dp.get("std") is None:
        raise ExportError(
            f"the data_preprocessor of {cfg.filename} has no mean/std: the runtime needs them "
            "to normalise images as the model was trained"
        )
    meta: Dict[str, Any] = dict(
        task=task,
        model=str(cfg.filename),
        checkpoint=None if checkpoint is None else str(checkpoint),
        classes=[str(c) for c in model.dataset_meta["classes"]],
        palette=[[int(v) for v in c] for c in model.dataset_meta["palette"]],
        preprocess=dict(
            mean=[float(m) for m in dp["mean"]],
            std=[float(s) for s in dp["std"]],
            to_rgb=bool(dp.get("bgr_to_rgb", False) or dp.get("rgb_to_bgr", False)),
            resize=resize,
        ),
    )
    if task == "det":
        try:
            graph = DetectorGraph(model, size)
        except ExportError as err:
            raise ExportError(f"{cfg.filename}: {err}") from err
        return DeployModel(graph, "det", size, graph.OUTPUT_NAMES, False, meta, model)
    graph = SegmentorGraph(model)
    meta["postprocess"] = dict(
        align_corners=graph.align_corners,
        threshold=float(getattr(model.decode_head, "threshold", None) or 0.3),
    )
    return DeployModel(graph, "seg", size, ("seg_logits",), True, meta, model)


def deploy_classifier(
    spec: str, checkpoint: str, input_size: Optional[Sequence[int]] = None
) -> DeployModel:
    """Wrap an ImageNet EdgeNeXt classifier for export (the model itself is the graph).

    Args:
        spec (str): ``'classifier'`` (arch read from the checkpoint) or ``'classifier:ARCH'``.
        checkpoint (str): A classification checkpoint (any public layout) or model-zoo name.
        input_size (Sequence[int], optional): A square crop; None keeps the zoo's 256 crop.

    Raises:
        ExportError: For a non-square size, or a checkpoint that is not an ImageNet classifier.
    """
    from edgenext_dense.apis.classification import imagenet_classes, init_classifier
    from edgenext_dense.model_zoo import IMAGENET_MEAN, IMAGENET_STD
    from edgenext_dense.models.backbones.edgenext_checkpoint import CheckpointError

    arch = spec.split(":", 1)[1] if ":" in spec else None
    try:
        model = init_classifier(checkpoint, arch=arch)
    except (CheckpointError, ValueError, KeyError) as err:
        raise ExportError(
            f"cannot export {checkpoint} as a classifier: {err}. For a detector or segmentor "
            "checkpoint pass its config (configs/det/*.py or configs/seg/*.py) instead of "
            f"'{CLASSIFIER_SPEC}'"
        ) from err
    crop, short = int(model.crop_size), int(model.resize_short)
    if input_size is not None:  # the short-side resize keeps its ratio to the crop
        if int(input_size[0]) != int(input_size[1]):
            raise ExportError(f"the classifier takes a square crop; got --shape {input_size}")
        short = int(round(short * int(input_size[0]) / crop))
        crop = int(input_size[0])
    num_classes = int(model.head.out_features)
    classes = (
        imagenet_classes() if num_classes == 1000 else [f"class {i}" for i in range(num_classes)]
    )
    resize = dict(
        type="short_side_crop",
        short_side=short,
        crop_size=crop,
        interpolation="bicubic",
        backend="pillow",
    )
    meta: Dict[str, Any] = dict(
        task="cls",
        model=spec,
        checkpoint=str(checkpoint),
        classes=list(classes),
        palette=[],
        preprocess=dict(
            mean=list(IMAGENET_MEAN), std=list(IMAGENET_STD), to_rgb=True, resize=resize
        ),
        postprocess=dict(topk=5),
    )
    return DeployModel(model, "cls", (crop, crop), ("logits",), False, meta, model)


def load_deploy_model(
    config: str,
    checkpoint: Optional[str] = None,
    input_size: Optional[Sequence[int]] = None,
    cfg_options: Optional[Dict[str, Any]] = None,
) -> DeployModel:
    """Wrap what ``export_onnx.py CONFIG CHECKPOINT`` names: a classifier or a config's model.

    Args:
        config (str): ``'classifier'``, ``'classifier:ARCH'``, or a det/seg config path.
        checkpoint (str, optional): The weights (required for the classifier).
        input_size (Sequence[int], optional): ``(H, W)``; None: the model's own.
        cfg_options (dict, optional): Config overrides (det/seg). Defaults to None.
    """
    if config.split(":", 1)[0] == CLASSIFIER_SPEC:
        if checkpoint is None:
            raise ExportError("exporting a classifier needs its ImageNet checkpoint")
        return deploy_classifier(config, checkpoint, input_size)
    return deploy_from_config(config, checkpoint, input_size, cfg_options)
