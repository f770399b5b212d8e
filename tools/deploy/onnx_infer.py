"""Run a model exported by ``tools/deploy/export_onnx.py`` with ONNX Runtime only.

    python tools/deploy/onnx_infer.py IMAGE_OR_DIR --model model.onnx \
        [--out-dir outputs/onnx_infer] [--score-thr 0.3] [--opacity 0.5] [--threads N]

Needs numpy, OpenCV, Pillow and onnxruntime, not PyTorch: it loads ``edgenext_dense/deploy/ort/``
as a stand-alone package, without ``edgenext_dense/__init__.py`` (which imports torch). To deploy
without the repository, copy this script, ``edgenext_dense/image_files.py`` and
``edgenext_dense/deploy/ort/`` (keeping their relative places) and set ``EDGENEXT_ORT_DIR`` to
the ``ort`` folder. See ``edgenext_dense/deploy/ort/infer.py``.
"""

from __future__ import annotations

import importlib.util
import os
import runpy
import sys
from pathlib import Path
from types import ModuleType


def _runtime_dir() -> Path:
    """Where ``edgenext_dense/deploy/ort`` is: $EDGENEXT_ORT_DIR, the installed package, or
    this repository."""
    if os.environ.get("EDGENEXT_ORT_DIR"):
        return Path(os.environ["EDGENEXT_ORT_DIR"])
    spec = importlib.util.find_spec("edgenext_dense")  # locates the package, runs nothing
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]) / "deploy" / "ort"
    return Path(__file__).resolve().parents[2] / "edgenext_dense" / "deploy" / "ort"


def load_runtime() -> ModuleType:
    """Import the torch-free runtime as the top-level package ``edgenext_dense_ort``."""
    loader = _runtime_dir() / "standalone.py"
    if not loader.is_file():
        raise ImportError(
            f"the ONNX Runtime helpers are not in {loader.parent} (set EDGENEXT_ORT_DIR)"
        )
    return runpy.run_path(str(loader))["load_runtime"]()


if __name__ == "__main__":
    sys.exit(load_runtime().main())
