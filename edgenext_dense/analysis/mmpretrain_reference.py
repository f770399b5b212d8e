"""mmpretrain 1.2.0's EdgeNeXt, which the benchmark's ``--compare`` times ours against and
``tests/reference/mmpretrain_logits.py`` checks ours against.

mmpretrain is optional, installed ``--no-deps`` (its torchvision requirement does not install
beside this torch). Its package ``__init__`` imports modules EdgeNeXt never uses (torchvision,
mat4py, modelindex): missing ones are stubbed during its import only.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from typing import Any, Iterator, Sequence
from unittest import mock

from torch import nn

from edgenext_dense.models.backbones import resolve_arch

STUBBED = ("torchvision", "mat4py", "modelindex")
# mmpretrain spells the archs without underscores
MMPRETRAIN_ARCHS = {"xx_small": "xxsmall", "x_small": "xsmall", "small": "small", "base": "base"}
INSTALL_HINT = "pip install --no-deps mmpretrain==1.2.0 (tools/setup.sh does)"


def mmpretrain_available() -> bool:
    """Whether mmpretrain is installed."""
    return importlib.util.find_spec("mmpretrain") is not None


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of ``names`` (and their submodules) give MagicMock modules."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name.split(".")[0] in self.names:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> Any:
        module = mock.MagicMock(name=spec.name)
        module.__path__, module.__spec__ = [], spec
        return module

    def exec_module(self, module: Any) -> None:
        pass


@contextlib.contextmanager
def _stubbed_imports() -> Iterator[None]:
    """Stub the missing :data:`STUBBED` packages, then take the stubs out of ``sys.modules``."""
    missing = [n for n in STUBBED if n not in sys.modules and importlib.util.find_spec(n) is None]
    finder = _StubFinder(missing)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        for name in [m for m in sys.modules if m.split(".")[0] in missing]:
            del sys.modules[name]


def mmpretrain_edgenext_class() -> type:
    """``mmpretrain.models.backbones.edgenext.EdgeNeXt``; ImportError saying how to install
    mmpretrain when it is missing."""
    if not mmpretrain_available():
        raise ImportError(f"mmpretrain, the reference EdgeNeXt, is not installed: {INSTALL_HINT}")
    with _stubbed_imports():
        from mmpretrain.models.backbones.edgenext import EdgeNeXt
    return EdgeNeXt


def build_mmpretrain_edgenext(arch: str, out_indices: Sequence[int] = (3,)) -> nn.Module:
    """mmpretrain's EdgeNeXt returning raw stage outputs (no output norms), in eval mode.

    Args:
        arch (str): Any spelling ``resolve_arch`` accepts.
        out_indices (Sequence[int]): Stages returned. Defaults to ``(3,)``.
    """
    backbone = mmpretrain_edgenext_class()(
        arch=MMPRETRAIN_ARCHS[resolve_arch(arch)],
        out_indices=tuple(out_indices),
        gap_before_final_norm=False,
    )
    for i in out_indices:  # raw stage outputs, as our backbone returns them
        setattr(backbone, f"norm{i}", nn.Identity())
    backbone.eval()  # NOTE: mmpretrain's train() returns None, so this cannot be chained
    return backbone
