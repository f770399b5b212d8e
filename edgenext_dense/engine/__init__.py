"""Training/testing helpers behind ``tools/train.py``, ``tools/test.py`` and ``get_flops.py``.

Importing this package registers :class:`TrainingCurvesHook` and :class:`RawAndEMAEvalHook`
(``edgenext_dense.HOOKS``).
"""

from .config import task_of
from .hooks import RawAndEMAEvalHook, TrainingCurvesHook, collect_curves, plot_curves
from .preflight import (
    PreflightError,
    check_checkpoint_task,
    check_dataset_paths,
    check_pretrained_checkpoints,
    describe_checkpoint,
)
from .runner import add_runner_args, evaluate, setup_cpu_distributed, train

__all__ = [
    "PreflightError",
    "RawAndEMAEvalHook",
    "TrainingCurvesHook",
    "add_runner_args",
    "check_checkpoint_task",
    "check_dataset_paths",
    "check_pretrained_checkpoints",
    "collect_curves",
    "describe_checkpoint",
    "evaluate",
    "plot_curves",
    "setup_cpu_distributed",
    "task_of",
    "train",
]
