"""Deployment: the graphs of each task, their ONNX export and int8 quantisation, the
torch-free ONNX Runtime inference (:mod:`.ort`) and the scoring of exported files.

- :mod:`.graphs` (built from configs and checkpoints) and :mod:`.graph_modules` (the modules);
- :mod:`.export`: ``tools/deploy/export_onnx.py``; :mod:`.quantize`: its ``--int8``;
- :mod:`.ort`: ``tools/deploy/onnx_infer.py`` (importable without torch when loaded by path);
- :mod:`.evaluate`: ``tools/deploy/onnx_eval.py``, an exported model scored on its config's
  test set with the config's metric.
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
