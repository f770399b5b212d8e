"""Import this folder as the top-level package ``edgenext_dense_ort``, without
``edgenext_dense/__init__`` (which imports torch). Needing only the standard library, this file is
run by path (``runpy.run_path(...)["load_runtime"]()``) by ``tools/deploy/onnx_infer.py`` and the
benchmarks' torch-free timing worker.
"""

import importlib.util
import os.path as osp
import sys
from types import ModuleType

PACKAGE_NAME = "edgenext_dense_ort"


def load_runtime() -> ModuleType:
    """The runtime package, imported once (its modules import one another relatively)."""
    if PACKAGE_NAME not in sys.modules:
        folder = osp.dirname(osp.abspath(__file__))
        spec = importlib.util.spec_from_file_location(
            PACKAGE_NAME, osp.join(folder, "__init__.py"), submodule_search_locations=[folder]
        )
        sys.modules[PACKAGE_NAME] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules[PACKAGE_NAME]
