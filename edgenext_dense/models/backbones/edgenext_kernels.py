"""How EdgeNeXt's blocks compute on CPU: the same parameters and outputs as the authors'
formulation (up to float rounding), in fewer, faster kernels.

- activations stay NCHW with channels-last memory, so the channel LayerNorms are views of an
  NHWC tensor and the depth-wise convolutions run natively;
- the pointwise linears (``pwconv1``/``pwconv2``, XCA's ``qkv``/``proj``) run as 1x1
  convolutions on those maps (:func:`pointwise`): oneDNN's convolution is faster than the GEMM
  behind ``nn.Linear`` (docs/benchmarks.md), and an exported graph has no NCHW <-> NHWC
  transposes;
- in inference on CPU (no autograd, float32, not tracing), the expansion linear and its GELU
  run as one oneDNN kernel (:func:`expand_gelu`) unless the block's ``cpu_fused_kernels`` is off;
- in inference on CPU, a dilated depth-wise convolution of a 9x9 kernel (the last stage below
  output stride 32) runs undilated over the phase grids of its input (:func:`depthwise`);
- after ``fuse()`` the weights are inference constants, so CPU inference reorders each one into
  oneDNN's blocked layout once per input shape instead of on every call (:func:`onednn_conv`),
  the stem's and the downsamplings' included;
- a LayerNorm whose affine ``fuse()`` folded away runs with an identity affine in CPU inference:
  aten's kernel has no vectorised path without one, and ``x * 1 + 0`` is exact;
- after ``fuse()``, the positional encoding's projection of its cached grid is kept too
  (:func:`constant_conv2d`);
- XCA in inference multiplies its small ``(C, C)`` matrices first and the token map fewer
  times (:func:`cross_covariance_attention`).
"""

from __future__ import annotations

import weakref
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

_ONEDNN_FUSION = torch.backends.mkldnn.is_available() and hasattr(
    torch.ops.mkldnn, "_convolution_pointwise"
)
# set by fuse() on modules whose weights became inference constants
FROZEN = "frozen_weights"
# frozen module -> ((weight state, weight shape, input shape), weight in oneDNN's layout); not
# module state: copies and pickles of a model carry none
_REORDERED: weakref.WeakKeyDictionary[nn.Module, Tuple[Tuple[Any, ...], torch.Tensor]] = (
    weakref.WeakKeyDictionary()
)

# frozen module -> {input key: (weights key, output)}: its convolutions of constant inputs
_CONSTANT_OUTPUTS: weakref.WeakKeyDictionary[nn.Module, Dict[Tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)
# (channels, dtype) -> (ones, zeros): the identity affine of a folded LayerNorm on CPU
_IDENTITY_AFFINE: Dict[Tuple[int, torch.dtype], Tuple[torch.Tensor, torch.Tensor]] = {}


def cpu_inference(x: torch.Tensor) -> bool:
    """Whether ``x`` is in CPU inference: no autograd, not traced, scripted or exported."""
    return (
        x.device.type == "cpu"
        and not torch.is_grad_enabled()
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.onnx.is_in_onnx_export()
    )


def _onednn_inference(x: torch.Tensor) -> bool:
    """Whether the fused oneDNN kernels may run on ``x`` (CPU float32 inference, not traced)."""
    return _ONEDNN_FUSION and x.dtype == torch.float32 and cpu_inference(x)


def channel_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """``norm`` over the channels of an NCHW map (views when ``x`` is channels-last).

    Args:
        norm (nn.LayerNorm): A LayerNorm over ``C`` channels.
        x (torch.Tensor): ``(B, C, H, W)``.

    Returns:
        torch.Tensor: ``(B, C, H, W)``, channels-last when ``x`` was.
    """
    weight, bias = norm.weight, norm.bias
    if weight is None and bias is None and cpu_inference(x):
        key = (x.shape[1], x.dtype)
        if key not in _IDENTITY_AFFINE:
            _IDENTITY_AFFINE[key] = (x.new_ones(x.shape[1]), x.new_zeros(x.shape[1]))
        weight, bias = _IDENTITY_AFFINE[key]
    x = F.layer_norm(x.permute(0, 2, 3, 1), norm.normalized_shape, weight, bias, norm.eps)
    return x.permute(0, 3, 1, 2)


def pointwise(linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``linear`` applied to every pixel of an NCHW map, as a 1x1 convolution.

    The weight is a view of ``linear.weight``: gradients reach the ``nn.Linear`` parameters,
    and checkpoints keep the published ``(out, in)`` shapes.

    Args:
        linear (nn.Linear): The per-pixel linear (``in`` -> ``out`` channels).
        x (torch.Tensor): ``(B, in, H, W)``.

    Returns:
        torch.Tensor: ``(B, out, H, W)``.
    """
    if getattr(linear, FROZEN, False) and _onednn_inference(x):
        return onednn_conv(linear, linear.weight[:, :, None, None], linear.bias, x)
    return F.conv2d(x, linear.weight[:, :, None, None], linear.bias)


def conv2d(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv``'s convolution of ``x``, by :func:`onednn_conv` when its weights are frozen
    (``fuse()``)."""
    frozen = getattr(conv, FROZEN, False) and isinstance(conv.padding, tuple)
    if frozen and conv.padding_mode == "zeros" and _onednn_inference(x):
        return onednn_conv(
            conv,
            conv.weight,
            conv.bias,
            x,
            conv.padding,
            conv.dilation,
            conv.groups,
            stride=conv.stride,
        )
    return conv._conv_forward(x, conv.weight, conv.bias)


def _state(tensor: torch.Tensor) -> Tuple[int, int]:
    """``tensor``'s storage and version: what a cache of a value computed from it follows.

    Inference tensors (made under ``torch.inference_mode``) keep no version; they cannot be
    written to outside that mode.
    """
    return tensor.data_ptr(), 0 if tensor.is_inference() else tensor._version


def constant_conv2d(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """:func:`conv2d` of an input that never changes (a cached grid): once ``conv``'s weights
    are frozen (``fuse()``), CPU inference computes it once per input and keeps it.

    The kept output follows the weights' storage and version, as :func:`onednn_conv` does.

    Args:
        conv (nn.Conv2d): The convolution.
        x (torch.Tensor): ``(B, in, H, W)``, never written to while it is used here.

    Returns:
        torch.Tensor: ``(B, out, H', W')``; do not write to it.
    """
    if not (getattr(conv, FROZEN, False) and cpu_inference(x)):
        return conv2d(conv, x)
    weights = tuple(_state(p) for p in (conv.weight, conv.bias) if p is not None)
    outputs = _CONSTANT_OUTPUTS.setdefault(conv, {})
    key = (x.data_ptr(), tuple(x.shape), x.dtype)
    kept = outputs.get(key)
    if kept is None or kept[0] != weights:
        kept = outputs[key] = (weights, conv2d(conv, x))
    return kept[1]


def onednn_conv(
    module: nn.Module,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    x: torch.Tensor,
    padding: Tuple[int, int] = (0, 0),
    dilation: Tuple[int, int] = (1, 1),
    groups: int = 1,
    attr: str = "none",
    stride: Tuple[int, int] = (1, 1),
) -> torch.Tensor:
    """oneDNN's convolution of ``x`` with the post-op ``attr`` (``'none'``, ``'gelu'``).

    A frozen module's weight (``fuse()``) is reordered into oneDNN's layout once per input
    shape and kept, instead of on every call (docs/benchmarks.md); the cache follows the weight's
    storage and version, so ``load_state_dict`` or an in-place update under ``no_grad`` is seen
    (an update through ``.data`` is not: it bumps no version).

    Args:
        module (nn.Module): The layer the weight belongs to (the cache's key).
        weight (torch.Tensor): ``(out, in / groups, kh, kw)``.
        bias (torch.Tensor, optional): ``(out,)``.
        x (torch.Tensor): ``(B, in, H, W)``, CPU float32.
        padding (tuple[int, int]): Defaults to no padding.
        dilation (tuple[int, int]): Defaults to 1.
        groups (int): Defaults to 1.
        attr (str): oneDNN post-op; ``'gelu'`` is the exact (erf) GELU. Defaults to ``'none'``.
        stride (tuple[int, int]): Defaults to 1.

    Returns:
        torch.Tensor: ``(B, out, H, W)``, channels-last when ``x`` was.
    """
    conv_args: List[Any] = [list(padding), list(stride), list(dilation), groups]
    if getattr(module, FROZEN, False):
        key = (_state(weight), tuple(weight.shape), tuple(x.shape))
        cached = _REORDERED.get(module)
        if cached is None or cached[0] != key:
            reorder = torch.ops.mkldnn._reorder_convolution_weight
            cached = _REORDERED[module] = (key, reorder(weight, *conv_args, list(x.shape)))
        weight = cached[1]
    # NOTE: attr "gelu" with algorithm "none" is oneDNN's eltwise_gelu_erf post-op
    return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, *conv_args, attr, [], "none")


def expand_gelu(linear: nn.Linear, x: torch.Tensor, fused: bool = True) -> torch.Tensor:
    """``GELU(pointwise(linear, x))`` (exact erf GELU); one oneDNN kernel where it may run.

    Args:
        linear (nn.Linear): The expansion linear.
        x (torch.Tensor): ``(B, in, H, W)``.
        fused (bool): Allow the fused kernel (CPU float32 inference only: it has no
            autograd). Defaults to True.

    Returns:
        torch.Tensor: ``(B, out, H, W)``.
    """
    if fused and _onednn_inference(x):
        # F.gelu without writing and re-reading the 4x wider map
        return onednn_conv(linear, linear.weight[:, :, None, None], linear.bias, x, attr="gelu")
    return F.gelu(pointwise(linear, x))


# oneDNN's dilated depth-wise kernels are slow from 9x9 up (docs/benchmarks.md)
_PHASE_SPLIT_MIN_KERNEL = 9


def _phase_splittable(conv: nn.Conv2d) -> bool:
    """A dilated, depth-wise, stride-1, square, "same"-padded convolution of a large kernel."""
    d, k = conv.dilation[0], conv.kernel_size[0]
    return (
        d > 1
        and k >= _PHASE_SPLIT_MIN_KERNEL
        and conv.groups == conv.in_channels
        and conv.stride == (1, 1)
        and conv.dilation == (d, d)
        and conv.kernel_size == (k, k)
        and conv.padding == (d * (k // 2),) * 2
    )


def depthwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a depth-wise convolution; in CPU inference, a dilated one of a large
    kernel runs undilated over the ``d x d`` phase grids of ``x``.

    Output pixel ``(i + d*m, j + d*n)`` of a dilation-``d`` convolution only reads input pixels
    of the same phase ``(i mod d, j mod d)``: it is the undilated convolution of the phase grid
    ``x[..., i::d, j::d]`` (zero padding at the grid's edges is the image's zero padding). The
    ``d*d`` grids run as one batch, so the result is the same up to float rounding, with two
    copies of the map instead of oneDNN's slow dilated kernel. Traced and exported graphs keep
    the dilated convolution (ONNX Runtime runs it at full speed), and so does training: its
    gradients would be summed in another order (docs/benchmarks.md).

    Args:
        conv (nn.Conv2d): A depth-wise, stride-1, square-kernel convolution with "same"
            padding (``dilation * (kernel // 2)``).
        x (torch.Tensor): ``(B, C, H, W)``, channels-last for the copies to be cheap.

    Returns:
        torch.Tensor: ``conv(x)``, channels-last.
    """
    if not (_phase_splittable(conv) and cpu_inference(x)):
        return conv2d(conv, x)
    d, k = conv.dilation[0], conv.kernel_size[0]
    b, c, h, w = x.shape
    hp, wp = -(-h // d), -(-w // d)  # phase grid size (the last rows/columns zero-padded)
    tokens = F.pad(x, (0, wp * d - w, 0, hp * d - h)).permute(0, 2, 3, 1)  # (B, H, W, C)
    grids = tokens.reshape(b, hp, d, wp, d, c).permute(0, 2, 4, 1, 3, 5).reshape(-1, hp, wp, c)
    out = F.conv2d(grids.permute(0, 3, 1, 2), conv.weight, conv.bias, padding=k // 2, groups=c)
    out = out.permute(0, 2, 3, 1).reshape(b, d, d, hp, wp, c).permute(0, 3, 1, 4, 2, 5)
    out = out.reshape(b, hp * d, wp * d, c)[:, :h, :w].permute(0, 3, 1, 2)
    return out.contiguous(memory_format=torch.channels_last)


def freeze_weights(block: nn.Module) -> None:
    """Mark ``block``'s linears and convolutions as holding inference constants."""
    for module in block.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            setattr(module, FROZEN, True)


def cross_covariance_attention(
    qkv: nn.Linear, proj: nn.Linear, temperature: torch.Tensor, num_heads: int, x: torch.Tensor
) -> torch.Tensor:
    """XCA's output for the ``(B, C, H, W)`` map ``x``, in inference (no dropout).

    Same result as the authors' formulation, with two products reassociated so the ``H*W``
    tokens are read fewer times:

    - per head, ``normalize(q) @ normalize(k).T`` is ``q @ k.T`` divided by the norms of its
      rows and columns (a ``(d, d)`` scaling instead of two normalised copies of q and k);
    - ``proj(blockdiag(attn) @ v)`` is ``v`` times the ``(C, C)`` matrix
      ``W_proj @ blockdiag(attn)``: one product over the tokens instead of ``attn @ v``, its
      layout copy and ``proj``.

    Args:
        qkv (nn.Linear): ``C -> 3C``, outputs ordered ``(q|k|v, head, channel)``.
        proj (nn.Linear): ``C -> C``.
        temperature (torch.Tensor): ``(heads, 1, 1)``.
        num_heads (int): Heads; each has ``d = C / heads`` channels.
        x (torch.Tensor): ``(B, C, H, W)``, channels-last for the token views to be free.

    Returns:
        torch.Tensor: ``(B, C, H, W)``, channels-last.
    """
    b, c, h, w = x.shape
    d, n = c // num_heads, h * w
    tokens = pointwise(qkv, x).permute(0, 2, 3, 1).reshape(b, n, 3, num_heads, d)
    qk = tokens[:, :, :2].permute(0, 2, 3, 4, 1)  # (B, q|k, heads, d, N)
    # the norms over the tokens; linalg.vector_norm is several times slower on this layout
    norms = tokens[:, :, :2].square().sum(dim=1).sqrt_().clamp_min_(1e-12)  # F.normalize's eps
    scale = temperature / (norms[:, 0, :, :, None] * norms[:, 1, :, None, :])
    attn = torch.matmul(qk[:, 0], qk[:, 1].transpose(-2, -1))
    attn = (attn * scale).softmax(dim=-1)  # (B, heads, d, d)
    # (W_proj @ blockdiag(attn)).T, head by head: attn_h.T @ W_proj[:, head h].T
    w_proj = proj.weight.view(c, num_heads, d).permute(1, 2, 0)  # (heads, d, C)
    mix_t = torch.matmul(attn.transpose(-2, -1), w_proj).reshape(b, c, c)
    v = tokens[:, :, 2].reshape(b, n, c)
    out = torch.baddbmm(proj.bias.view(1, 1, c), v, mix_t)
    return out.view(b, h, w, c).permute(0, 3, 1, 2)
