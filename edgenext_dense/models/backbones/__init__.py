from .edgenext import ARCH_SETTINGS, EdgeNeXt, resolve_arch

__all__ = ["ARCH_SETTINGS", "EdgeNeXt", "resolve_arch"]
