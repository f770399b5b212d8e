"""Detection demo: run a trained detector on images, draw its boxes and print them as JSON.

Behind ``tools/demo/image_demo.py``. The detector is built from its config and loaded from a
checkpoint saved by ``tools/train.py`` (a classification checkpoint is refused with a message
saying what to pass instead); each image goes through the config's test pipeline and mmdet's
``inference_detector``, and mmdet's :class:`~mmdet.visualization.DetLocalVisualizer` draws the
boxes, class names and scores. Folders are processed one image at a time; an image that cannot
be read, detected, drawn or written is reported and skipped
(:mod:`edgenext_dense.deploy.ort.images`, shared with the ONNX Runtime runner). Outputs follow
mmdet's ``DetInferencer`` layout, named after the whole image name (``pic.jpg`` and ``pic.png``
never clash)::

    OUT_DIR/vis/<image name>      the image with its detections drawn
    OUT_DIR/preds/<image name>.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import os.path as osp
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope

from edgenext_dense.apis.loading import load_task_config, load_trained_weights
from edgenext_dense.deploy.ort.images import (
    list_images,
    output_paths,
    process_each,
    read_image,
    summary_line,
    write_image,
    write_json,
)
from edgenext_dense.engine.preflight import PreflightError, check_checkpoint_task


@dataclass
class DemoSummary:
    """What a demo run did.

    Args:
        results (list[dict]): One record per image detected (see :func:`detections_to_dict`).
        skipped (list[tuple[str, str]]): ``(image, reason)`` of the images that were skipped.
    """

    results: List[Dict[str, Any]] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)


# --------------------------------------------------------------------------- model
def load_detector(
    config: Union[str, os.PathLike, Config],
    checkpoint: str,
    device: str = "cpu",
    cfg_options: Dict[str, Any] | None = None,
) -> torch.nn.Module:
    """Build the config's detector and load a checkpoint saved by ``tools/train.py``.

    The backbone's pretrained init is switched off (the checkpoint holds every weight). The
    class names come from the checkpoint's ``dataset_meta``, else from the config's test
    dataset.

    Args:
        config (str | os.PathLike | Config): An mmdet config (``configs/det/*.py``).
        checkpoint (str): Detector checkpoint.
        device (str): Torch device. Defaults to ``'cpu'``.
        cfg_options (dict, optional): Config overrides. Defaults to None.

    Returns:
        torch.nn.Module: The detector in eval mode, with ``cfg`` and ``dataset_meta`` set.

    Raises:
        PreflightError: When the config or checkpoint is missing, or the checkpoint is not a
            detector (e.g. EdgeNeXt ImageNet weights), saying what it looks like.
        ValueError: When the checkpoint's weights do not fit the config's model.
    """
    cfg = load_task_config(config, "det", cfg_options)
    check_checkpoint_task(checkpoint, cfg, "det")

    init_default_scope("mmdet")
    from mmdet.registry import MODELS

    cfg.model.backbone.init_cfg = None
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    ckpt = load_trained_weights(model, checkpoint, cfg, "backbone arch, number of classes")
    model.dataset_meta = _dataset_meta(ckpt, cfg, model.bbox_head.num_classes)
    model.cfg = cfg
    return model.to(device).eval()


def _dataset_meta(ckpt: Any, cfg: Config, num_classes: int) -> Dict[str, Any]:
    """Class names and palette: the checkpoint's, else the config's test dataset's."""
    meta = (ckpt.get("meta") or {}).get("dataset_meta") if isinstance(ckpt, dict) else None
    if not meta or "classes" not in meta:
        dataset = cfg.get("test_dataloader", {}).get("dataset", {})
        meta = dict(dataset.get("metainfo") or {})
        if "classes" not in meta:
            from mmdet.registry import DATASETS

            dataset_cls = DATASETS.get(dataset.get("type", "CocoDataset"))
            meta = dict(getattr(dataset_cls, "METAINFO", {}) or {})
    classes = [str(c) for c in (meta.get("classes") or [])]
    if len(classes) != num_classes:
        classes = [f"class {i}" for i in range(num_classes)]
    palette = [tuple(int(v) for v in c) for c in (meta.get("palette") or [])]
    if len(palette) != num_classes:
        rng = np.random.default_rng(42)
        palette = [tuple(c) for c in rng.integers(0, 256, size=(num_classes, 3)).tolist()]
    return dict(classes=tuple(classes), palette=palette)


# --------------------------------------------------------------------------- detection
def detections_to_dict(
    result: Any, classes: Sequence[str], score_thr: float, image: str
) -> Dict[str, Any]:
    """The detections above ``score_thr`` as plain JSON-ready data, best first.

    Args:
        result (DetDataSample): One prediction of ``inference_detector``.
        classes (Sequence[str]): Class names by label.
        score_thr (float): Keep detections scoring at least this.
        image (str): The input image path.

    Returns:
        dict: ``image``, ``height``, ``width`` and ``detections``: a list of ``label``,
        ``class``, ``score`` and ``bbox`` ([x1, y1, x2, y2] in the image's pixels).
    """
    pred = result.pred_instances.cpu()
    keep = pred.scores >= score_thr
    scores, labels, boxes = pred.scores[keep], pred.labels[keep], pred.bboxes[keep]
    order = torch.argsort(scores, descending=True)
    height, width = result.ori_shape[:2]
    detections = [
        dict(
            label=int(labels[i]),
            **{"class": classes[int(labels[i])]},
            score=round(float(scores[i]), 4),
            bbox=[round(float(v), 1) for v in boxes[i]],
        )
        for i in order.tolist()
    ]
    return dict(image=image, height=int(height), width=int(width), detections=detections)


def best_class_per_object(pred: Any, iou_threshold: float = 0.5) -> Any:
    """Of detections of different classes on one object (IoU above the threshold), the best.

    The model's NMS is per class, as COCO scoring wants; a picture for people wants one label
    per object.

    Args:
        pred (InstanceData): ``bboxes``, ``scores`` and ``labels`` of one image.
        iou_threshold (float): Overlap that makes two boxes one object. Defaults to 0.5.

    Returns:
        InstanceData: The kept detections, best first.
    """
    from mmcv.ops import batched_nms

    if len(pred) == 0:
        return pred
    _, keep = batched_nms(
        pred.bboxes,
        pred.scores,
        pred.labels,
        dict(iou_threshold=iou_threshold, class_agnostic=True),
    )
    return pred[keep]


def _detect_one(
    model: torch.nn.Module,
    image: str,
    out_dir: str | None,
    score_thr: float,
    visualizer: Any,
    one_per_object: bool = False,
) -> Dict[str, Any]:
    """Read and detect one image and write its drawing and JSON; returns its record."""
    from mmdet.apis import inference_detector

    img = read_image(image)
    result = inference_detector(model, img)
    if one_per_object:
        result.pred_instances = best_class_per_object(result.pred_instances)
    record = detections_to_dict(result, model.dataset_meta["classes"], score_thr, image)
    if visualizer is not None:
        vis_path, json_path = output_paths(out_dir, image)
        visualizer.add_datasample(
            osp.basename(image),
            mmcv.bgr2rgb(img),
            data_sample=result,
            draw_gt=False,
            show=False,
            pred_score_thr=score_thr,
        )
        # written here, not by the visualizer (mmcv.imwrite ignores a failed write)
        write_image(vis_path, mmcv.rgb2bgr(visualizer.get_image()))
        write_json(json_path, record)
        record.update(out_file=vis_path, json_file=json_path)
    return record


def run_demo(
    model: torch.nn.Module,
    inputs: Sequence[str],
    out_dir: str | None = None,
    score_thr: float = 0.3,
    log=print,
    one_per_object: bool = False,
) -> DemoSummary:
    """Detect objects in each image, drawing and saving the results; skip the images that fail.

    Args:
        model (torch.nn.Module): A detector from :func:`load_detector`.
        inputs (Sequence[str]): Image paths.
        out_dir (str, optional): Where ``vis/`` and ``preds/`` are written; None writes nothing.
            Defaults to None.
        score_thr (float): Lowest score drawn and reported. Defaults to 0.3.
        log (Callable[[str], None]): Receives one JSON line per image. Defaults to ``print``.
        one_per_object (bool): Keep only the best class of boxes overlapping at IoU > 0.5
            (:func:`best_class_per_object`). Defaults to False.

    Returns:
        DemoSummary: The records of the images detected and the ``(image, reason)`` skipped
        (each also reported on stderr as ``skipped <image>: <reason>``).
    """
    from mmdet.visualization import DetLocalVisualizer

    visualizer = None
    if out_dir is not None:
        visualizer = DetLocalVisualizer(name=f"edgenext_det_demo_{uuid.uuid4().hex[:8]}")
        visualizer.dataset_meta = model.dataset_meta
    summary = DemoSummary()
    done = process_each(
        inputs,
        lambda image: _detect_one(model, image, out_dir, score_thr, visualizer, one_per_object),
        summary.skipped,
    )
    for _, record in done:
        log(json.dumps(record))
        summary.results.append(record)
    return summary


# --------------------------------------------------------------------------- command line
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``tools/demo/image_demo.py``'s command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` when None.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description="Draw a trained detector's boxes, class names and scores on images and "
        "print the detections as JSON (one line per image)."
    )
    parser.add_argument("inputs", help="an image file or a folder of images")
    parser.add_argument("config", help="the detector's config (configs/det/*.py)")
    parser.add_argument(
        "--weights", required=True, help="detector checkpoint saved by tools/train.py"
    )
    parser.add_argument(
        "--out-dir", default="outputs/det_demo", help="output folder (default: outputs/det_demo)"
    )
    parser.add_argument(
        "--score-thr", type=float, default=0.3, help="lowest score drawn and printed (default 0.3)"
    )
    parser.add_argument(
        "--one-per-object",
        action="store_true",
        help="one label per object: of boxes of other classes overlapping at IoU > 0.5, keep "
        "the best (the model's NMS is per class)",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_thr <= 1.0:
        parser.error(f"--score-thr must be in [0, 1], got {args.score_thr}")
    return args


def _logs_to_stderr() -> None:
    """Send mmengine's console log to stderr, so that stdout carries only the JSON lines."""
    logger = MMLogger.get_current_instance()
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the detection demo from the command line.

    Args:
        argv (Sequence[str], optional): Arguments; ``sys.argv[1:]`` when None.

    Returns:
        int: 0 when at least one image was processed, 1 on an error or when every image was
        skipped.
    """
    args = parse_args(argv)
    _logs_to_stderr()
    try:
        images = list_images(args.inputs)
        with contextlib.redirect_stdout(sys.stderr):  # mmengine print()s while loading
            model = load_detector(args.config, args.weights, device=args.device)
    except (PreflightError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    summary = run_demo(
        model,
        images,
        out_dir=args.out_dir,
        score_thr=args.score_thr,
        one_per_object=args.one_per_object,
    )
    done, skipped = len(summary.results), len(summary.skipped)
    print(
        f"{summary_line(done, skipped)}; drawings in {osp.join(args.out_dir, 'vis')}, "
        f"detections in {osp.join(args.out_dir, 'preds')}",
        file=sys.stderr,
    )
    return 0 if done else 1
