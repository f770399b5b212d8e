"""Resuming from the newest checkpoint that loads, and a clear error for one that does not.

Our saves are crash-safe (:mod:`edgenext_dense.compat`), but a work dir written by other tools may
hold a missing, truncated or code-carrying file: ``--resume`` skips it with a warning, ``--resume
PATH`` and ``load_from`` stop with what to do.
"""

from __future__ import annotations

import glob
import logging
import os.path as osp
import re
from pathlib import Path
from typing import List, Optional, Tuple

from mmengine.logging import print_log

from ..compat import LAST_CHECKPOINT
from .preflight import PreflightError, unreadable_reason

# CheckpointHook's default names; best_*.pth hold weights only, so they are never resumed from.
CHECKPOINT_STEP = re.compile(r"^(?:epoch|iter)_(\d+)\.pth$")


def _candidates(work_dir: str) -> List[str]:
    """The ``*.pth`` files of a work dir but ``best_*``, highest N of epoch_N/iter_N first, then
    newest first."""

    def step_and_mtime(path: str) -> Tuple[int, float]:
        match = CHECKPOINT_STEP.match(osp.basename(path))
        return (int(match.group(1)) if match else -1, osp.getmtime(path))

    paths = [
        p
        for p in glob.glob(osp.join(glob.escape(work_dir), "*.pth"))
        if not osp.basename(p).startswith("best_") and osp.isfile(p)
    ]
    return sorted(paths, key=step_and_mtime, reverse=True)


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to auto-resume from: ``last_checkpoint``'s, else the newest that loads;
    None (with a log line) when none does. Each file passed over is named in a warning with why.

    Args:
        work_dir (str): The training work dir.
    """
    pointer = Path(work_dir, LAST_CHECKPOINT)
    named = pointer.read_text().strip() if pointer.is_file() else ""
    moved = osp.join(work_dir, osp.basename(named))  # the work dir may have moved since
    if named and not osp.isfile(named) and osp.isfile(moved):
        named = moved
    if named and not osp.isfile(named):
        print_log(
            f"skipping checkpoint {named} (named by last_checkpoint): the file does not exist",
            logger="current",
            level=logging.WARNING,
        )
    tried = set()
    for path in [p for p in [named] if osp.isfile(p)] + _candidates(work_dir):
        if osp.realpath(path) in tried:
            continue
        tried.add(osp.realpath(path))
        reason = unreadable_reason(path)
        if reason is None:
            if len(tried) > 1 or (named and path != named):
                print_log(f"resuming from {path}", logger="current")
            return path
        print_log(f"skipping checkpoint {path}: {reason}", logger="current", level=logging.WARNING)
    print_log(
        f"no usable checkpoint to resume from in {work_dir}; training starts from scratch",
        logger="current",
    )
    return None


def check_checkpoint_readable(path: str, what: str = "checkpoint") -> None:
    """Stop when a checkpoint to resume or load from is missing or does not load, naming one
    of its folder that does.

    Args:
        path (str): ``--resume PATH`` or the config's ``load_from``; URLs are not checked.
        what (str): What it is for, for the message. Defaults to 'checkpoint'.
    """
    if "://" in path:
        return
    path = osp.expanduser(path)
    reason = unreadable_reason(path)
    if reason is None:
        return
    folder = osp.dirname(osp.abspath(path))
    others = (p for p in _candidates(folder) if osp.realpath(p) != osp.realpath(path))
    usable = next((p for p in others if unreadable_reason(p) is None), None)
    instead = f"use {usable} instead" if usable else "use another checkpoint"
    raise PreflightError(
        f"cannot use the {what} {path}: {reason}. Nothing was loaded; {instead} (tools/train.py "
        "CONFIG --resume, without a path, picks the newest checkpoint of the work dir that loads)"
    )
