"""Dataset helpers: deterministic synthetic shape datasets for the no-download demo."""

from edgenext_dense.datasets import synthetic
from edgenext_dense.datasets.synthetic import *  # noqa: F403 (the names of synthetic.__all__)

__all__ = list(synthetic.__all__)
