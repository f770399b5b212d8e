"""ONNX export of the deployable graphs (:mod:`.graphs`), its check against PyTorch, and
``tools/deploy/export_onnx.py``.

The file carries the runtime's settings as JSON in its ``metadata_props`` (schema in
:mod:`.ort.metadata`), so the ``.onnx`` file alone is enough at inference. The TorchScript
exporter (``dynamo=False``) needs no ``onnxscript`` and traces mmdet's Python control flow.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import os.path as osp
import sys
import warnings
from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from edgenext_dense.deploy.graph_modules import ExportError
from edgenext_dense.deploy.graphs import DeployModel, load_deploy_model
from edgenext_dense.deploy.ort.metadata import FORMAT_VERSION, METADATA_KEY, check_metadata
from edgenext_dense.engine.config import add_cfg_options_arg
from edgenext_dense.engine.preflight import PreflightError
from edgenext_dense.models.backbones import EdgeNeXt

INPUT_NAME = "images"
DEFAULT_OPSET = 17


def fuse_for_inference(module: nn.Module) -> nn.Module:
    """Fold the inference-only constants of every EdgeNeXt inside ``module``, in place."""
    for sub in module.modules():
        if isinstance(sub, EdgeNeXt):
            sub.fuse()
    return module


def export_onnx(
    deploy: DeployModel,
    out: Union[str, os.PathLike],
    dynamic_batch: bool = False,
    opset: int = DEFAULT_OPSET,
    batch_size: int = 1,
    fuse: bool = True,
) -> str:
    """Trace a copy of ``deploy.graph`` to an ONNX file carrying the runtime metadata.

    Args:
        deploy (DeployModel): From :func:`load_deploy_model`.
        out (str | os.PathLike): The ``.onnx`` file to write.
        dynamic_batch (bool): Make the batch axis dynamic. Defaults to False.
        opset (int): ONNX opset. Defaults to 17 (LayerNormalization is a single op).
        batch_size (int): Batch size traced (the only one a static graph takes). Defaults to 1.
        fuse (bool): Fold EdgeNeXt's inference constants in the copy exported. Defaults to True.

    Returns:
        str: The written path.
    """
    import onnx

    out = os.fspath(out)
    graph = copy.deepcopy(deploy.graph).eval()
    if fuse:
        fuse_for_inference(graph)
    batch = {0: "batch"} if dynamic_batch else {}
    hw = {2: "height", 3: "width"} if deploy.dynamic_hw else {}
    # a detector has as many rows as the batch's most detections
    out_axes = {"seg": hw, "det": {1: "detections"}}.get(deploy.task, {})
    axes = {INPUT_NAME: {**batch, **hw}, **{n: {**batch, **out_axes} for n in deploy.output_names}}
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():  # the tracer's expected warnings
        for category in (DeprecationWarning, torch.jit.TracerWarning, UserWarning):
            warnings.simplefilter("ignore", category)
        torch.onnx.export(
            graph,
            (torch.randn(batch_size, 3, *deploy.input_size),),
            out,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=list(deploy.output_names),
            dynamic_axes={k: v for k, v in axes.items() if v} or None,
            do_constant_folding=True,
        )
    proto = onnx.load(out)
    onnx.checker.check_model(proto)
    meta = dict(
        deploy.meta,
        format_version=FORMAT_VERSION,
        input_name=INPUT_NAME,
        output_names=list(deploy.output_names),
        input_size=list(deploy.input_size),
        dynamic_batch=bool(dynamic_batch),
        dynamic_hw=bool(deploy.dynamic_hw),
        opset=int(opset),
        fused=bool(fuse),
    )
    if deploy.task != "backbone":
        check_metadata(meta, out)
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(meta)})
    onnx.save(proto, out)
    return out


def verify_onnx(
    deploy: DeployModel, path: str, batch_size: int = 1, seed: int = 0
) -> Dict[str, float]:
    """Compare ONNX Runtime's outputs with the PyTorch graph's on a random input.

    Args:
        deploy (DeployModel): What was exported.
        path (str): The exported file.
        batch_size (int): Batch size of the check (the exported one unless dynamic). Defaults
            to 1.
        seed (int): Seed of the random input. Defaults to 0.

    Returns:
        dict: Per output, the largest absolute difference over the largest absolute PyTorch
        value (infinite when the shapes differ: a detector that kept another number of boxes).
    """
    from edgenext_dense.deploy.ort.backends import create_session

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, *deploy.input_size, generator=gen)
    with torch.no_grad():
        expected = deploy.graph.eval()(x)
    expected = (expected,) if isinstance(expected, torch.Tensor) else tuple(expected)
    got = create_session(path).run(list(deploy.output_names), {INPUT_NAME: x.numpy()})
    return {
        name: float(np.abs(g - e).max(initial=0) / max(float(np.abs(e).max(initial=0)), 1e-12))
        if g.shape == e.shape
        else float("inf")
        for name, g, e in zip(deploy.output_names, got, (e.numpy() for e in expected))
    }


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``tools/deploy/export_onnx.py``'s command line (``sys.argv[1:]`` when None)."""
    parser = argparse.ArgumentParser(
        description="Export the classifier, an SSDLite detector or a DeepLabv3 segmentor to "
        "ONNX, with the preprocessing and post-processing settings in the file's metadata "
        "(run it with tools/deploy/onnx_infer.py)."
    )
    add = parser.add_argument
    add(
        "config",
        help="configs/det/*.py or configs/seg/*.py, or 'classifier' (or 'classifier:ARCH') "
        "for an ImageNet EdgeNeXt checkpoint",
    )
    add(
        "checkpoint",
        help="the weights: a checkpoint saved by tools/train.py, or for 'classifier' an "
        "ImageNet checkpoint (any public layout) or model-zoo name",
    )
    add("--out", required=True, help="the .onnx file to write")
    add(
        "--shape",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="input size to trace (default: the detector's test resize, the segmentor's "
        "training crop, the classifier's 256 crop); segmentor graphs take any size",
    )
    add("--dynamic-batch", action="store_true", help="make the batch axis dynamic")
    add("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    add(
        "--no-fuse",
        action="store_true",
        help="do not fold EdgeNeXt's LayerNorm affines and layer scales before tracing",
    )
    add(
        "--int8",
        nargs="?",
        const="dynamic",
        choices=("dynamic", "static"),
        help="quantise to int8: 'dynamic' (the default; ONNX Runtime, matrix multiplications "
        "only) or 'static' (NNCF QDQ, calibrated on the config's validation images; see "
        "docs/benchmarks.md for its accuracy and speed per backend)",
    )
    add(
        "--calib-images",
        type=int,
        default=300,
        help="--int8 static: validation images that calibrate it (default 300)",
    )
    add("--no-verify", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    add_cfg_options_arg(parser)
    args = parser.parse_args(argv)
    if args.calib_images < 1:
        parser.error(f"--calib-images must be at least 1, got {args.calib_images}")
    if args.int8 == "static" and args.config.startswith("classifier"):
        parser.error("--int8 static calibrates on a det/seg config's validation set")
    if args.shape is not None and min(args.shape) < 32:
        parser.error(f"--shape must be at least 32x32, got {args.shape}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Export from the command line: 0 on success, 1 on an error (printed on stderr)."""
    args = parse_args(argv)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # mmengine print()s while loading
            deploy = load_deploy_model(args.config, args.checkpoint, args.shape, args.cfg_options)
            path = export_onnx(
                deploy, args.out, args.dynamic_batch, args.opset, fuse=not args.no_fuse
            )
            # checked in float32: int8 moves which detections pass (onnx_eval.py scores it)
            errors = None if args.no_verify else verify_onnx(deploy, path)
            if args.int8 == "dynamic":
                from edgenext_dense.deploy.quantize import quantize_dynamic_int8

                quantize_dynamic_int8(path, path)
            elif args.int8 == "static":
                from edgenext_dense.deploy.quantize import calibration_batches, quantize_static_int8

                batches = calibration_batches(
                    args.config, path, args.calib_images, args.cfg_options
                )
                quantize_static_int8(path, path, batches, len(batches))
    except (ExportError, PreflightError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    h, w = ("height", "width") if deploy.dynamic_hw else deploy.input_size
    shape = f"{INPUT_NAME} {'batch' if args.dynamic_batch else 1}x3x{h}x{w}"
    outputs = ", ".join(deploy.output_names)
    print(f"exported the {deploy.task} model to {path} (input {shape}, outputs {outputs})")
    if errors is not None:
        verdict = "ok" if max(errors.values()) <= 1e-4 else "LARGER THAN 1e-4"
        details = ", ".join(f"{k} {v:.2e}" for k, v in errors.items())
        before = " (before int8 quantisation)" if args.int8 else ""
        print(
            f"ONNX Runtime vs PyTorch on a random input{before}, max relative error: {details} "
            f"({verdict})"
        )
    return 0
