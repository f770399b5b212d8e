"""The published EdgeNeXt architectures: widths, depths and heads, and their spellings."""

from __future__ import annotations

from typing import Dict, Tuple

ARCH_SETTINGS: Dict[str, Dict[str, Tuple[int, ...]]] = {
    "xx_small": dict(channels=(24, 48, 88, 168), depths=(2, 2, 6, 2), num_heads=(4, 4, 4, 4)),
    "x_small": dict(channels=(32, 64, 100, 192), depths=(3, 3, 9, 3), num_heads=(4, 4, 4, 4)),
    "small": dict(channels=(48, 96, 160, 304), depths=(3, 3, 9, 3), num_heads=(8, 8, 8, 8)),
    "base": dict(channels=(80, 160, 288, 584), depths=(3, 3, 9, 3), num_heads=(8, 8, 8, 8)),
}
# Spellings from mmpretrain (``xxsmall``), the model zoo (``xx-small``) and short names;
# timm's ``edgenext_`` prefix is removed first.
ARCH_ALIASES: Dict[str, str] = {
    **dict.fromkeys(("xxsmall", "xx-small", "xxs"), "xx_small"),
    **dict.fromkeys(("xsmall", "x-small", "xs"), "x_small"),
    "s": "small",
    "b": "base",
}

# Shared by every published EdgeNeXt: kernel sizes per stage, one SDTA block closing stages
# 2-4 with 2/2/3/4 channel groups, Fourier positional encoding in stage 2's SDTA only.
KERNEL_SIZES = (3, 5, 7, 9)
GLOBAL_BLOCKS = (0, 1, 1, 1)
SDTA_SCALES = (2, 2, 3, 4)
SDTA_POS_EMBED = (False, True, False, False)


def resolve_arch(arch: str) -> str:
    """The canonical name (``'xx_small'``, ``'x_small'``, ``'small'``, ``'base'``) of ``arch``.

    Args:
        arch (str): An arch name in any accepted spelling (``'xxsmall'``, ``'edgenext_base'``).
    """
    key = arch.lower().strip().removeprefix("edgenext_")
    key = ARCH_ALIASES.get(key, key)
    if key not in ARCH_SETTINGS:
        spellings = sorted(set(ARCH_SETTINGS) | set(ARCH_ALIASES))
        raise ValueError(f"unknown EdgeNeXt arch {arch!r}; expected one of {spellings} or a dict")
    return key
