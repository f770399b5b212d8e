"""The engine of ``tools/deploy/onnx_infer.py``: :class:`OnnxModel` and the loop over images.

Outputs follow the PyTorch demos: detection (``image_demo.py``) one JSON line per image (scores
at least ``--score-thr``), ``OUT_DIR/vis/<image name>`` and ``OUT_DIR/preds/<image name>.json``;
segmentation (``image_seg_demo.py``) ``OUT_DIR/<image name>.png``, the classes blended with a
legend; classification (``image_classify.py``) the top-5 as JSON lines and ``preds/`` files.
An image that cannot be read, predicted, drawn or written is reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import cv2
import numpy as np

from edgenext_dense.image_files import (
    DemoSummary,
    detections_record,
    draw_segmentation,
    list_images,
    output_paths,
    process_images,
    read_image,
    summary_line,
)

from .backends import BACKENDS, PRECISIONS, BackendError, create_session, open_model
from .metadata import MetadataError, parse_metadata
from .postprocess import classification_topk, detection_postprocess, segmentation_labels
from .preprocess import preprocess_image
from .visualize import draw_detections


def read_metadata(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The checked edgenext_dense metadata of an exported model (see :mod:`.metadata`).

    Raises:
        MetadataError: When the file was not written by ``tools/deploy/export_onnx.py``.
    """
    path = os.fspath(path)
    session = create_session(path, optimize=False)
    return parse_metadata(session.get_modelmeta().custom_metadata_map, path)


class OnnxModel:
    """An exported model with its preprocessing and post-processing.

    Args:
        path (str): The ``.onnx`` file written by ``tools/deploy/export_onnx.py``.
        threads (int, optional): Threads one inference may use. Defaults to None.
        providers (Sequence[str], optional): ONNX Runtime execution providers. Defaults to
            None (CPU).
        backend (str): ``'onnxruntime'`` or ``'openvino'``. Defaults to ``'onnxruntime'``.
        precision (str, optional): ``'fp32'``, ``'bf16'`` or ``'int8'``; None: what the file
            is (``'int8'`` when exported with ``--int8``, else ``'fp32'``). An int8 file runs
            at ``'int8'`` (what it leaves in float, in float32) or, on OpenVINO, ``'bf16'``
            (that part in bfloat16).

    Raises:
        MetadataError: When the file carries no edgenext_dense metadata.
        BackendError: When the backend cannot run this file, or ``precision`` contradicts it
            (int8 of a float export, fp32 of an int8 one).
    """

    def __init__(
        self,
        path: str,
        threads: Optional[int] = None,
        providers: Optional[Sequence[str]] = None,
        backend: str = "onnxruntime",
        precision: Optional[str] = None,
    ) -> None:
        self.path = path
        # fp32 and int8 compile alike (int8 lives in the file); the session carries the metadata
        self.session = open_model(path, backend, precision or "fp32", threads, providers)
        self.meta = parse_metadata(self.session.get_modelmeta().custom_metadata_map, path)
        quantized = self.meta.get("quantization")
        allowed = ("int8", "bf16") if quantized else ("fp32", "bf16")
        if precision is not None and precision not in allowed:
            what = f"int8-quantised ({quantized})" if quantized else "a float32 export"
            raise BackendError(
                f"{path} is {what}, so it cannot run at --precision {precision}: int8 runs files "
                "written by export_onnx.py --int8 (bf16 on openvino runs what they leave in "
                "float in bfloat16), fp32 and bf16 run float exports"
            )
        self.precision = precision or ("int8" if quantized else "fp32")
        self.backend = backend
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


def write_image(path: str, image_bgr: np.ndarray) -> None:
    """Write a BGR uint8 image in the format its extension names, creating its folder.

    Raises:
        OSError: When OpenCV cannot write it (``cv2.imwrite`` only returns False).
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, image_bgr):
        raise OSError(f"cannot write {path}: check the folder's permissions and free space")


def write_json(path: str, record: Any) -> None:
    """Write JSON-ready data as indented JSON, creating its folder."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(record, f, indent=2)


def run_inference(
    model: OnnxModel,
    inputs: Sequence[str],
    out_dir: Optional[str] = None,
    score_thr: float = 0.3,
    opacity: float = 0.5,
    log: Callable[[str], None] = print,
    keep_labels: bool = True,
) -> DemoSummary:
    """Predict each image, writing the demo outputs; an image that fails is reported and skipped.

    Args:
        model (OnnxModel): The exported model.
        inputs (Sequence[str]): Image paths.
        out_dir (str, optional): Output folder; None writes nothing. Defaults to None.
        score_thr (float): Detection: lowest score reported and drawn. Defaults to 0.3.
        opacity (float): Segmentation: opacity of the class colours. Defaults to 0.5.
        log (Callable[[str], None]): Receives one line per image (JSON for detection and
            classification). Defaults to ``print``.
        keep_labels (bool): Segmentation: keep each image's ``labels`` in its record (False
            spares a folder of big photos). Defaults to True.

    Returns:
        DemoSummary: The records and the skipped ``(image, reason)`` (each also reported on
        stderr as ``skipped <image>: <reason>``).
    """

    def process(image: str) -> Dict[str, Any]:
        img = read_image(image)
        result = model.predict(img)
        height, width = (int(v) for v in result.pop("ori_shape"))
        if model.task == "seg":
            labels = result["labels"]
            counts = np.bincount(labels.ravel(), minlength=len(model.classes))  # np.unique copies
            present = [model.classes[i] for i in np.flatnonzero(counts[: len(model.classes)])]
            record = dict(image=image, height=height, width=width, classes=present)
            if out_dir is not None:
                record["out_file"] = osp.join(out_dir, f"{osp.basename(image)}.png")
                write_image(record["out_file"], draw_segmentation(img, labels, model.meta, opacity))
            log(f"{image} -> {record.get('out_file', '(not written)')} ({', '.join(present)})")
            return dict(record, labels=labels) if keep_labels else record
        if model.task == "det":
            det = (result["bboxes"], result["scores"], result["labels"])
            record = detections_record(image, (height, width), model.classes, *det, score_thr)
        else:
            record = dict(image=image, **result)
        if out_dir is not None:
            vis_path, record_path = output_paths(out_dir, image)
            if model.task == "det":
                write_image(vis_path, draw_detections(img, record["detections"], model.meta))
            write_json(record_path, record)
            record.update({"out_file": vis_path} if model.task == "det" else {})
            record["json_file"] = record_path
        log(json.dumps(record))
        return record

    return process_images(inputs, process)


def add_backend_args(parser: argparse.ArgumentParser) -> None:
    """``--threads``, ``--backend`` and ``--precision``, as onnx_infer and onnx_eval take them."""
    add = parser.add_argument
    add("--threads", type=int, default=None, help="inference threads (default: the backend's)")
    add("--backend", choices=BACKENDS, default="onnxruntime", help="runtime (default onnxruntime)")
    add(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="fp32, bf16 (openvino) or int8 (a file exported with --int8; at bf16 on openvino, "
        "what it leaves in float runs in bfloat16); default: the file's",
    )


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``tools/deploy/onnx_infer.py``'s command line (``sys.argv[1:]`` when None)."""
    parser = argparse.ArgumentParser(
        description="Run a model exported by tools/deploy/export_onnx.py on an image or a "
        "folder with ONNX Runtime or OpenVINO (no PyTorch): detections as JSON lines and drawn "
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
    add_backend_args(parser)
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if not 0.0 <= args.score_thr <= 1.0:
        parser.error(f"--score-thr must be in [0, 1], got {args.score_thr}")
    if not 0.0 < args.opacity <= 1.0:
        parser.error(f"--opacity must be in (0, 1], got {args.opacity}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``onnx_infer``: 0 when at least one image was processed, 1 on an error or none."""
    args = parse_args(argv)
    try:
        images = list_images(args.inputs)
        model = OnnxModel(args.model, args.threads, backend=args.backend, precision=args.precision)
    except (FileNotFoundError, MetadataError, BackendError) as err:
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
