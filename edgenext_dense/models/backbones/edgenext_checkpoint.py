"""Reading every published EdgeNeXt checkpoint into our (the official) module names, strictly.

Layouts (``tests/data/checkpoint_layouts`` lists every tensor): ``official`` (the authors'
release, under ``model_ema``/``model``, or ``state_dict`` in the USI files; our module names),
``timm`` (``stem.*``, ``stages.i.blocks.j.*``, ``head.fc``), ``mmpretrain`` (``backbone.``
prefixes and renamed modules) and ``edgenext_dense`` (a detector or segmenter of ours, whose
``backbone.`` tensors are taken). The layout is recognised from the key names, never from the
wrapper: USI and mmpretrain files both use ``state_dict``. Loading is strict: every backbone
tensor must be found with its shape, otherwise an error names the file, the layout and
architecture, and what is missing or unexpected.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .edgenext_arch import ARCH_SETTINGS

StateDict = Dict[str, torch.Tensor]
PathLike = Union[str, os.PathLike]
CLASSIFIER_KEYS = ("norm.weight", "norm.bias", "head.weight", "head.bias")
# Wrappers in the order they are preferred (the EMA weights are the evaluated ones).
WRAPPER_KEYS = ("model_ema", "state_dict_ema", "model", "state_dict", "module")

# Key patterns that identify each layout (all must occur), in detection order.
SIGNATURES: Dict[str, Tuple[str, ...]] = {
    "timm": (r"^stem\.0\.", r"^stages\.\d+\.blocks\.\d+\.conv_dw\."),
    "mmpretrain": (r"^backbone\.stages\.\d+\.\d+\.(depthwise_conv|pointwise_conv1)\.",),
    "official": (r"^downsample_layers\.0\.0\.", r"^stages\.\d+\.\d+\.dwconv\."),
    "edgenext_dense": (
        r"^backbone\.downsample_layers\.0\.0\.",
        r"^backbone\.stages\.\d+\.\d+\.dwconv\.",
    ),
}
# (pattern, replacement) renames of each layout to the official names, applied in order.
RENAMES: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "official": (),
    "timm": (
        (r"^stem\.", "downsample_layers.0."),
        (r"^stages\.(\d+)\.downsample\.", r"downsample_layers.\1."),
        (r"^stages\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2."),
        (r"\.conv_dw\.", ".dwconv."),
        (r"\.mlp\.fc1\.", ".pwconv1."),
        (r"\.mlp\.fc2\.", ".pwconv2."),
        (r"^head\.norm\.", "norm."),
        (r"^head\.fc\.", "head."),
    ),
    "mmpretrain": (
        (r"^head\.fc\.", "head."),
        (r"^backbone\.", ""),
        (r"\.depthwise_conv\.", ".dwconv."),
        (r"\.pointwise_conv1\.", ".pwconv1."),
        (r"\.pointwise_conv2\.", ".pwconv2."),
        (r"\.gamma_csa$", ".gamma_xca"),
        (r"\.conv_modules\.", ".convs."),
        (r"\.pos_embed\.proj\.", ".pos_embd.token_projection."),
        (r"\.norm_csa\.", ".norm_xca."),
        (r"\.csa\.scale$", ".xca.temperature"),
        (r"\.csa\.", ".xca."),
        (r"^norm3\.", "norm."),
    ),
    "edgenext_dense": ((r"^backbone\.", ""),),  # and only the backbone's tensors are kept
}
FORMATS = tuple(RENAMES)


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read or does not fit the model."""


def detect_format(state_dict: Mapping[str, Any]) -> Optional[str]:
    """The layout (one of :data:`FORMATS`) of unwrapped tensors from their key names, or None.

    Args:
        state_dict (Mapping[str, Any]): Unwrapped tensors (see :func:`unwrap_state_dict`).
    """
    for fmt, patterns in SIGNATURES.items():
        if all(any(re.search(p, k) for k in state_dict) for p in patterns):
            return fmt
    return None


def convert_to_official(state_dict: Mapping[str, torch.Tensor], fmt: str) -> StateDict:
    """Rename a state dict of layout ``fmt`` to the official names (pure, idempotent, no copies).

    Args:
        state_dict (Mapping[str, torch.Tensor]): Tensors in layout ``fmt``.
        fmt (str): One of :data:`FORMATS`; ``edgenext_dense`` keeps the ``backbone.`` tensors.
    """
    if fmt not in RENAMES:
        raise ValueError(f"unknown checkpoint format {fmt!r}; expected one of {FORMATS}")
    out: StateDict = {}
    for key, value in state_dict.items():
        if fmt != "edgenext_dense" or key.startswith("backbone."):
            for pattern, repl in RENAMES[fmt]:
                key = re.sub(pattern, repl, key)
            out[key] = value
    return out


def infer_arch(state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """Name the published arch (``'xx_small'`` ... ``'base'``) of official-named tensors, or None.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Tensors under official names.
    """
    try:
        channels = tuple(
            int(state_dict[f"downsample_layers.{i}.{0 if i == 0 else 1}.weight"].shape[0])
            for i in range(4)
        )
    except KeyError:
        return None
    depths = tuple(
        len({m.group(1) for k in state_dict if (m := re.match(rf"stages\.{i}\.(\d+)\.", k))})
        for i in range(4)
    )
    for name, settings in ARCH_SETTINGS.items():
        if (tuple(settings["channels"]), tuple(settings["depths"])) == (channels, depths):
            return name
    return None


def read_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Read a ``.pth`` file with ``weights_only=True``; any failure names the file and the fix.

    Args:
        path (str | os.PathLike): A ``.pth`` file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"checkpoint file {path!r} does not exist; check the path, or see the README "
            "section 'Pretrained weights' for where to download EdgeNeXt checkpoints"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, EOFError, RuntimeError) as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path!r}: the file is truncated or corrupt ({exc}); "
            "download it again"
        ) from exc
    except Exception as exc:  # pickle.UnpicklingError and friends: not a torch checkpoint
        raise CheckpointError(
            f"cannot read checkpoint {path!r}: it is not a PyTorch checkpoint that loads with "
            f"weights_only=True ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        ) from exc
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"checkpoint {path!r} holds a {type(obj).__name__}, not a dict of tensors"
        )
    return obj


def unwrap_state_dict(checkpoint: Mapping[str, Any], prefer_ema: bool = True) -> StateDict:
    """Take the tensors out of a checkpoint's wrapper, without any DDP ``module.`` prefix.

    Args:
        checkpoint (Mapping[str, Any]): A loaded checkpoint or a plain state dict.
        prefer_ema (bool): Take ``model_ema`` over ``model`` when both exist. Defaults to True.
    """
    order = WRAPPER_KEYS if prefer_ema else tuple(k for k in WRAPPER_KEYS if "ema" not in k)
    inner = next(
        (checkpoint[k] for k in order if isinstance(checkpoint.get(k), Mapping)), checkpoint
    )
    tensors = {k: v for k, v in inner.items() if isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


@dataclass
class LoadedCheckpoint:
    """A checkpoint file read and renamed: its layout (one of :data:`FORMATS`), its published
    arch (None for custom widths) and all its tensors under official names."""

    path: str
    format: str
    arch: Optional[str]
    state_dict: StateDict = field(repr=False)

    def describe(self) -> str:
        """One line: file, layout and architecture."""
        return f"{self.path!r} ({self.format} layout, EdgeNeXt {self.arch or 'custom width'})"


def read_edgenext_checkpoint(path: PathLike, prefer_ema: bool = True) -> LoadedCheckpoint:
    """Read any public EdgeNeXt checkpoint and rename it to the official layout.

    Args:
        path (str | os.PathLike): The checkpoint file.
        prefer_ema (bool): Take the EMA weights of official training files. Defaults to True.
    """
    path = os.fspath(path)
    tensors = unwrap_state_dict(read_checkpoint(path), prefer_ema=prefer_ema)
    fmt = detect_format(tensors)
    if fmt is None:
        sample = ", ".join(list(tensors)[:5]) or "no tensors"
        raise CheckpointError(
            f"{path!r} is not an EdgeNeXt checkpoint in any known layout (official, timm, "
            f"mmpretrain, edgenext_dense); its first keys are: {sample}"
        )
    state = convert_to_official(tensors, fmt)
    return LoadedCheckpoint(path=path, format=fmt, arch=infer_arch(state), state_dict=state)


@dataclass
class LoadReport:
    """What a strict load took from ``source``: ``loaded`` tensors, ``dropped`` classifier keys."""

    source: LoadedCheckpoint
    loaded: int
    dropped: List[str]

    def summary(self) -> str:
        """A log line: what was loaded from where and what was left out."""
        dropped = f"; dropped classifier tensors {self.dropped}" if self.dropped else ""
        return f"loaded {self.loaded} tensors from {self.source.describe()}{dropped}"


def match_state_dict(
    model: nn.Module,
    source: LoadedCheckpoint,
    allowed_extra: Sequence[str] = CLASSIFIER_KEYS,
    ignore_missing_prefixes: Sequence[str] = (),
) -> Tuple[StateDict, List[str]]:
    """Check that ``source`` holds every tensor of ``model`` with the right shape.

    Args:
        model (nn.Module): The module to fill (its ``state_dict()`` names are official ones).
        source (LoadedCheckpoint): The renamed checkpoint.
        allowed_extra (Sequence[str]): Checkpoint keys that may be dropped. Defaults to the
            classifier's final norm and head.
        ignore_missing_prefixes (Sequence[str]): Model keys a checkpoint does not hold (modules
            added for dense prediction). Defaults to ().

    Returns:
        tuple: The tensors to load, and the sorted checkpoint keys that were dropped.
    """
    skip = tuple(ignore_missing_prefixes)
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith(skip)}
    provided = source.state_dict
    extra = sorted(set(provided) - set(expected))
    problems = {
        "missing from the checkpoint": sorted(set(expected) - set(provided)),
        "unexpected in the checkpoint": [k for k in extra if k not in allowed_extra],
        "shape mismatches": [
            f"{k}: checkpoint {tuple(provided[k].shape)} vs model {tuple(expected[k].shape)}"
            for k in sorted(set(expected) & set(provided))
            if provided[k].shape != expected[k].shape
        ],
    }
    if any(problems.values()):
        arch = getattr(model, "arch", None)
        arch = arch if isinstance(arch, str) else None
        message = (
            f"checkpoint {source.describe()} does not fit "
            f"{f'EdgeNeXt {arch}' if arch else type(model).__name__}: nothing was loaded."
        )
        if source.arch and arch and source.arch != arch:
            message += (
                f"\n  The file is EdgeNeXt {source.arch} but the model is EdgeNeXt {arch}: "
                f"set arch='{source.arch}' or use a {arch} checkpoint."
            )
        for title, items in problems.items():
            if items:
                more = f"\n    ... and {len(items) - 12} more" if len(items) > 12 else ""
                listing = "\n    ".join(items[:12])
                message += f"\n  {title} ({len(items)}):\n    {listing}{more}"
        raise CheckpointError(message)
    return {k: provided[k] for k in expected}, [k for k in extra if k in allowed_extra]


def load_pretrained(backbone: nn.Module, path: PathLike, prefer_ema: bool = True) -> LoadReport:
    """Load a published EdgeNeXt checkpoint (any layout) strictly into a backbone.

    Only the classifier's final norm and head are dropped; modules the backbone adds for dense
    prediction (``backbone.non_pretrained_prefixes``) keep their initialisation.

    Args:
        backbone (nn.Module): An :class:`~edgenext_dense.models.backbones.EdgeNeXt`.
        path (str | os.PathLike): The checkpoint file.
        prefer_ema (bool): Take the EMA weights of official training files. Defaults to True.
    """
    source = read_edgenext_checkpoint(path, prefer_ema=prefer_ema)
    prefixes = tuple(getattr(backbone, "non_pretrained_prefixes", ()))
    tensors, dropped = match_state_dict(backbone, source, ignore_missing_prefixes=prefixes)
    backbone.load_state_dict(tensors, strict=not prefixes)
    return LoadReport(source=source, loaded=len(tensors), dropped=dropped)


def save_official(
    state_dict: Mapping[str, torch.Tensor], path: PathLike, meta: Optional[Dict[str, Any]] = None
) -> None:
    """Write tensors in our layout: ``{'state_dict': official names, 'meta': {...}}``.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Tensors under official names.
        path (str | os.PathLike): Destination ``.pth``.
        meta (dict, optional): Plain-typed provenance (format, arch, source). Defaults to None.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"state_dict": dict(state_dict), "meta": dict(meta or {})}, path)


def convert_file(src: PathLike, dst: PathLike, prefer_ema: bool = True) -> LoadedCheckpoint:
    """Read ``src`` in any known layout, write it to ``dst`` in ours, and return what was read.

    Args:
        src (str | os.PathLike): The checkpoint to convert.
        dst (str | os.PathLike): The file to write.
        prefer_ema (bool): Take the EMA weights of official training files. Defaults to True.
    """
    source = read_edgenext_checkpoint(src, prefer_ema=prefer_ema)
    meta = dict(source_file=os.fspath(src), source_format=source.format, arch=source.arch)
    save_official(source.state_dict, dst, meta=meta)
    return source
