"""Deployment: ONNX export, torch-free ONNX Runtime inference, and the speed benchmark.

- :mod:`edgenext_dense.deploy.graphs`: the deployable graphs built from configs and checkpoints;
- :mod:`edgenext_dense.deploy.export`: ONNX export and ``tools/deploy/export_onnx.py``;
- :mod:`edgenext_dense.deploy.ort`: numpy/onnxruntime inference behind
  ``tools/deploy/onnx_infer.py`` (importable without torch when loaded by path);
- :mod:`edgenext_dense.deploy.quantize`: dynamic int8 quantisation (``export_onnx.py --int8``);
- :mod:`edgenext_dense.deploy.evaluate`: ``tools/deploy/onnx_eval.py``, an exported model scored
  on its config's test set with the config's metric;
- :mod:`edgenext_dense.analysis.benchmark`: ``tools/analysis/benchmark.py`` (command line in
  :mod:`edgenext_dense.analysis.benchmark_cli`), its models in
  :mod:`edgenext_dense.analysis.bench_targets` (mmpretrain's EdgeNeXt from
  :mod:`edgenext_dense.analysis.mmpretrain_reference`), its tables made by
  :mod:`edgenext_dense.analysis.report`.
"""

from edgenext_dense.deploy.export import export_onnx, verify_onnx
from edgenext_dense.deploy.graph_modules import ExportError
from edgenext_dense.deploy.graphs import (
    DeployModel,
    deploy_classifier,
    deploy_from_config,
    load_deploy_model,
)

__all__ = [
    "DeployModel",
    "ExportError",
    "deploy_classifier",
    "deploy_from_config",
    "export_onnx",
    "load_deploy_model",
    "verify_onnx",
]
