"""Score an exported model on a config's test set with the config's own mmdet/mmseg metric.

Behind ``tools/deploy/onnx_eval.py``. Each test image is predicted by
:class:`~edgenext_dense.deploy.ort.OnnxModel` as ``onnx_infer.py`` does, and the config's
``test_evaluator`` scores it against the ground truth, so the figures compare one to one with
``tools/test.py``'s. An image that cannot be read or predicted is reported and skipped (it then
has no prediction: ``CocoMetric`` counts its objects as missed).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import mmengine
import torch

from edgenext_dense.deploy.graph_modules import ExportError
from edgenext_dense.deploy.graphs import config_task
from edgenext_dense.deploy.ort import BackendError, OnnxModel
from edgenext_dense.deploy.ort.infer import add_backend_args
from edgenext_dense.engine.config import add_cfg_options_arg, load_config
from edgenext_dense.engine.preflight import PreflightError
from edgenext_dense.image_files import process_each, read_image, summary_line

# test-pipeline steps the runtime does itself (OnnxModel.predict reads and resizes the image)
_IMAGE_STEPS = ("LoadImageFromFile", "LoadImageFromNDArray", "Resize")


def _predict_sample(model: OnnxModel, dataset: Any, evaluator: Any, index: int) -> float:
    """Predict one test image onto its data sample and hand it to the evaluator; returns the
    prediction's seconds."""
    from mmengine.structures import InstanceData, PixelData

    sample = dataset[index]["data_samples"]
    image = read_image(sample.img_path)
    start = time.perf_counter()
    pred = model.predict(image)
    seconds = time.perf_counter() - start
    sample.set_metainfo(dict(ori_shape=tuple(pred["ori_shape"])))
    if model.task == "det":
        sample.pred_instances = InstanceData(
            bboxes=torch.from_numpy(pred["bboxes"]).float().reshape(-1, 4),
            scores=torch.from_numpy(pred["scores"]).float(),
            labels=torch.from_numpy(pred["labels"]).long(),
        )
    else:
        sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred["labels"]).long()[None])
    evaluator.process([sample])
    return seconds


def evaluate_onnx(
    config: str,
    model_path: str,
    threads: Optional[int] = None,
    limit: Optional[int] = None,
    log: Optional[Callable[[str], None]] = None,
    cfg_options: Optional[Dict[str, Any]] = None,
    backend: str = "onnxruntime",
    precision: Optional[str] = None,
) -> Dict[str, Any]:
    """Predict every image of ``config``'s test set with the runtime and score it.

    Args:
        config (str): The detection/segmentation config the model was exported from.
        model_path (str): The ``.onnx`` file (float32 or int8).
        threads (int, optional): ONNX Runtime intra-op threads. Defaults to None.
        limit (int, optional): Score only the first ``limit`` images. Defaults to None (all).
        log (Callable[[str], None], optional): Progress messages. Defaults to None.
        cfg_options (dict, optional): Config overrides (``--cfg-options``). Defaults to None.
        backend (str): ``'onnxruntime'`` or ``'openvino'``. Defaults to ``'onnxruntime'``.
        precision (str, optional): ``'fp32'``, ``'bf16'`` or ``'int8'``; None: the file's.

    Returns:
        dict: ``metrics`` (the evaluator's, e.g. ``coco/bbox_mAP`` or ``mIoU``), ``images``
        (predicted), ``skipped`` (``{'image', 'reason'}`` of each image that could not be
        read or predicted, also reported on stderr) and ``seconds`` (prediction only).

    Raises:
        ExportError: When the model's task is not the config's.
        ValueError: For a ``limit`` below 1, or when no test image could be predicted.
    """
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DATASETS, init_default_scope

    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    cfg = load_config(config, cfg_options)
    task = config_task(cfg)
    model = OnnxModel(model_path, threads, backend=backend, precision=precision)
    if model.task != task:
        raise ExportError(
            f"{model_path} is a {model.task!r} model but {config} is a {task!r} config: "
            "evaluate a model with the config it was exported from"
        )
    init_default_scope(cfg.default_scope)
    # the dataset only loads the ground truth: the runtime reads and resizes each image itself
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.pipeline = [s for s in dataset_cfg.pipeline if s["type"] not in _IMAGE_STEPS]
    dataset = DATASETS.build(dataset_cfg)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    count = len(dataset) if limit is None else min(limit, len(dataset))
    seconds, predicted = 0.0, 0
    skipped: List[Tuple[str, str]] = []
    for index, elapsed in process_each(
        range(count),
        lambda index: _predict_sample(model, dataset, evaluator, index),
        skipped,
        name=lambda index: str(dataset.get_data_info(index).get("img_path", f"image {index}")),
    ):
        seconds, predicted = seconds + elapsed, predicted + 1
        if log is not None and (index + 1) % 50 == 0:
            log(f"{index + 1}/{count} images")
    if not predicted:
        raise ValueError(
            f"none of the {count} test images of {config} could be predicted with "
            f"{model_path}: see the reasons above"
        )
    return dict(
        metrics={
            k: v if isinstance(v, str) else float(v)  # numpy scalars: JSON-ready
            for k, v in evaluator.evaluate(predicted).items()
        },
        images=predicted,
        skipped=[dict(image=image, reason=reason) for image, reason in skipped],
        seconds=round(seconds, 3),
    )


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``tools/deploy/onnx_eval.py``'s command line (``sys.argv[1:]`` when None)."""
    parser = argparse.ArgumentParser(
        description="Score an exported .onnx model (float32 or int8) on its config's test set "
        "with the config's own metric, predicting as onnx_infer.py does (ONNX Runtime or OpenVINO)."
    )
    parser.add_argument("config", help="the det/seg config the models were exported from")
    parser.add_argument("model", nargs="+", help="one or more .onnx files to score")
    add_backend_args(parser)
    parser.add_argument("--limit", type=int, default=None, help="score the first N images only")
    parser.add_argument("--json", help="write {model: result} as JSON here")
    add_cfg_options_arg(parser)
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Score from the command line: 0 when every model predicted at least one image (skipped
    images are reported), 1 on an error or when a model could predict none."""
    args = parse_args(argv)
    results = {}
    for path in args.model:
        try:
            result = evaluate_onnx(
                args.config,
                path,
                args.threads,
                args.limit,
                lambda m: print(m, file=sys.stderr),
                args.cfg_options,
                args.backend,
                args.precision,
            )
        except (ExportError, PreflightError, FileNotFoundError, ValueError, BackendError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        results[path] = result
        done, skipped = result["images"], len(result["skipped"])
        print(f"{path}: {summary_line(done, skipped)}", file=sys.stderr)
        shown = ", ".join(
            f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
            for k, v in result["metrics"].items()
        )
        print(f"{path} ({done} images, {skipped} skipped, {result['seconds']:.1f} s): {shown}")
    if args.json:
        mmengine.dump(results, args.json, file_format="json", indent=2)
    return 0
