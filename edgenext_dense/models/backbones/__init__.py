from .edgenext import EdgeNeXt
from .edgenext_arch import ARCH_SETTINGS, resolve_arch

__all__ = ["ARCH_SETTINGS", "EdgeNeXt", "resolve_arch"]
