"""Resuming from the newest checkpoint that loads, and clear errors for one that does not.

Saves are crash-safe (:func:`edgenext_dense.compat.make_checkpoint_saves_atomic`): from the
first save on, the work dir holds a complete checkpoint that ``last_checkpoint`` names. Work dirs
written before that, or by other tools, may not:
:func:`find_resumable_checkpoint` (``--resume`` without a path) and
:func:`check_checkpoint_readable` (``--resume PATH``, ``load_from``) turn a missing, truncated or
code-carrying file into a skip with a warning or an error that says what to do.
"""

from __future__ import annotations

import glob
import logging
import os.path as osp
import pickle
import re
import zipfile
from typing import List, Optional, Tuple

import torch
from mmengine.logging import print_log

from ..compat import LAST_CHECKPOINT
from .preflight import PreflightError

# CheckpointHook's default names; best_*.pth files hold weights only (no optimizer), so they
# are never resumed from.
CHECKPOINT_STEP = re.compile(r"^(?:epoch|iter)_(\d+)\.pth$")
REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+)")
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since torch 1.6
PICKLE_PROTOCOL = b"\x80"  # the legacy format: a pickle


def _refused_globals(path: str, exc: BaseException) -> List[str]:
    """The globals a ``weights_only`` load refused, from the file or else from the message."""
    try:
        found = list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001  (a file it cannot list: fall back to the message)
        found = []
    return found or REFUSED_GLOBAL.findall(str(exc))


def _short(error: BaseException) -> str:
    """``'Type: first line'`` of an error."""
    lines = str(error).strip().splitlines()
    if not lines or "weights_only" in str(error):  # torch's advice to load unsafely: left out
        return type(error).__name__
    return f"{type(error).__name__}: {lines[0][:100]}"


def unreadable_reason(path: str) -> Optional[str]:
    """Load a checkpoint the way mmengine will (``weights_only=True``); say why it fails.

    Args:
        path (str): A local checkpoint file.

    Returns:
        str or None: None when it loads, else a one-line reason, e.g. ``'truncated (...)'``.
    """
    if not osp.isfile(path):
        return "the file does not exist"
    try:
        torch.load(path, map_location="cpu", weights_only=True)
        return None
    except Exception as exc:  # noqa: BLE001  (every way a file can fail to load)
        error = exc
    size = osp.getsize(path)
    with open(path, "rb") as f:
        head = f.read(len(ZIP_MAGIC))
    if size == 0:
        return "empty (0 bytes; a save that was interrupted)"
    if not head.startswith((ZIP_MAGIC, PICKLE_PROTOCOL)):
        return f"not a torch checkpoint ({_short(error)})"
    if isinstance(error, pickle.UnpicklingError):
        refused = _refused_globals(path, error)
        if refused:
            names = ", ".join(f"`{name}`" for name in refused)
            return f"refused global {names} because loading it could run code"
        if "weights_only" in str(error):
            return "it holds objects that cannot be loaded without running code"
    if isinstance(error, EOFError) or (head == ZIP_MAGIC and not zipfile.is_zipfile(path)):
        return f"truncated ({size} bytes; a save that was interrupted)"
    return f"unreadable ({_short(error)})"


def _step_and_mtime(path: str) -> Tuple[int, float]:
    match = CHECKPOINT_STEP.match(osp.basename(path))
    return (int(match.group(1)) if match else -1, osp.getmtime(path))


def _candidates(work_dir: str) -> List[str]:
    """The ``*.pth`` files of a work dir except ``best_*``, newest step first, then mtime."""
    paths = [
        p
        for p in glob.glob(osp.join(glob.escape(work_dir), "*.pth"))
        if not osp.basename(p).startswith("best_") and osp.isfile(p)
    ]
    return sorted(paths, key=_step_and_mtime, reverse=True)


def _warn(message: str) -> None:
    print_log(message, logger="current", level=logging.WARNING)


def _named_by_pointer(work_dir: str) -> Tuple[Optional[str], Optional[str]]:
    """The checkpoint ``last_checkpoint`` names, as ``(existing file, missing file)``."""
    pointer = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(pointer):
        return None, None
    with open(pointer) as f:
        named = f.read().strip()
    if not named or osp.isfile(named):
        return named or None, None
    # last_checkpoint stores the path as it was written; the work dir may have moved since
    moved = osp.join(work_dir, osp.basename(named))
    return (moved, None) if osp.isfile(moved) else (None, named)


def find_resumable_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint to auto-resume from: ``last_checkpoint``'s, else the newest that loads.

    When ``last_checkpoint`` names a missing or unreadable file, the work dir's other
    checkpoints are tried, newest first (the N of ``epoch_N.pth``/``iter_N.pth``, then mtime).
    Each file passed over is named in a warning with the reason.

    Args:
        work_dir (str): The training work dir.

    Returns:
        str or None: A checkpoint that loads, or None (with a log line) when there is none.
    """
    named, missing = _named_by_pointer(work_dir)
    if missing:
        _warn(f"skipping checkpoint {missing} (named by last_checkpoint): the file does not exist")
    tried = set()
    for path in ([named] if named else []) + _candidates(work_dir):
        if osp.realpath(path) in tried:
            continue
        tried.add(osp.realpath(path))
        reason = unreadable_reason(path)
        if reason is None:
            if missing or len(tried) > 1:
                print_log(f"resuming from {path}", logger="current")
            return path
        _warn(f"skipping checkpoint {path}: {reason}")
    print_log(
        f"no usable checkpoint to resume from in {work_dir}; training starts from scratch",
        logger="current",
    )
    return None


def check_checkpoint_readable(path: str, what: str = "checkpoint") -> None:
    """Stop when a checkpoint to resume or load from does not load with ``weights_only=True``.

    Args:
        path (str): The checkpoint (``--resume PATH`` or the config's ``load_from``); URLs are
            not checked.
        what (str): What it is for, for the message. Defaults to 'checkpoint'.

    Raises:
        PreflightError: Naming the file, what is wrong with it and, when its folder has one,
            a checkpoint there that loads.
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
