"""Detection demo behind ``tools/demo/image_demo.py``: boxes drawn, detections printed as JSON.

mmdet's ``inference_detector`` detects and its ``DetLocalVisualizer`` draws, into
``DetInferencer``'s layout named after the whole image name (``pic.jpg`` and ``pic.png`` never
clash): ``OUT_DIR/vis/<image name>`` and ``OUT_DIR/preds/<image name>.json``.
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
from mmcv.ops import batched_nms
from mmdet.apis import inference_detector
from mmdet.visualization import DetLocalVisualizer
from mmengine.logging import MMLogger

from edgenext_dense.apis.image_files import add_demo_args, demo_main
from edgenext_dense.apis.loading import load_trained_model
from edgenext_dense.image_files import (
    DemoSummary,
    detections_record,
    list_images,
    output_paths,
    process_images,
    read_image,
)


def best_class_per_object(pred: Any, iou_threshold: float = 0.5) -> Any:
    """Of boxes of different classes overlapping above ``iou_threshold``, keep the best: the
    model's NMS is per class, as COCO scoring wants; a picture wants one label per object."""
    if len(pred) == 0:
        return pred
    nms_cfg = dict(iou_threshold=iou_threshold, class_agnostic=True)
    _, keep = batched_nms(pred.bboxes, pred.scores, pred.labels, nms_cfg)
    return pred[keep]


def run_demo(
    inputs: str,
    config: str,
    weights: str,
    out_dir: str | None = None,
    score_thr: float = 0.3,
    device: str = "cpu",
    log: Callable[[str], None] = print,
    one_per_object: bool = False,
) -> DemoSummary:
    """Detect objects in an image or a folder, drawing and saving them; failing images skipped.

    Args:
        inputs (str): Image file or folder.
        config (str): Detection config.
        weights (str): Detector checkpoint saved by ``tools/train.py``.
        out_dir (str, optional): Where ``vis/`` and ``preds/`` go; None writes nothing.
        score_thr (float): Lowest score drawn and reported. Defaults to 0.3.
        device (str): Torch device. Defaults to ``'cpu'``.
        log (Callable[[str], None]): Receives one JSON line per image. Defaults to ``print``.
        one_per_object (bool): Apply :func:`best_class_per_object`. Defaults to False.

    Returns:
        DemoSummary: The JSON records (:func:`~edgenext_dense.image_files.detections_record`)
        and the images skipped.
    """
    images = list_images(inputs)
    with contextlib.redirect_stdout(sys.stderr):  # mmengine print()s while loading
        model = load_trained_model(config, weights, "det", device=device)
    visualizer = DetLocalVisualizer(name=f"edgenext_det_demo_{uuid.uuid4().hex[:8]}")
    visualizer.dataset_meta = model.dataset_meta

    def detect(image: str) -> Dict[str, Any]:
        img = read_image(image)
        result = inference_detector(model, img)
        if one_per_object:
            result.pred_instances = best_class_per_object(result.pred_instances)
        pred = result.pred_instances.cpu()
        record = detections_record(
            image, img.shape, model.dataset_meta["classes"],
            pred.bboxes.numpy(), pred.scores.numpy(), pred.labels.numpy(), score_thr,
        )  # fmt: skip
        if out_dir is not None:
            out_file, json_file = output_paths(out_dir, image)
            visualizer.add_datasample(
                osp.basename(image), mmcv.bgr2rgb(img), result, draw_gt=False,
                pred_score_thr=score_thr, out_file=out_file,
            )  # fmt: skip
            mmengine.dump(record, json_file, indent=2)
            record.update(out_file=out_file, json_file=json_file)
        log(json.dumps(record))
        return record

    return process_images(images, detect)


def main(argv: Sequence[str] | None = None) -> int:
    """``tools/demo/image_demo.py``: 0 when at least one image was processed, else 1."""
    parser = argparse.ArgumentParser(
        description="Draw a trained detector's boxes, class names and scores on images and "
        "print the detections as JSON (one line per image)."
    )
    add_demo_args(parser, "det")
    parser.add_argument("--score-thr", type=float, default=0.3,
                        help="lowest score drawn and printed (default 0.3)")  # fmt: skip
    parser.add_argument(
        "--one-per-object",
        action="store_true",
        help="one label per object: of boxes of other classes overlapping at IoU > 0.5, keep "
        "the best (the model's NMS is per class)",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_thr <= 1.0:
        parser.error(f"--score-thr must be in [0, 1], got {args.score_thr}")
    # stdout carries only the JSON lines: mmengine's console log goes to stderr
    for handler in MMLogger.get_current_instance().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)
    return demo_main(
        lambda: run_demo(**vars(args)),  # the options are run_demo's arguments
        f"drawings in {osp.join(args.out_dir, 'vis')}, "
        f"detections in {osp.join(args.out_dir, 'preds')}",
    )
