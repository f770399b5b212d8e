"""EdgeNeXt for dense prediction: SSDLite detection and DeepLabv3 segmentation on OpenMMLab."""

from edgenext_dense import compat

compat.apply()

from edgenext_dense import models  # noqa: E402,F401  (registers the modules)

__version__ = "0.1.0"
