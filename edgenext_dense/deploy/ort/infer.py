"""Run an exported model on images with ONNX Runtime: the engine of ``tools/deploy/onnx_infer.py``.

Outputs follow the PyTorch demos:

- detection (``tools/demo/image_demo.py``): one JSON line per image on stdout
  (``image``, ``height``, ``width``, ``detections``: ``label``, ``class``, ``score``,
  ``bbox`` [x1, y1, x2, y2] in the image's pixels, scores at least ``--score-thr``),
  ``OUT_DIR/vis/<image name>`` drawn and ``OUT_DIR/preds/<image name>.json``;
- segmentation (``tools/demo/image_seg_demo.py``): ``OUT_DIR/<image name>.png``, the class
  colours blended over the image with a legend, and one line per image;
- classification (``tools/demo/image_classify.py``): the top-5 as one JSON line per image
  (and ``OUT_DIR/preds/<image name>.json``).

Folders are processed one image at a time; an image that cannot be read, predicted, drawn or
written is reported on stderr and skipped (:func:`.images.process_each`).
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .images import (
    list_images,
    output_name,
    output_paths,
    process_each,
    read_image,
    summary_line,
    write_image,
    write_json,
)
from .metadata import MetadataError, parse_metadata
from .postprocess import classification_topk, detection_postprocess, segmentation_labels
from .preprocess import preprocess_image
from .visualize import draw_detections, draw_segmentation


# --------------------------------------------------------------------------- backend
# Where sessions are created and their metadata read: another runtime would sit beside.
def create_session(
    path: str,
    threads: Optional[int] = None,
    providers: Optional[Sequence[str]] = None,
    optimize: bool = True,
) -> Any:
    """An ONNX Runtime ``InferenceSession``, sequential, with full graph optimisation.

    Args:
        path (str): The ``.onnx`` file; FileNotFoundError when it does not exist.
        threads (int, optional): ``intra_op_num_threads``; None: one per physical core.
        providers (Sequence[str], optional): Execution providers. Defaults to None (CPU).
        optimize (bool): False skips graph optimisation (to read metadata only).
    """
    import onnxruntime as ort

    if not osp.isfile(path):
        raise FileNotFoundError(f"the ONNX model {path} does not exist")
    options = ort.SessionOptions()
    level = "ORT_ENABLE_ALL" if optimize else "ORT_DISABLE_ALL"
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(
        path, options, providers=list(providers or ["CPUExecutionProvider"])
    )


def read_metadata(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The checked edgenext_dense metadata of an exported model (see :mod:`.metadata`).

    Raises:
        MetadataError: When the file was not written by ``tools/deploy/export_onnx.py``.
    """
    path = os.fspath(path)
    session = create_session(path, optimize=False)
    return parse_metadata(session.get_modelmeta().custom_metadata_map, path)


# --------------------------------------------------------------------------- model
class OnnxModel:
    """An exported model with its preprocessing and post-processing.

    Args:
        path (str): The ``.onnx`` file written by ``tools/deploy/export_onnx.py``.
        threads (int, optional): ONNX Runtime intra-op threads. Defaults to None.
        providers (Sequence[str], optional): Execution providers. Defaults to None (CPU).

    Raises:
        MetadataError: When the file carries no edgenext_dense metadata.
    """

    def __init__(
        self, path: str, threads: Optional[int] = None, providers: Optional[Sequence[str]] = None
    ) -> None:
        self.path = path
        self.session = create_session(path, threads, providers)
        self.meta = parse_metadata(self.session.get_modelmeta().custom_metadata_map, path)
        self.task: str = self.meta["task"]
        self.classes: List[str] = [str(c) for c in self.meta["classes"]]

    def forward(self, batch: np.ndarray) -> List[np.ndarray]:
        """The graph's outputs (``meta['output_names']``) for a preprocessed float32 batch."""
        return self.session.run(self.meta["output_names"], {self.meta["input_name"]: batch})

    def predict(self, image_bgr: np.ndarray) -> Dict[str, Any]:
        """Predict one ``(H, W, 3)`` uint8 BGR image as the PyTorch model with its test pipeline.

        Returns:
            dict: Detection: ``bboxes`` (original-image pixels), ``scores``, ``labels``, best
            first. Segmentation: ``labels`` ``(H, W)``. Classification: ``pred_label``,
            ``pred_score``, ``pred_class``, ``topk``. Each also holds ``ori_shape``.
        """
        batch, info = preprocess_image(image_bgr, self.meta)
        outputs = self.forward(batch)
        post = self.meta.get("postprocess") or {}
        if self.task == "det":
            result = detection_postprocess(*(o[0] for o in outputs), info["scale_factor"])
        elif self.task == "seg":
            result = dict(labels=segmentation_labels(outputs[0][0], info["ori_shape"], post))
        else:
            result = classification_topk(outputs[0][0], self.classes, int(post.get("topk", 5)))
        result["ori_shape"] = info["ori_shape"]
        return result


# --------------------------------------------------------------------------- images
@dataclass
class InferenceSummary:
    """What a run did: one record per image processed, ``(image, reason)`` per image skipped."""

    results: List[Dict[str, Any]] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)


def _process_one(
    model: OnnxModel, image: str, out_dir: Optional[str], score_thr: float, opacity: float
) -> Dict[str, Any]:
    """Read and predict one image and write its outputs; returns its record."""
    img = read_image(image)
    result = model.predict(img)
    if model.task == "seg":
        labels = result["labels"]
        counts = np.bincount(labels.ravel(), minlength=len(model.classes))  # np.unique: a copy
        present = [model.classes[i] for i in np.flatnonzero(counts[: len(model.classes)])]
        record = dict(image=image, height=labels.shape[0], width=labels.shape[1], classes=present)
        if out_dir is not None:
            record["out_file"] = osp.join(out_dir, output_name(image, ".png"))
            write_image(record["out_file"], draw_segmentation(img, labels, model.meta, opacity))
        return dict(record, labels=labels)
    if model.task == "det":
        keep = np.flatnonzero(result["scores"] >= score_thr)  # already best first
        height, width = result["ori_shape"]
        detections = [
            {
                "label": int(result["labels"][i]),
                "class": model.classes[int(result["labels"][i])],
                "score": round(float(result["scores"][i]), 4),
                "bbox": [round(float(v), 1) for v in result["bboxes"][i]],
            }
            for i in keep
        ]
        record = dict(image=image, height=int(height), width=int(width), detections=detections)
    else:
        record = dict(image=image, **{k: v for k, v in result.items() if k != "ori_shape"})
    if out_dir is not None:
        vis_path, json_path = output_paths(out_dir, image)
        if model.task == "det":
            write_image(vis_path, draw_detections(img, record["detections"], model.meta))
        write_json(json_path, record)
        if model.task == "det":
            record["out_file"] = vis_path
        record["json_file"] = json_path
    return record


def run_inference(
    model: OnnxModel,
    inputs: Sequence[str],
    out_dir: Optional[str] = None,
    score_thr: float = 0.3,
    opacity: float = 0.5,
    log: Callable[[str], None] = print,
    keep_labels: bool = True,
) -> InferenceSummary:
    """Predict each image, writing the demo outputs; an image that fails is reported and skipped.

    Args:
        model (OnnxModel): The exported model.
        inputs (Sequence[str]): Image paths.
        out_dir (str, optional): Output folder; None writes nothing. Defaults to None.
        score_thr (float): Detection: lowest score reported and drawn. Defaults to 0.3.
        opacity (float): Segmentation: opacity of the class colours. Defaults to 0.5.
        log (Callable[[str], None]): Receives one line per image (JSON for detection and
            classification). Defaults to ``print``.
        keep_labels (bool): Segmentation: keep each image's ``labels`` in its record; False
            spares a folder of big photos from holding every label map. Defaults to True.

    Returns:
        InferenceSummary: The records and the skipped images (each also reported on stderr
        as ``skipped <image>: <reason>``).
    """
    summary = InferenceSummary()
    done = process_each(
        inputs,
        lambda image: _process_one(model, image, out_dir, score_thr, opacity),
        summary.skipped,
    )
    for image, record in done:
        if model.task == "seg":
            target, classes = record.get("out_file", "(not written)"), ", ".join(record["classes"])
            log(f"{image} -> {target} ({classes})")
            if not keep_labels:
                del record["labels"]
        else:
            log(json.dumps(record))
        summary.results.append(record)
    return summary


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``tools/deploy/onnx_infer.py``'s command line (``sys.argv[1:]`` when None)."""
    parser = argparse.ArgumentParser(
        description="Run a model exported by tools/deploy/export_onnx.py on an image or a "
        "folder with ONNX Runtime only (no PyTorch): detections as JSON lines and drawn "
        "images, blended segmentation masks, or the classifier's top-5."
    )
    add = parser.add_argument
    add("inputs", help="an image file or a folder of images")
    add("--model", required=True, help="the exported .onnx file")
    add(
        "--out-dir",
        default="outputs/onnx_infer",
        help="output folder (default outputs/onnx_infer); '' writes nothing",
    )
    add(
        "--score-thr",
        type=float,
        default=0.3,
        help="detection: lowest score drawn and printed (default 0.3)",
    )
    add("--opacity", type=float, default=0.5, help="segmentation: mask opacity (default 0.5)")
    add("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: auto)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.score_thr <= 1.0:
        parser.error(f"--score-thr must be in [0, 1], got {args.score_thr}")
    if not 0.0 < args.opacity <= 1.0:
        parser.error(f"--opacity must be in (0, 1], got {args.opacity}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``onnx_infer``: 0 when at least one image was processed, 1 on an error or none."""
    args = parse_args(argv)
    try:
        images = list_images(args.inputs)
        model = OnnxModel(args.model, threads=args.threads)
    except (FileNotFoundError, MetadataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001  (onnxruntime's load errors: not an ONNX file)
        print(f"error: cannot load the ONNX model {args.model}: {err}", file=sys.stderr)
        return 1
    out_dir = args.out_dir or None
    summary = run_inference(model, images, out_dir, args.score_thr, args.opacity, keep_labels=False)
    done, skipped = len(summary.results), len(summary.skipped)
    where = f"; outputs in {out_dir}" if out_dir else ""
    print(f"{summary_line(done, skipped)}{where}", file=sys.stderr)
    return 0 if done else 1
