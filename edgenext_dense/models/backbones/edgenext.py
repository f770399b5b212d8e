"""EdgeNeXt backbone for dense prediction.

Paper: "EdgeNeXt: Efficiently Amalgamated CNN-Transformer Architecture for Mobile Vision
Applications", Maaz et al., 2022 (https://arxiv.org/abs/2206.10589).
Original code: https://github.com/mmaaz60/EdgeNeXt (MIT license).

Module names follow the authors' release (``downsample_layers``, ``stages.i.j.dwconv``,
``pwconv1``, ``xca``, ...), so official checkpoints load by unwrapping alone; the timm and
mmpretrain layouts are renamed by the pure functions in :mod:`edgenext_dense.checkpoint`.

Beyond the classification network this adds what dense heads need: multi-scale outputs
(``out_indices``), an ``output_stride`` of 16 or 8 (the last downsampling keeps resolution and
the following depth-wise convolutions are dilated, the checkpoints load unchanged), optional
per-output LayerNorms, ``frozen_stages`` and strict pretrained loading through ``init_cfg``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from edgenext_dense.registry import MODELS

ARCH_SETTINGS: Dict[str, Dict[str, Tuple[int, ...]]] = {
    "xx_small": dict(channels=(24, 48, 88, 168), depths=(2, 2, 6, 2), num_heads=(4, 4, 4, 4)),
    "x_small": dict(channels=(32, 64, 100, 192), depths=(3, 3, 9, 3), num_heads=(4, 4, 4, 4)),
    "small": dict(channels=(48, 96, 160, 304), depths=(3, 3, 9, 3), num_heads=(8, 8, 8, 8)),
    "base": dict(channels=(80, 160, 288, 584), depths=(3, 3, 9, 3), num_heads=(8, 8, 8, 8)),
}
# Other spellings users bring from mmpretrain (``xxsmall``), timm (``edgenext_xx_small``) or
# the model zoo (``xx-small``).
ARCH_ALIASES: Dict[str, str] = {
    "xxsmall": "xx_small",
    "xx-small": "xx_small",
    "xxs": "xx_small",
    "xsmall": "x_small",
    "x-small": "x_small",
    "xs": "x_small",
    "s": "small",
    "b": "base",
}

# Shared by every published EdgeNeXt: kernel sizes per stage, one SDTA block closing stages
# 2-4 with 2/2/3/4 channel groups, Fourier positional encoding in stage 2's SDTA only.
KERNEL_SIZES = (3, 5, 7, 9)
GLOBAL_BLOCKS = (0, 1, 1, 1)
SDTA_SCALES = (2, 2, 3, 4)
SDTA_POS_EMBED = (False, True, False, False)
LN_EPS = 1e-6


def resolve_arch(arch: str) -> str:
    """Return the canonical arch name for ``arch`` (``'xxsmall'`` -> ``'xx_small'``).

    Args:
        arch (str): An arch name in any of the accepted spellings.

    Returns:
        str: One of ``'xx_small'``, ``'x_small'``, ``'small'``, ``'base'``.
    """
    key = arch.lower().strip()
    key = key[len("edgenext_") :] if key.startswith("edgenext_") else key
    key = ARCH_ALIASES.get(key, key)
    if key not in ARCH_SETTINGS:
        spellings = sorted(set(ARCH_SETTINGS) | set(ARCH_ALIASES))
        raise ValueError(f"unknown EdgeNeXt arch {arch!r}; expected one of {spellings} or a dict")
    return key


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (the official ``channels_first`` LN)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ResolutionKeepingConv2d(nn.Conv2d):
    """A 2x2 stride-1 convolution that replaces a stride-2 downsampling and keeps resolution.

    NOTE: output pixel ``i`` sees input pixels ``i`` and ``i + dilation``, as the strided
    convolution's output ``i // 2`` saw ``2i`` and ``2i + 1``: the right/bottom edge is padded by
    the dilation so the size is unchanged. Same weights as the strided layer it replaces.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.dilation[0] * (self.kernel_size[0] - 1)
        return super().forward(F.pad(x, (0, pad, 0, pad)))


def _downsample_conv(in_channels: int, out_channels: int, dilation: int) -> nn.Conv2d:
    """2x2 stride-2 patch merging, or its resolution-keeping twin when ``dilation > 0``."""
    if dilation == 0:
        return nn.Conv2d(in_channels, out_channels, kernel_size=2, stride=2)
    return ResolutionKeepingConv2d(in_channels, out_channels, kernel_size=2, dilation=dilation)


class ConvEncoder(nn.Module):
    """Conv. encoder (paper Sec. 3.1): a ConvNeXt-style depth-wise conv + inverted bottleneck.

    Args:
        dim (int): Channels.
        kernel_size (int): Depth-wise kernel size. Defaults to 7.
        dilation (int): Depth-wise dilation (> 1 only below output stride 32). Defaults to 1.
        expan_ratio (int): Hidden width of the bottleneck over ``dim``. Defaults to 4.
        drop_path (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial layer scale; 0 disables it. Defaults to 1e-6.
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int = 7,
        dilation: int = 1,
        expan_ratio: int = 4,
        drop_path: float = 0.0,
        layer_scale_init_value: float = 1e-6,
    ) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(
            dim,
            dim,
            kernel_size=kernel_size,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            groups=dim,
        )
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.pwconv1 = nn.Linear(dim, expan_ratio * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(expan_ratio * dim, dim)
        self.gamma = (
            nn.Parameter(layer_scale_init_value * torch.ones(dim))
            if layer_scale_init_value > 0
            else None
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        # NOTE: with channels-last activations (see EdgeNeXt.forward) these permutes are views,
        # so the linears read contiguous (N*H*W, C) rows without a copy.
        x = self.dwconv(x).permute(0, 2, 3, 1)  # NCHW -> NHWC
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        if self.gamma is not None:
            x = self.gamma * x
        return shortcut + self.drop_path(x.permute(0, 3, 1, 2))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the LayerNorm affine into ``pwconv1`` and layer scale into ``pwconv2``."""
        _fold_norm_affine(self.norm, self.pwconv1)
        self.gamma = _fold_scale(self.gamma, self.pwconv2)


class PositionalEncodingFourier(nn.Module):
    """Fourier positional encoding (DETR-style sine/cosine of normalised coordinates).

    The sine/cosine grid depends only on the map size, so it is computed once per size, device
    and dtype and cached; only the 1x1 projection runs on every call.

    Args:
        dim (int): Output channels.
        hidden_dim (int): Frequencies per axis. Defaults to 32.
        temperature (float): Frequency base. Defaults to 10000.
    """

    def __init__(self, dim: int, hidden_dim: int = 32, temperature: float = 10000.0) -> None:
        super().__init__()
        self.token_projection = nn.Conv2d(hidden_dim * 2, dim, kernel_size=1)
        self.hidden_dim = hidden_dim
        self.temperature = temperature
        self._grids: Dict[Tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}

    def fourier_grid(self, height: int, width: int) -> torch.Tensor:
        """The ``(1, 2 * hidden_dim, H, W)`` sine/cosine features before the projection."""
        weight = self.token_projection.weight
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            # NOTE: a cached grid would enter an exported graph as a constant of one size
            return self._compute_grid(height, width, weight.device).to(weight.dtype)
        key = (height, width, weight.device, weight.dtype)
        if key not in self._grids:
            self._grids[key] = self._compute_grid(height, width, weight.device).to(weight.dtype)
        return self._grids[key]

    def _compute_grid(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        eps, scale = 1e-6, 2 * math.pi
        # The official code takes cumsums of an all-ones mask: these are the same 1..N ramps.
        y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
        x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
        y = (y / (height + eps) * scale)[:, None].expand(height, width)
        x = (x / (width + eps) * scale)[None, :].expand(height, width)
        dim_t = torch.arange(self.hidden_dim, dtype=torch.float32, device=device)
        dim_t = self.temperature ** (
            2 * torch.div(dim_t, 2, rounding_mode="floor") / self.hidden_dim
        )
        pos_x = x[:, :, None] / dim_t
        pos_y = y[:, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, 0::2].sin(), pos_x[:, :, 1::2].cos()), dim=3).flatten(2)
        pos_y = torch.stack((pos_y[:, :, 0::2].sin(), pos_y[:, :, 1::2].cos()), dim=3).flatten(2)
        grid = torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1)[None]
        return grid.contiguous(memory_format=torch.channels_last)

    def forward(self, batch: int, height: int, width: int) -> torch.Tensor:
        pos = self.token_projection(self.fourier_grid(height, width))
        return pos.expand(batch, -1, -1, -1)


class XCA(nn.Module):
    """Cross-covariance ("transposed") attention with a learnable temperature per head.

    NOTE: this is channel attention: each head attends over a (C/h x C/h) map built from
    L2-normalised queries and keys along the token axis, so its cost is linear in H*W.

    Args:
        dim (int): Channels.
        num_heads (int): Heads. Defaults to 8.
        qkv_bias (bool): Bias in the qkv projection. Defaults to True.
        attn_drop (float): Attention dropout. Defaults to 0.
        proj_drop (float): Output dropout. Defaults to 0.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 4, 1).unbind(0)  # each (B, heads, C/heads, N)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).permute(0, 3, 1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class SDTAEncoder(nn.Module):
    """Split depth-wise transpose attention encoder (paper Sec. 3.2).

    The channels are split into ``scales`` groups; all but the last go through a cascade of
    3x3 depth-wise convolutions (each group adds the previous group's output), then XCA and an
    inverted bottleneck follow, each with layer scale and a residual.

    Args:
        dim (int): Channels.
        num_heads (int): XCA heads. Defaults to 8.
        scales (int): Channel groups. Defaults to 1.
        use_pos_emb (bool): Add Fourier positional encoding before XCA. Defaults to False.
        dilation (int): Dilation of the split convolutions. Defaults to 1.
        expan_ratio (int): Bottleneck width over ``dim``. Defaults to 4.
        drop_path (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial layer scale; 0 disables it. Defaults to 1e-6.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        scales: int = 1,
        use_pos_emb: bool = False,
        dilation: int = 1,
        expan_ratio: int = 4,
        drop_path: float = 0.0,
        layer_scale_init_value: float = 1e-6,
    ) -> None:
        super().__init__()
        self.width = max(int(math.ceil(dim / scales)), int(math.floor(dim // scales)))
        self.nums = 1 if scales == 1 else scales - 1
        self.convs = nn.ModuleList(
            nn.Conv2d(
                self.width,
                self.width,
                kernel_size=3,
                padding=dilation,
                dilation=dilation,
                groups=self.width,
            )
            for _ in range(self.nums)
        )
        self.pos_embd = PositionalEncodingFourier(dim=dim) if use_pos_emb else None
        self.norm_xca = nn.LayerNorm(dim, eps=LN_EPS)
        self.gamma_xca = (
            nn.Parameter(layer_scale_init_value * torch.ones(dim))
            if layer_scale_init_value > 0
            else None
        )
        self.xca = XCA(dim, num_heads=num_heads)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.pwconv1 = nn.Linear(dim, expan_ratio * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(expan_ratio * dim, dim)
        self.gamma = (
            nn.Parameter(layer_scale_init_value * torch.ones(dim))
            if layer_scale_init_value > 0
            else None
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def _split_convs(self, x: torch.Tensor) -> torch.Tensor:
        splits = torch.split(x, self.width, dim=1)
        outs = []
        sp = splits[0]
        for i, conv in enumerate(self.convs):
            sp = conv(sp if i == 0 else sp + splits[i])
            outs.append(sp)
        outs.extend(splits[self.nums :])
        return torch.cat(outs, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self._split_convs(x)
        b, c, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, HW, C)
        if self.pos_embd is not None:
            x = x + self.pos_embd(b, h, w).flatten(2).transpose(1, 2)
        attn = self.xca(self.norm_xca(x))
        if self.gamma_xca is not None:
            attn = self.gamma_xca * attn
        x = x + self.drop_path(attn)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        if self.gamma is not None:
            x = self.gamma * x
        x = x.transpose(1, 2).reshape(b, c, h, w)
        return shortcut + self.drop_path(x)

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold LayerNorm affines into the following linears and layer scales into the
        preceding ones."""
        _fold_norm_affine(self.norm_xca, self.xca.qkv)
        _fold_norm_affine(self.norm, self.pwconv1)
        self.gamma_xca = _fold_scale(self.gamma_xca, self.xca.proj)
        self.gamma = _fold_scale(self.gamma, self.pwconv2)


def _fold_norm_affine(norm: nn.LayerNorm, linear: nn.Linear) -> None:
    """Make ``linear(norm(x))`` one affine-free LayerNorm and an adjusted linear."""
    if norm.weight is None:
        return
    linear.bias.add_(linear.weight @ norm.bias)
    linear.weight.mul_(norm.weight[None, :])
    norm.weight = None
    norm.bias = None
    norm.elementwise_affine = False


def _fold_scale(gamma: Optional[nn.Parameter], linear: nn.Linear) -> None:
    """Multiply ``linear``'s outputs by ``gamma`` in its weights; returns None (gamma's slot)."""
    if gamma is not None:
        linear.weight.mul_(gamma[:, None])
        linear.bias.mul_(gamma)
    return None


@MODELS.register_module()
class EdgeNeXt(BaseModule):
    """EdgeNeXt as a multi-scale backbone for detection and segmentation.

    Args:
        arch (str | dict): ``'xx_small'``, ``'x_small'``, ``'small'`` or ``'base'`` (also
            ``'xxsmall'``/``'xsmall'``), or a dict with ``channels``, ``depths`` and
            ``num_heads`` (4 values each) for custom widths. Defaults to ``'small'``.
        in_channels (int): Input channels. Defaults to 3.
        out_indices (Sequence[int]): Stages whose outputs are returned, any subset of 0..3
            (strides 4, 8, 16, 32). Defaults to ``(0, 1, 2, 3)``.
        output_stride (int): 32, 16 or 8. Below 32 the last one or two downsamplings keep
            resolution and the later depth-wise convolutions are dilated. Defaults to 32.
        out_norms (bool): Add a LayerNorm on each returned map (not pretrained); by default the
            raw stage outputs are returned, as the paper's heads consumed. Defaults to False.
        frozen_stages (int): Number of leading stages (with their downsampling layers) whose
            parameters are frozen and kept in eval mode; 0 or -1 freezes nothing.
            Defaults to -1.
        drop_path_rate (float): Stochastic depth rate, increased linearly over the blocks.
            Defaults to 0.
        layer_scale_init_value (float): Initial layer scale. Defaults to 1e-6.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH)`` loads any
            public EdgeNeXt checkpoint layout strictly (see :mod:`edgenext_dense.checkpoint`);
            None initialises from scratch. Defaults to None.
    """

    def __init__(
        self,
        arch: Union[str, Dict[str, Sequence[int]]] = "small",
        in_channels: int = 3,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        output_stride: int = 32,
        out_norms: bool = False,
        frozen_stages: int = -1,
        drop_path_rate: float = 0.0,
        layer_scale_init_value: float = 1e-6,
        init_cfg: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        settings = self._parse_arch(arch)
        self.arch = arch if isinstance(arch, dict) else resolve_arch(arch)
        self.channels: Tuple[int, ...] = tuple(settings["channels"])
        self.depths: Tuple[int, ...] = tuple(settings["depths"])
        self.num_heads: Tuple[int, ...] = tuple(settings["num_heads"])
        self.out_indices = self._parse_out_indices(out_indices)
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
        if not -1 <= frozen_stages <= 4:
            raise ValueError(f"frozen_stages must be in -1..4, got {frozen_stages!r}")
        self.output_stride = output_stride
        self.frozen_stages = frozen_stages

        # dilation[i]: dilation of stage i's depth-wise convs; 1 while the stride still grows.
        strides = (4, 8, 16, 32)
        self.dilations = tuple(max(1, s // output_stride) for s in strides)
        self.strides = tuple(min(s, output_stride) for s in strides)

        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(
            nn.Sequential(
                nn.Conv2d(in_channels, self.channels[0], kernel_size=4, stride=4),
                LayerNorm2d(self.channels[0], eps=LN_EPS),
            )
        )
        for i in range(1, 4):
            # a downsampling that is skipped runs at the previous stage's dilation
            keep = self.strides[i] == self.strides[i - 1]
            self.downsample_layers.append(
                nn.Sequential(
                    LayerNorm2d(self.channels[i - 1], eps=LN_EPS),
                    _downsample_conv(
                        self.channels[i - 1], self.channels[i], self.dilations[i - 1] if keep else 0
                    ),
                )
            )

        dpr = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        self.stages = nn.ModuleList()
        for i, depth in enumerate(self.depths):
            first = sum(self.depths[:i])
            blocks = [
                self._make_block(i, j, depth, dpr[first + j], layer_scale_init_value)
                for j in range(depth)
            ]
            self.stages.append(nn.Sequential(*blocks))

        self.out_norms = (
            nn.ModuleList(LayerNorm2d(self.channels[i], eps=LN_EPS) for i in self.out_indices)
            if out_norms
            else None
        )
        self._freeze_stages()

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _parse_arch(arch: Union[str, Dict[str, Sequence[int]]]) -> Dict[str, Sequence[int]]:
        if isinstance(arch, str):
            return ARCH_SETTINGS[resolve_arch(arch)]
        if not isinstance(arch, dict):
            raise TypeError(f"arch must be a str or a dict, got {type(arch).__name__}")
        keys = {"channels", "depths", "num_heads"}
        if set(arch) != keys or any(len(arch[k]) != 4 for k in keys):
            raise ValueError(f"a custom arch needs exactly {sorted(keys)}, 4 values each: {arch!r}")
        for c, h in zip(arch["channels"], arch["num_heads"]):
            if c % h:
                raise ValueError(f"channels {c} are not divisible by num_heads {h} in {arch!r}")
        return arch

    @staticmethod
    def _parse_out_indices(out_indices: Union[int, Sequence[int]]) -> Tuple[int, ...]:
        indices = (out_indices,) if isinstance(out_indices, int) else tuple(out_indices)
        indices = tuple(i + 4 if i < 0 else i for i in indices)
        if (
            not indices
            or any(i not in range(4) for i in indices)
            or len(set(indices)) != len(indices)
        ):
            raise ValueError(f"out_indices must be distinct values in 0..3, got {out_indices!r}")
        return tuple(sorted(indices))

    def _make_block(
        self, stage: int, index: int, depth: int, drop_path: float, ls_init: float
    ) -> nn.Module:
        dilation = self.dilations[stage]
        if index >= depth - GLOBAL_BLOCKS[stage]:
            return SDTAEncoder(
                self.channels[stage],
                num_heads=self.num_heads[stage],
                scales=SDTA_SCALES[stage],
                use_pos_emb=SDTA_POS_EMBED[stage],
                dilation=dilation,
                drop_path=drop_path,
                layer_scale_init_value=ls_init,
            )
        return ConvEncoder(
            self.channels[stage],
            kernel_size=KERNEL_SIZES[stage],
            dilation=dilation,
            drop_path=drop_path,
            layer_scale_init_value=ls_init,
        )

    # ------------------------------------------------------------------ public interface
    @property
    def feature_info(self) -> Tuple[Dict[str, Any], ...]:
        """Channels and stride (``reduction``) of each returned map, in output order."""
        return tuple(
            dict(num_chs=self.channels[i], reduction=self.strides[i], module=f"stages.{i}")
            for i in self.out_indices
        )

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each returned map, in output order."""
        return tuple(self.channels[i] for i in self.out_indices)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the stage outputs selected by ``out_indices`` (NCHW, floor(H / stride))."""
        if x.dim() != 4 or x.shape[-1] < 32 or x.shape[-2] < 32:
            raise ValueError(
                f"EdgeNeXt expects an (N, C, H, W) tensor with H, W >= 32, got {tuple(x.shape)}"
            )
        # NOTE: channels-last activations: depth-wise convs run natively on them, and the
        # NHWC views the LayerNorms and pointwise linears take need no copies.
        x = x.contiguous(memory_format=torch.channels_last)
        outs = []
        last = self.out_indices[-1]
        for i in range(last + 1):
            x = self.stages[i](self.downsample_layers[i](x))
            if i in self.out_indices:
                out = x
                if self.out_norms is not None:
                    out = self.out_norms[self.out_indices.index(i)](out)
                outs.append(out)
        return tuple(outs)

    def fuse(self) -> EdgeNeXt:
        """Fold constants for inference: LayerNorm affines and layer scales into the linears.

        Outputs stay the same up to float rounding. Only for inference: after fusing, the
        parameters no longer match the checkpoint layout, and training would differ (layer
        scale and norm affines are learnt separately). Never called implicitly.

        Returns:
            EdgeNeXt: ``self``, fused and in eval mode.
        """
        self.eval()
        for stage in self.stages:
            for block in stage:
                block.fuse()
        self.fused = True
        return self

    def _freeze_stages(self) -> None:
        for i in range(max(self.frozen_stages, 0)):
            for module in (self.downsample_layers[i], self.stages[i]):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    fused = False

    def train(self, mode: bool = True) -> EdgeNeXt:
        """Set train/eval mode, keeping frozen stages in eval mode.

        Args:
            mode (bool): Training mode. Defaults to True.

        Returns:
            EdgeNeXt: ``self``.
        """
        if mode and self.fused:
            raise RuntimeError("this EdgeNeXt was fused for inference (fuse()); it cannot train")
        super().train(mode)
        self._freeze_stages()
        return self

    def init_weights(self) -> None:
        """Load ``init_cfg``'s pretrained checkpoint strictly, or initialise as the paper."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get("type") == "Pretrained":
            from edgenext_dense.checkpoint import load_pretrained

            logger = MMLogger.get_current_instance()
            report = load_pretrained(self, cfg["checkpoint"])
            logger.info(report.summary())
            self._is_init = True
            return
        if cfg is not None:
            super().init_weights()
            return
        self.apply(_init_paper_weights)
        self._is_init = True

    @property
    def non_pretrained_prefixes(self) -> Tuple[str, ...]:
        """State-dict prefixes a classification checkpoint does not hold (new modules)."""
        return ("out_norms.",) if self.out_norms is not None else ()


def _init_paper_weights(module: nn.Module) -> None:
    """The official initialisation: truncated normal (std 0.02) for convs and linears."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
