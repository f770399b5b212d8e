"""Detection demo: run a trained detector on images, draw its boxes and print them as JSON.

Behind ``tools/demo/image_demo.py``. The detector comes from
:func:`~edgenext_dense.apis.loading.load_trained_model` (a classification checkpoint is refused
with a message saying what to pass instead); each image goes through mmdet's
``inference_detector`` and mmdet's :class:`~mmdet.visualization.DetLocalVisualizer` draws the
boxes, class names and scores. An image that cannot be read, detected, drawn or written is
reported and skipped. Outputs follow mmdet's ``DetInferencer`` layout, named after the whole
image name (``pic.jpg`` and ``pic.png`` never clash)::

    OUT_DIR/vis/<image name>      the image with its detections drawn
    OUT_DIR/preds/<image name>.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os.path as osp
import sys
import uuid
from typing import Any, Callable, Dict, Sequence

import mmcv
import mmengine
import torch
from mmdet.apis import inference_detector
from mmdet.visualization import DetLocalVisualizer
from mmengine.logging import MMLogger

from edgenext_dense.apis.image_files import (
    IMAGE_EXTENSIONS,
    DemoSummary,
    add_demo_args,
    list_images,
    process_images,
    read_image,
)
from edgenext_dense.apis.loading import load_trained_model
from edgenext_dense.engine.preflight import PreflightError


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
    pred = pred[pred.scores >= score_thr]
    height, width = result.ori_shape[:2]
    detections = [
        dict(
            label=int(pred.labels[i]),
            **{"class": classes[int(pred.labels[i])]},
            score=round(float(pred.scores[i]), 4),
            bbox=[round(float(v), 1) for v in pred.bboxes[i]],
        )
        for i in torch.argsort(pred.scores, descending=True).tolist()
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
    nms_cfg = dict(iou_threshold=iou_threshold, class_agnostic=True)
    _, keep = batched_nms(pred.bboxes, pred.scores, pred.labels, nms_cfg)
    return pred[keep]


def run_demo(
    model: torch.nn.Module,
    inputs: Sequence[str],
    out_dir: str | None = None,
    score_thr: float = 0.3,
    log: Callable[[str], None] = print,
    one_per_object: bool = False,
) -> DemoSummary:
    """Detect objects in each image, drawing and saving the results; skip the images that fail.

    Args:
        model (torch.nn.Module): A detector from
            :func:`~edgenext_dense.apis.loading.load_trained_model`.
        inputs (Sequence[str]): Image paths.
        out_dir (str, optional): Where ``vis/`` and ``preds/`` are written; None writes nothing.
            Defaults to None.
        score_thr (float): Lowest score drawn and reported. Defaults to 0.3.
        log (Callable[[str], None]): Receives one JSON line per image. Defaults to ``print``.
        one_per_object (bool): Keep only the best class of boxes overlapping at IoU > 0.5
            (:func:`best_class_per_object`). Defaults to False.

    Returns:
        DemoSummary: The records of the images detected (see :func:`detections_to_dict`) and
        the ``(image, reason)`` skipped (each also reported on stderr).
    """
    visualizer = DetLocalVisualizer(name=f"edgenext_det_demo_{uuid.uuid4().hex[:8]}")
    visualizer.dataset_meta = model.dataset_meta

    def detect(image: str) -> Dict[str, Any]:
        img = read_image(image)
        result = inference_detector(model, img)
        if one_per_object:
            result.pred_instances = best_class_per_object(result.pred_instances)
        record = detections_to_dict(result, model.dataset_meta["classes"], score_thr, image)
        if out_dir is not None:
            name = osp.basename(image)
            drawing = name if name.lower().endswith(IMAGE_EXTENSIONS) else f"{name}.jpg"
            out_file = osp.join(out_dir, "vis", drawing)
            visualizer.add_datasample(
                name, mmcv.bgr2rgb(img), result, draw_gt=False, pred_score_thr=score_thr,
                out_file=out_file,
            )  # fmt: skip
            json_file = osp.join(out_dir, "preds", f"{name}.json")
            mmengine.dump(record, json_file, indent=2)
            record.update(out_file=out_file, json_file=json_file)
        log(json.dumps(record))
        return record

    return process_images(inputs, detect)


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
    add_demo_args(parser, "det")
    parser.add_argument(
        "--score-thr", type=float, default=0.3, help="lowest score drawn and printed (default 0.3)"
    )
    parser.add_argument(
        "--one-per-object",
        action="store_true",
        help="one label per object: of boxes of other classes overlapping at IoU > 0.5, keep "
        "the best (the model's NMS is per class)",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_thr <= 1.0:
        parser.error(f"--score-thr must be in [0, 1], got {args.score_thr}")
    return args


def _logs_to_stderr() -> None:
    """Send mmengine's console log to stderr, so that stdout carries only the JSON lines."""
    for handler in MMLogger.get_current_instance().handlers:
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
            model = load_trained_model(args.config, args.weights, "det", device=args.device)
    except (PreflightError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    summary = run_demo(
        model, images, args.out_dir, args.score_thr, one_per_object=args.one_per_object
    )
    print(
        f"{summary.line()}; drawings in {osp.join(args.out_dir, 'vis')}, "
        f"detections in {osp.join(args.out_dir, 'preds')}",
        file=sys.stderr,
    )
    return 0 if summary.results else 1
