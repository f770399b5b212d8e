"""Running the repository's tools as a user does: the test's Python, the repo on PYTHONPATH."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import List, Sequence

import pytest

REPO = Path(__file__).resolve().parents[1]


def tool_env() -> dict:
    """The environment the tools run in: one OpenMP thread, the repo importable, no display."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    return env


def run(args: Sequence[str], cwd: Path, expect_ok: bool = True) -> subprocess.CompletedProcess:
    """Run a command like a user (repo tools, the test's Python) and return what it printed."""
    proc = subprocess.run(
        list(args), cwd=cwd, env=tool_env(), capture_output=True, text=True, timeout=300
    )
    if expect_ok and proc.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
            f"{proc.stderr[-5000:]}"
        )
    return proc


def tool(name: str, *args: str) -> List[str]:
    """The command line of ``tools/<name>`` with ``args``."""
    return [sys.executable, str(REPO / "tools" / name), *args]


def load_tool(script: str) -> ModuleType:
    """The repository script ``script`` (a path from the repo root) as a module, to call its
    ``main`` or helpers in-process (``tools/`` is not a package)."""
    spec = importlib.util.spec_from_file_location(Path(script).stem, REPO / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
