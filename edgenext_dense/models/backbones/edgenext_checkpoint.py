"""Reading every published EdgeNeXt checkpoint into our (the official) module names, strictly.

Three layouts of the ImageNet weights exist (``shared/checkpoint_layouts`` lists every tensor):

- ``official``: the authors' release; tensors under ``model_ema`` (preferred) and ``model``, or
  under ``state_dict`` in the USI files. Our module names are these, so they load as they are.
- ``timm``: a plain state dict with ``stem.*``, ``stages.i.blocks.j.*`` and ``head.fc``.
- ``mmpretrain``: ``{'meta', 'state_dict'}`` with ``backbone.`` prefixes and renamed modules.

A fourth, ``edgenext_dense``, is a detector or segmenter of ours (``backbone.`` + official
names, beside ``neck.``/``bbox_head.``/``decode_head.`` tensors that are ignored here).

The format is recognised from the key names, never from the wrapper: official USI files and
mmpretrain files both use ``state_dict``. Converters are pure, idempotent functions of a state
dict. Loading is strict: every backbone tensor must be found with its shape, otherwise an error
names the file, the detected format and architecture, and what is missing or unexpected.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .edgenext_arch import ARCH_SETTINGS

StateDict = Dict[str, torch.Tensor]
FORMATS = ("official", "timm", "mmpretrain", "edgenext_dense")
CLASSIFIER_KEYS = ("norm.weight", "norm.bias", "head.weight", "head.bias")
# Wrappers in the order they are preferred (the EMA weights are the evaluated ones).
WRAPPER_KEYS = ("model_ema", "state_dict_ema", "model", "state_dict", "module")


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read or does not fit the model."""


# ---------------------------------------------------------------------------- pure converters
def _timm_key_to_official(key: str) -> str:
    key = re.sub(r"^stem\.", "downsample_layers.0.", key)
    key = re.sub(r"^stages\.(\d+)\.downsample\.", r"downsample_layers.\1.", key)
    key = re.sub(r"^stages\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2.", key)
    key = key.replace(".conv_dw.", ".dwconv.")
    key = key.replace(".mlp.fc1.", ".pwconv1.").replace(".mlp.fc2.", ".pwconv2.")
    key = re.sub(r"^head\.norm\.", "norm.", key)
    return re.sub(r"^head\.fc\.", "head.", key)


_MMPRETRAIN_RENAMES: Tuple[Tuple[str, str], ...] = (
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
)


def _mmpretrain_key_to_official(key: str) -> str:
    if key.startswith("head.fc."):
        return "head." + key[len("head.fc.") :]
    key = re.sub(r"^backbone\.", "", key)
    for pattern, repl in _MMPRETRAIN_RENAMES:
        key = re.sub(pattern, repl, key)
    return key


def _dense_key_to_official(key: str) -> Optional[str]:
    return key[len("backbone.") :] if key.startswith("backbone.") else None


def detect_format(state_dict: Mapping[str, Any]) -> Optional[str]:
    """Name the layout of an EdgeNeXt state dict from its key names.

    Args:
        state_dict (Mapping[str, Any]): Unwrapped tensors (see :func:`unwrap_state_dict`).

    Returns:
        str | None: One of :data:`FORMATS`, or None when the keys are not EdgeNeXt's.
    """
    keys = list(state_dict)

    def has(pattern: str) -> bool:
        return any(re.search(pattern, k) for k in keys)

    if has(r"^stem\.0\.") and has(r"^stages\.\d+\.blocks\.\d+\.conv_dw\."):
        return "timm"
    if has(r"^backbone\.stages\.\d+\.\d+\.(depthwise_conv|pointwise_conv1)\."):
        return "mmpretrain"
    if has(r"^downsample_layers\.0\.0\.") and has(r"^stages\.\d+\.\d+\.dwconv\."):
        return "official"
    if has(r"^backbone\.downsample_layers\.0\.0\.") and has(
        r"^backbone\.stages\.\d+\.\d+\.dwconv\."
    ):
        return "edgenext_dense"
    return None


def convert_to_official(state_dict: Mapping[str, torch.Tensor], fmt: str) -> StateDict:
    """Rename a state dict of layout ``fmt`` to the official names (pure and idempotent).

    Tensors are not copied. For ``edgenext_dense`` (a detector/segmenter), only the
    ``backbone.`` tensors are kept.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Tensors in layout ``fmt``.
        fmt (str): One of :data:`FORMATS`.

    Returns:
        dict[str, torch.Tensor]: The same tensors under official names.
    """
    renamers: Dict[str, Callable[[str], Optional[str]]] = {
        "official": lambda k: k,
        "timm": _timm_key_to_official,
        "mmpretrain": _mmpretrain_key_to_official,
        "edgenext_dense": _dense_key_to_official,
    }
    if fmt not in renamers:
        raise ValueError(f"unknown checkpoint format {fmt!r}; expected one of {FORMATS}")
    out: StateDict = {}
    for key, value in state_dict.items():
        new = renamers[fmt](key)
        if new is not None:
            out[new] = value
    return out


def infer_arch(state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """Name the published arch of an official-layout state dict from its widths and depths.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Tensors under official names.

    Returns:
        str | None: ``'xx_small'``, ``'x_small'``, ``'small'``, ``'base'``, or None.
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
        if tuple(settings["channels"]) == channels and tuple(settings["depths"]) == depths:
            return name
    return None


# ---------------------------------------------------------------------------- reading files
def read_checkpoint(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Read a checkpoint file with ``weights_only=True`` and explain any failure.

    Args:
        path (str | os.PathLike): A ``.pth`` file.

    Returns:
        dict: The unpickled checkpoint.
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
    """Take the tensors out of a checkpoint's wrapper (``model_ema``/``model``/``state_dict``).

    Args:
        checkpoint (Mapping[str, Any]): A loaded checkpoint or a plain state dict.
        prefer_ema (bool): Take ``model_ema`` over ``model`` when both exist. Defaults to True.

    Returns:
        dict[str, torch.Tensor]: The tensors, with any ``module.`` (DDP) prefix removed.
    """
    order = WRAPPER_KEYS if prefer_ema else tuple(k for k in WRAPPER_KEYS if "ema" not in k)
    inner: Mapping[str, Any] = checkpoint
    for key in order:
        if isinstance(checkpoint.get(key), Mapping):
            inner = checkpoint[key]
            break
    tensors = {k: v for k, v in inner.items() if isinstance(v, torch.Tensor)}
    if tensors and all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


@dataclass
class LoadedCheckpoint:
    """A checkpoint read and renamed to official names.

    Args:
        path (str): The file.
        format (str): The detected layout, one of :data:`FORMATS`.
        arch (str | None): The published arch the widths and depths match, if any.
        state_dict (dict[str, torch.Tensor]): All tensors under official names.
    """

    path: str
    format: str
    arch: Optional[str]
    state_dict: StateDict = field(repr=False)

    def describe(self) -> str:
        """One line: file, layout and architecture."""
        return f"{self.path!r} ({self.format} layout, EdgeNeXt {self.arch or 'custom width'})"


def read_edgenext_checkpoint(
    path: Union[str, os.PathLike], prefer_ema: bool = True
) -> LoadedCheckpoint:
    """Read any public EdgeNeXt checkpoint and rename it to the official layout.

    Args:
        path (str | os.PathLike): The checkpoint file.
        prefer_ema (bool): Take the EMA weights of official training checkpoints.
            Defaults to True.

    Returns:
        LoadedCheckpoint: The renamed tensors with the detected format and arch.
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


# ---------------------------------------------------------------------------- strict loading
@dataclass
class LoadReport:
    """What a strict load took from a checkpoint.

    Args:
        source (LoadedCheckpoint): The checkpoint read.
        loaded (int): Tensors copied into the model.
        dropped (list[str]): Checkpoint tensors deliberately left out (the classifier).
    """

    source: LoadedCheckpoint
    loaded: int
    dropped: List[str]

    def summary(self) -> str:
        """A log line: what was loaded from where and what was left out."""
        dropped = f"; dropped classifier tensors {self.dropped}" if self.dropped else ""
        return f"loaded {self.loaded} tensors from {self.source.describe()}{dropped}"


def _describe_model(model: nn.Module) -> str:
    arch = getattr(model, "arch", None)
    return f"EdgeNeXt {arch}" if isinstance(arch, str) else type(model).__name__


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
        allowed_extra (Sequence[str]): Checkpoint keys that may be left out (dropped).
            Defaults to the classifier's final norm and head.
        ignore_missing_prefixes (Sequence[str]): Model keys not expected in the checkpoint
            (modules added for dense prediction). Defaults to ().

    Returns:
        tuple: The tensors to load, and the sorted checkpoint keys that were dropped.
    """
    expected = {
        k: v
        for k, v in model.state_dict().items()
        if not any(k.startswith(p) for p in ignore_missing_prefixes)
    }
    provided = source.state_dict
    missing = sorted(set(expected) - set(provided))
    extra = sorted(set(provided) - set(expected))
    unexpected = [k for k in extra if k not in allowed_extra]
    mismatched = [
        f"{k}: checkpoint {tuple(provided[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(provided))
        if provided[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(_mismatch_message(model, source, missing, unexpected, mismatched))
    return {k: provided[k] for k in expected}, [k for k in extra if k in allowed_extra]


def _mismatch_message(
    model: nn.Module,
    source: LoadedCheckpoint,
    missing: List[str],
    unexpected: List[str],
    mismatched: List[str],
) -> str:
    def listing(title: str, items: List[str]) -> str:
        shown = "\n    ".join(items[:12])
        more = f"\n    ... and {len(items) - 12} more" if len(items) > 12 else ""
        return f"\n  {title} ({len(items)}):\n    {shown}{more}" if items else ""

    hint = ""
    model_arch = getattr(model, "arch", None)
    if source.arch and isinstance(model_arch, str) and source.arch != model_arch:
        hint = (
            f"\n  The file is EdgeNeXt {source.arch} but the model is EdgeNeXt {model_arch}: "
            f"set arch='{source.arch}' or use a {model_arch} checkpoint."
        )
    return (
        f"checkpoint {source.describe()} does not fit {_describe_model(model)}: "
        f"nothing was loaded.{hint}"
        + listing("missing from the checkpoint", missing)
        + listing("unexpected in the checkpoint", unexpected)
        + listing("shape mismatches", mismatched)
    )


def load_pretrained(
    backbone: nn.Module, path: Union[str, os.PathLike], prefer_ema: bool = True
) -> LoadReport:
    """Load a published EdgeNeXt checkpoint (any layout) strictly into a backbone.

    The classifier's final norm and head are dropped, and only they; modules the backbone adds
    for dense prediction (``backbone.non_pretrained_prefixes``) keep their initialisation.

    Args:
        backbone (nn.Module): An :class:`~edgenext_dense.models.backbones.EdgeNeXt`.
        path (str | os.PathLike): The checkpoint file.
        prefer_ema (bool): Take the EMA weights of official training checkpoints.
            Defaults to True.

    Returns:
        LoadReport: What was loaded and dropped.
    """
    source = read_edgenext_checkpoint(path, prefer_ema=prefer_ema)
    prefixes = tuple(getattr(backbone, "non_pretrained_prefixes", ()))
    tensors, dropped = match_state_dict(backbone, source, ignore_missing_prefixes=prefixes)
    backbone.load_state_dict(tensors, strict=not prefixes)
    return LoadReport(source=source, loaded=len(tensors), dropped=dropped)


def save_official(
    state_dict: Mapping[str, torch.Tensor],
    path: Union[str, os.PathLike],
    meta: Optional[Dict[str, Any]] = None,
) -> None:
    """Write tensors in our layout: ``{'state_dict': official names, 'meta': {...}}``.

    Args:
        state_dict (Mapping[str, torch.Tensor]): Tensors under official names.
        path (str | os.PathLike): Destination ``.pth``.
        meta (dict, optional): Plain-typed provenance (format, arch, source file).
            Defaults to None.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"state_dict": dict(state_dict), "meta": dict(meta or {})}, path)


def convert_file(
    src: Union[str, os.PathLike], dst: Union[str, os.PathLike], prefer_ema: bool = True
) -> LoadedCheckpoint:
    """Read ``src`` in any known layout and write it to ``dst`` in ours (official names).

    Args:
        src (str | os.PathLike): The checkpoint to convert.
        dst (str | os.PathLike): The file to write.
        prefer_ema (bool): Take the EMA weights of official training files. Defaults to True.

    Returns:
        LoadedCheckpoint: What was read (format, arch, tensors).
    """
    source = read_edgenext_checkpoint(src, prefer_ema=prefer_ema)
    meta = dict(source_file=os.fspath(src), source_format=source.format, arch=source.arch)
    save_official(source.state_dict, dst, meta=meta)
    return source
