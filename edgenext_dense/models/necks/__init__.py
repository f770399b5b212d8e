"""Necks: the SSDLite extra levels."""

from .ssdlite_neck import SSDLiteNeck

__all__ = ["SSDLiteNeck"]
