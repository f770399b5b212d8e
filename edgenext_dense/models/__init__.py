"""Models: the EdgeNeXt backbone, the SSDLite neck and head, the DeepLabv3 decode head."""

from edgenext_dense.models import backbones, decode_heads, dense_heads, necks  # noqa: F401
from edgenext_dense.models.backbones import EdgeNeXt

__all__ = ["EdgeNeXt"]
