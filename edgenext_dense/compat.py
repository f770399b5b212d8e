"""Every workaround for the pinned stack, applied on ``import edgenext_dense``.

1. mmengine 0.10.7 checkpoints do not load under torch >= 2.6's ``weights_only=True``: exactly
   their globals are allow-listed (``getattr`` only for HistoryBuffer's statistics).
2. mmdet 3.3.0 ``SSDHead`` never sets ``loss_cls``, which prediction reads
   (open-mmlab/mmdetection#11780): it is set to None.
3. mmengine 0.10.7 ``CheckpointHook`` removes the old checkpoint before writing the new one in
   place, so a kill while saving loses all progress: saves become write-then-rename and the old
   file goes last.
"""

from __future__ import annotations

import contextlib
import functools
import os
import os.path as osp
import pickle
from typing import IO, Any, Callable, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch

LAST_CHECKPOINT = "last_checkpoint"
TMP_SUFFIX = ".tmp"
# HistoryBuffer.__getstate__ pickles its statistics-method table as getattr(HistoryBuffer, name).
HISTORY_BUFFER_METHODS = frozenset({"min", "max", "current", "mean"})


def _numpy_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The numpy reconstructors and dtypes in mmengine checkpoints, under numpy 1 and 2 names."""
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    found: List[Union[Callable, Tuple[Callable, str]]] = [np.ndarray, np.dtype]
    for module_path in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found.append((multiarray._reconstruct, f"{module_path}._reconstruct"))
        found.append((multiarray.scalar, f"{module_path}.scalar"))
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles dtypes by their classes
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return found


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``getattr`` as mmengine checkpoints use it: HistoryBuffer's statistics methods only."""
    from mmengine.logging import HistoryBuffer

    if obj is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f"refusing getattr({obj!r}, {name!r}) while loading a checkpoint with weights_only=True:"
        " only HistoryBuffer statistics methods are allowed"
    )


def allow_mmengine_checkpoint_globals() -> None:
    """Allow-list the exact globals mmengine training checkpoints contain (weights_only stays)."""
    from mmengine.logging import HistoryBuffer

    torch.serialization.add_safe_globals(
        [HistoryBuffer, (_history_buffer_getattr, "builtins.getattr"), *_numpy_globals()]
    )


def fix_ssd_head_loss_cls() -> None:
    """Give mmdet's ``SSDHead`` the ``loss_cls`` attribute its prediction path reads."""
    from mmdet.models.dense_heads import SSDHead

    init = SSDHead.__init__
    if getattr(init, "_edgenext_dense_fixed", False):
        return

    @functools.wraps(init)
    def __init__(self: SSDHead, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if not hasattr(self, "loss_cls"):
            self.loss_cls = None

    __init__._edgenext_dense_fixed = True  # type: ignore[attr-defined]
    SSDHead.__init__ = __init__


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "wb") -> Iterator[IO[Any]]:
    """Write ``path + '.tmp'``, fsync it, rename it to ``path``: a crash leaves ``path`` as it
    was (and a later save reuses the leftover temporary name).

    Args:
        path (str): The final file name.
        mode (str): ``'wb'`` or ``'w'``. Defaults to 'wb'.
    """
    directory = osp.dirname(osp.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = path + TMP_SUFFIX
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_save_checkpoint(original: Callable[..., None]) -> Callable[..., None]:
    """Wrap mmengine's ``save_checkpoint`` so that local files are written atomically."""

    def save_checkpoint(
        checkpoint: dict,
        filename: str,
        file_client_args: Optional[dict] = None,
        backend_args: Optional[dict] = None,
    ) -> None:
        from mmengine.fileio import LocalBackend, get_file_backend

        filename = str(filename)
        # the deprecated FileClient path and pavi:// uploads stay mmengine's
        delegate = file_client_args is not None or filename.startswith("pavi://")
        backend = None if delegate else get_file_backend(filename, backend_args=backend_args)
        if not isinstance(backend, LocalBackend):
            original(checkpoint, filename, file_client_args, backend_args)
            return
        with atomic_open(filename) as f:
            torch.save(checkpoint, f)

    save_checkpoint.__doc__ = original.__doc__
    save_checkpoint._edgenext_dense_atomic = True  # type: ignore[attr-defined]
    return save_checkpoint


def _save_checkpoint_with_step(self: Any, runner: Any, step: int, meta: dict) -> None:
    """mmengine's ``CheckpointHook._save_checkpoint_with_step``, removing the old file last."""
    from mmengine.dist import is_main_process

    stale = None
    if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            stale = self.keep_ckpt_ids.popleft()
        self.keep_ckpt_ids.append(step)
        # the new checkpoint lists the old one until it is gone, so a resumed run removes it
        pending = [stale] if stale is not None else []
        runner.message_hub.update_info("keep_ckpt_ids", pending + list(self.keep_ckpt_ids))
    filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
    runner.message_hub.update_info("last_ckpt", self.last_ckpt)
    runner.save_checkpoint(
        self.out_dir,
        filename,
        self.file_client_args,
        save_optimizer=self.save_optimizer,
        save_param_scheduler=self.save_param_scheduler,
        meta=meta,
        by_epoch=self.by_epoch,
        backend_args=self.backend_args,
        **self.args,
    )
    if is_main_process():
        with atomic_open(osp.join(runner.work_dir, LAST_CHECKPOINT), "w") as f:
            f.write(self.last_ckpt)
        if stale is not None:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(stale))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # deepspeed saves directories
                self.file_backend.rmtree(path)
    if stale is not None:
        runner.message_hub.update_info("keep_ckpt_ids", list(self.keep_ckpt_ids))


def make_checkpoint_saves_atomic() -> None:
    """Write-then-rename saves; the old checkpoint removed after the new one (idempotent)."""
    import mmengine.runner
    import mmengine.runner.checkpoint
    import mmengine.runner.runner
    from mmengine.hooks import CheckpointHook

    if not getattr(mmengine.runner.checkpoint.save_checkpoint, "_edgenext_dense_atomic", False):
        atomic = _atomic_save_checkpoint(mmengine.runner.checkpoint.save_checkpoint)
        # Runner and the hooks hold their own references
        for module in (mmengine.runner.checkpoint, mmengine.runner.runner, mmengine.runner):
            module.save_checkpoint = atomic
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step


def apply() -> None:
    """Apply every workaround (each is idempotent)."""
    allow_mmengine_checkpoint_globals()
    fix_ssd_head_loss_cls()
    make_checkpoint_saves_atomic()
