"""Every workaround for the pinned stack, in one place, applied on ``import edgenext_dense``.

1. mmengine 0.10.7 + torch >= 2.6 cannot resume its own checkpoints ("Weights only load
   failed ... HistoryBuffer"): torch now loads with ``weights_only=True`` and mmengine's
   checkpoints hold its ``HistoryBuffer`` (numpy arrays inside), plus
   ``getattr(HistoryBuffer, 'min')``-style references to the buffer's statistics methods.
   We keep ``weights_only=True`` and allow-list exactly those globals; ``getattr`` is replaced
   by a function that resolves only those four method names, so a checkpoint can still never
   call arbitrary code.
2. mmdet 3.3.0 ``SSDHead`` never sets ``loss_cls`` (it skips ``AnchorHead.__init__``), but
   ``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``: every SSD prediction
   raises ``AttributeError`` (open-mmlab/mmdetection#11780). SSD's loss is a fixed softmax
   cross-entropy with hard negative mining, so ``loss_cls`` is set to None after ``__init__``.

Each has a test in ``tests/test_compat.py`` that fails without it.
"""

from __future__ import annotations

import functools
import pickle
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch

_APPLIED = False
# HistoryBuffer.__getstate__ pickles its statistics-method table as getattr(HistoryBuffer, name).
HISTORY_BUFFER_METHODS = frozenset({"min", "max", "current", "mean"})


def _numpy_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """The numpy reconstructors and dtypes in mmengine checkpoints, under numpy 1 and 2 paths."""
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
        if "loss_cls" not in self._modules and "loss_cls" not in self.__dict__:
            self.loss_cls = None

    __init__._edgenext_dense_fixed = True  # type: ignore[attr-defined]
    SSDHead.__init__ = __init__


def apply() -> None:
    """Apply every workaround (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    allow_mmengine_checkpoint_globals()
    fix_ssd_head_loss_cls()
    _APPLIED = True
