"""Dense heads: the SSDLite head and its prior generator."""

from .ssdlite_head import SSDLiteAnchorGenerator, SSDLiteHead

__all__ = ["SSDLiteAnchorGenerator", "SSDLiteHead"]
