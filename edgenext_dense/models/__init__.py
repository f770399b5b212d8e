"""Models: the EdgeNeXt backbone (SSDLite and DeepLabv3 modules join as they land)."""

from edgenext_dense.models.backbones import EdgeNeXt

__all__ = ["EdgeNeXt"]
