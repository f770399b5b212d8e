"""Import this folder as the top-level package ``edgenext_dense_ort``, without
``edgenext_dense/__init__`` (which imports torch). Needing only the standard library, this file is
run by path (``runpy.run_path(...)["load_runtime"]()``) by ``tools/deploy/onnx_infer.py`` and the
benchmarks' torch-free timing worker.
"""

import importlib.util
import os.path as osp
import sys
from types import ModuleType
from typing import List, Optional

PACKAGE_NAME = "edgenext_dense_ort"


def load_runtime() -> ModuleType:
    """The runtime package, imported once (its modules import one another relatively)."""
    if PACKAGE_NAME not in sys.modules:
        folder = osp.dirname(osp.abspath(__file__))
        if "edgenext_dense" not in sys.modules:  # the runtime imports its one torch-free module
            image_files = osp.join(folder, "..", "..", "image_files.py")
            _load("edgenext_dense.image_files", image_files, None)
        _load(PACKAGE_NAME, osp.join(folder, "__init__.py"), [folder])
    return sys.modules[PACKAGE_NAME]


def _load(name: str, path: str, package_folders: Optional[List[str]]) -> None:
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=package_folders
    )
    sys.modules[name] = module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
