"""The building blocks of EdgeNeXt (paper Sec. 3): conv. encoder, SDTA encoder, XCA.

Module and parameter names follow the authors' release, so official checkpoints load into
:class:`~edgenext_dense.models.backbones.edgenext.EdgeNeXt` unchanged. Each block's ``fuse()``
folds LayerNorm affines and layer scales into its linears for inference.

How the published network is computed here (same parameters, same outputs up to float rounding)
is in :mod:`.edgenext_kernels`; ``tests/models/test_backbone_fast_paths.py`` checks it against
the authors' formulation.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from torch import nn

from . import edgenext_inference
from .edgenext_kernels import (
    channel_norm,
    constant_conv2d,
    conv2d,
    cpu_inference,
    cross_covariance_attention,
    depthwise,
    freeze_weights,
    inference_conv2d,
    pointwise,
    token_norm,
)

LN_EPS = 1e-6


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor (the official ``channels_first`` LN)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_norm(self, x)

    def inference(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` in CPU inference, unchecked (:func:`.edgenext_inference.call_unobserved`)."""
        return token_norm(self, x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class PatchConv2d(nn.Conv2d):
    """The stem's and the downsamplings' ``nn.Conv2d``, run by :func:`.edgenext_kernels.conv2d`
    (oneDNN on weights reordered once, after ``fuse()``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv2d(self, self._pad(x))

    def inference(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` in CPU float32 inference, unchecked
        (:func:`.edgenext_inference.call_unobserved`)."""
        return inference_conv2d(self, self._pad(x))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ResolutionKeepingConv2d(PatchConv2d):
    """A 2x2 stride-1 convolution that replaces a stride-2 downsampling and keeps resolution.

    NOTE: output pixel ``i`` sees input pixels ``i`` and ``i + dilation``, as the strided
    convolution's output ``i // 2`` saw ``2i`` and ``2i + 1``: the right/bottom edge is padded by
    the dilation so the size is unchanged. Same weights as the strided layer it replaces.
    """

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.dilation[0] * (self.kernel_size[0] - 1)
        return F.pad(x, (0, pad, 0, pad))


def _downsample_conv(in_channels: int, out_channels: int, dilation: int) -> nn.Conv2d:
    """2x2 stride-2 patch merging, or its resolution-keeping twin when ``dilation > 0``."""
    if dilation == 0:
        return PatchConv2d(in_channels, out_channels, kernel_size=2, stride=2)
    return ResolutionKeepingConv2d(in_channels, out_channels, kernel_size=2, dilation=dilation)


def _layer_scale(dim: int, value: float) -> Optional[nn.Parameter]:
    """A per-channel layer scale starting at ``value``, or None when ``value`` is 0."""
    return nn.Parameter(value * torch.ones(dim)) if value > 0 else None


class _BottleneckMixin:
    """The inverted bottleneck closing both encoders: LN, linear, GELU, linear, layer scale.

    Attribute names (``norm``, ``pwconv1``, ``pwconv2``, ``gamma``) are the authors'. The
    linears run per pixel on NCHW maps (:func:`pointwise`); ``cpu_fused_kernels`` (default
    True) lets CPU float32 inference run the whole block in oneDNN kernels
    (:mod:`.edgenext_inference`).
    """

    def _build_bottleneck(
        self,
        dim: int,
        expan_ratio: int,
        drop_path: float,
        layer_scale_init_value: float,
        cpu_fused_kernels: bool,
    ) -> None:
        self.cpu_fused_kernels = cpu_fused_kernels
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.pwconv1 = nn.Linear(dim, expan_ratio * dim)
        self.act = nn.GELU()  # exact (erf); kept as a module for the authors' layout
        self.pwconv2 = nn.Linear(expan_ratio * dim, dim)
        self.gamma = _layer_scale(dim, layer_scale_init_value)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def _bottleneck(self, x: torch.Tensor) -> torch.Tensor:
        """The scaled bottleneck output of the NCHW map ``x`` (before the residual)."""
        x = F.gelu(pointwise(self.pwconv1, channel_norm(self.norm, x)))
        x = pointwise(self.pwconv2, x)
        return x if self.gamma is None else self.gamma[:, None, None] * x


class ConvEncoder(_BottleneckMixin, nn.Module):
    """Conv. encoder (paper Sec. 3.1): a ConvNeXt-style depth-wise conv + inverted bottleneck.

    Args:
        dim (int): Channels.
        kernel_size (int): Depth-wise kernel size. Defaults to 7.
        dilation (int): Depth-wise dilation (> 1 only below output stride 32). Defaults to 1.
        expan_ratio (int): Hidden width of the bottleneck over ``dim``. Defaults to 4.
        drop_path (float): Stochastic depth rate. Defaults to 0.
        layer_scale_init_value (float): Initial layer scale; 0 disables it. Defaults to 1e-6.
        cpu_fused_kernels (bool): Let CPU float32 inference run the block in oneDNN kernels
            (:mod:`.edgenext_inference`). Defaults to True.
    """

    def __init__(
        self,
        dim: int,
        kernel_size: int = 7,
        dilation: int = 1,
        expan_ratio: int = 4,
        drop_path: float = 0.0,
        layer_scale_init_value: float = 1e-6,
        cpu_fused_kernels: bool = True,
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
        self._build_bottleneck(
            dim, expan_ratio, drop_path, layer_scale_init_value, cpu_fused_kernels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if edgenext_inference.runs_inference_kernels(self, x):
            return self.inference(x)
        return _add(x, self.drop_path(self._bottleneck(depthwise(self.dwconv, x))))

    def inference(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` in CPU float32 inference, unchecked (:mod:`.edgenext_inference`)."""
        return edgenext_inference.conv_encoder(self, x)

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the LayerNorm affine into ``pwconv1`` and layer scale into ``pwconv2``."""
        _fold_norm_affine(self.norm, self.pwconv1)
        self.gamma = _fold_scale(self.gamma, self.pwconv2)
        freeze_weights(self)


class PositionalEncodingFourier(nn.Module):
    """Fourier positional encoding (DETR-style sine/cosine of normalised coordinates).

    The sine/cosine grid depends only on the map size, so it is computed once per size, device
    and dtype and cached; the 1x1 projection runs on every call, unless ``fuse()`` froze it.

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
        pos = constant_conv2d(self.token_projection, self.fourier_grid(height, width))
        return pos.expand(batch, -1, -1, -1)


class XCA(nn.Module):
    """Cross-covariance ("transposed") attention with a learnable temperature per head.

    NOTE: this is channel attention: each head attends over a (C/h x C/h) map built from
    L2-normalised queries and keys along the token axis, so its cost is linear in H*W. It
    takes and returns ``(B, C, H, W)`` maps (the authors' takes ``(B, H*W, C)`` tokens; the
    parameters and the result are the same).

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
        """Attend over the ``(B, C, H, W)`` map ``x``'s channels; returns the same shape."""
        if not self.training and cpu_inference(x):
            return cross_covariance_attention(
                self.qkv, self.proj, self.temperature, self.num_heads, x
            )
        b, c, h, w = x.shape
        qkv = pointwise(self.qkv, x).reshape(b, 3, self.num_heads, c // self.num_heads, h * w)
        q, k, v = qkv.unbind(1)  # each (B, heads, C/heads, N)
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1)) * self.temperature
        attn = self.attn_drop(attn.softmax(dim=-1))
        x = (attn @ v).reshape(b, c, h, w)
        x = x.contiguous(memory_format=torch.channels_last)
        return self.proj_drop(pointwise(self.proj, x))


class SDTAEncoder(_BottleneckMixin, nn.Module):
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
        cpu_fused_kernels (bool): Let CPU float32 inference run the block in oneDNN kernels
            (:mod:`.edgenext_inference`). Defaults to True.
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
        cpu_fused_kernels: bool = True,
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
        self.gamma_xca = _layer_scale(dim, layer_scale_init_value)
        self.xca = XCA(dim, num_heads=num_heads)
        self._build_bottleneck(
            dim, expan_ratio, drop_path, layer_scale_init_value, cpu_fused_kernels
        )

    def split_convs(self, x: torch.Tensor, convolve: Callable = conv2d) -> torch.Tensor:
        """The cascade of depth-wise convolutions over the channel groups of ``x``, each run by
        ``convolve(conv, input)``; returns a fresh ``(B, C, H, W)`` map."""
        splits = torch.split(x, self.width, dim=1)
        outs = []
        sp = splits[0]
        for i, conv in enumerate(self.convs):
            sp = convolve(conv, sp if i == 0 else sp + splits[i])
            outs.append(sp)
        outs.extend(splits[self.nums :])
        return torch.cat(outs, dim=1)

    def inference(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` in CPU float32 inference, unchecked (:mod:`.edgenext_inference`)."""
        return edgenext_inference.sdta_encoder(self, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if edgenext_inference.runs_inference_kernels(self, x):
            return self.inference(x)
        shortcut = x
        x = self.split_convs(x)
        if self.pos_embd is not None:
            b, _, h, w = x.shape
            x = _add(self.pos_embd(b, h, w), x)
        attn = self.xca(channel_norm(self.norm_xca, x))
        if self.gamma_xca is not None:
            attn = self.gamma_xca[:, None, None] * attn
        x = _add(self.drop_path(attn), x)
        return _add(shortcut, self.drop_path(self._bottleneck(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold LayerNorm affines into the following linears and layer scales into the
        preceding ones."""
        _fold_norm_affine(self.norm_xca, self.xca.qkv)
        _fold_norm_affine(self.norm, self.pwconv1)
        self.gamma_xca = _fold_scale(self.gamma_xca, self.xca.proj)
        self.gamma = _fold_scale(self.gamma, self.pwconv2)
        freeze_weights(self)


def _add(x: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
    """``x + fresh``; in CPU inference, written into ``fresh``, a tensor the block made itself
    (a warm buffer instead of a new one), where it has the sum's shape and dtype (autocast)."""
    in_place = (
        cpu_inference(fresh)
        and fresh.shape == x.shape
        and torch.promote_types(x.dtype, fresh.dtype) == fresh.dtype
    )
    return fresh.add_(x) if in_place else x + fresh


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
