"""Segmentation decode heads, registered in mmseg's ``MODELS`` registry."""

from .aspp_head import CvnetsASPPHead

__all__ = ["CvnetsASPPHead"]
