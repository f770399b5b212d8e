"""How EdgeNeXt's blocks compute on CPU: the same parameters and outputs as the authors'
formulation (up to float rounding), in fewer, faster kernels.

- activations stay NCHW with channels-last memory, so the channel LayerNorms are views of an
  NHWC tensor and the depth-wise convolutions run natively;
- outside CPU float32 inference (with autograd, say), the point-wise linears (``pwconv1``/
  ``pwconv2``, XCA's ``qkv``/``proj``) run as 1x1 convolutions on those maps
  (:func:`pointwise`): faster than the GEMM behind ``nn.Linear`` (docs/benchmarks.md), and an
  exported graph has no NCHW <-> NHWC transposes;
- in CPU float32 inference (:func:`onednn_inference`), the encoders run a block per call
  (:mod:`.edgenext_inference`), the linears as oneDNN inner products on the token views
  (:func:`onednn_linear`), the expansion with its GELU as one kernel;
- in inference on CPU, a dilated depth-wise convolution of a 9x9 kernel (the last stage below
  output stride 32) runs undilated over the phase grids of its input (:func:`depthwise`);
- after ``fuse()`` the weights are inference constants, so CPU inference reorders each one into
  oneDNN's blocked layout once per input shape instead of on every call (:func:`onednn_conv`,
  :func:`onednn_linear`), the stem's and the downsamplings' included;
- a LayerNorm whose affine ``fuse()`` folded away runs with an identity affine in CPU inference
  (:func:`token_norm`);
- after ``fuse()``, the positional encoding's projection of its cached grid is kept too
  (:func:`constant_conv2d`);
- XCA in inference multiplies its small ``(C, C)`` matrices first and the token map fewer
  times (:func:`attend`).
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

_ONEDNN_OPS = (
    "_convolution_pointwise",
    "_reorder_convolution_weight",
    "_linear_pointwise",
    "_reorder_linear_weight",
)
_ONEDNN_FUSION = torch.backends.mkldnn.is_available() and all(
    hasattr(torch.ops.mkldnn, op) for op in _ONEDNN_OPS
)
# the overloads themselves: a call skips the packet's overload resolution
_CONV, _REORDER_CONV, _LINEAR, _REORDER_LINEAR = (
    getattr(torch.ops.mkldnn, op).default if _ONEDNN_FUSION else None for op in _ONEDNN_OPS
)
# set by fuse() on modules whose weights became inference constants
FROZEN = "frozen_weights"
# frozen module -> ((weight state, weight shape, input shape or token count), weight in oneDNN's
# layout); not module state: copies and pickles of a model carry none
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
    """Whether ``x`` is in CPU inference: no autograd, not traced, compiled or exported."""
    return (
        x.is_cpu
        and not torch.is_grad_enabled()
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and not torch.onnx.is_in_onnx_export()
    )


def onednn_inference(x: torch.Tensor) -> bool:
    """Whether the oneDNN kernels may run on ``x``: CPU float32 inference (:func:`cpu_inference`)
    outside CPU autocast, whose lower precision they would ignore."""
    return (
        _ONEDNN_FUSION
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and cpu_inference(x)
    )


def channel_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """``norm`` over the channels of an NCHW map (views when ``x`` is channels-last).

    Args:
        norm (nn.LayerNorm): A LayerNorm over ``C`` channels.
        x (torch.Tensor): ``(B, C, H, W)``.

    Returns:
        torch.Tensor: ``(B, C, H, W)``, channels-last when ``x`` was.
    """
    tokens = x.permute(0, 2, 3, 1)
    if cpu_inference(x):
        return token_norm(norm, tokens).permute(0, 3, 1, 2)
    x = F.layer_norm(tokens, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
    return x.permute(0, 3, 1, 2)


def token_norm(norm: nn.LayerNorm, tokens: torch.Tensor) -> torch.Tensor:
    """``norm`` over the last axis of ``tokens``, in CPU inference: with an identity affine
    when ``fuse()`` folded it away (aten's kernel has no vectorised path without one, and
    ``x * 1 + 0`` is exact).

    Args:
        norm (nn.LayerNorm): A LayerNorm over ``C`` channels.
        tokens (torch.Tensor): ``(..., C)``.

    Returns:
        torch.Tensor: ``(..., C)``.
    """
    weight, bias = norm.weight, norm.bias
    if weight is None and bias is None:
        key = (tokens.shape[-1], tokens.dtype)
        if key not in _IDENTITY_AFFINE:
            _IDENTITY_AFFINE[key] = (tokens.new_ones(key[0]), tokens.new_zeros(key[0]))
        weight, bias = _IDENTITY_AFFINE[key]
    return torch.layer_norm(tokens, norm.normalized_shape, weight, bias, norm.eps)


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
    return F.conv2d(x, linear.weight[:, :, None, None], linear.bias)


def onednn_linear(linear: nn.Linear, tokens: torch.Tensor, attr: str = "none") -> torch.Tensor:
    """oneDNN's inner product of the ``(N, in)`` ``tokens`` with ``linear``, then ``attr``.

    It has a third of the fixed cost of a 1x1 convolution (docs/benchmarks.md). A frozen
    linear's weight (``fuse()``) is reordered into oneDNN's layout once per number of tokens and
    kept, like :func:`onednn_conv`'s.

    Args:
        linear (nn.Linear): ``in`` -> ``out`` channels.
        tokens (torch.Tensor): ``(N, in)``, CPU float32.
        attr (str): Post-op, ``'none'`` or ``'gelu'`` (the exact, erf GELU). Defaults to
            ``'none'``.

    Returns:
        torch.Tensor: ``(N, out)``, contiguous.
    """
    weight = linear.weight
    if getattr(linear, FROZEN, False):
        n = tokens.shape[0]
        weight = _kept_layout(linear, weight, n, lambda: _REORDER_LINEAR(weight, n))
    # NOTE: algorithm "none" with attr "gelu" is oneDNN's eltwise_gelu_erf post-op
    return _LINEAR(tokens, weight, linear.bias, attr, [], "none" if attr == "gelu" else None)


def _kept_layout(
    module: nn.Module, weight: torch.Tensor, shape: Any, reorder: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """``reorder()``: ``weight`` in oneDNN's layout for inputs of ``shape``, kept for
    ``module`` while the weight's storage, version and shape stay the same."""
    key = (_state(weight), weight.shape, shape)
    cached = _REORDERED.get(module)
    if cached is None or cached[0] != key:
        cached = _REORDERED[module] = (key, reorder())
    return cached[1]


def conv2d(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv``'s convolution of ``x``; in oneDNN inference (:func:`onednn_inference`), by
    :func:`inference_conv2d`."""
    if onednn_inference(x):
        return inference_conv2d(conv, x)
    return conv._conv_forward(x, conv.weight, conv.bias)


def inference_conv2d(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv``'s convolution of ``x`` in CPU float32 inference: by :func:`onednn_conv` when
    its weights are frozen (``fuse()``)."""
    frozen = getattr(conv, FROZEN, False) and isinstance(conv.padding, tuple)
    if frozen and conv.padding_mode == "zeros":
        return onednn_conv(conv, x)
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


def onednn_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """oneDNN's convolution of ``x`` by the frozen (``fuse()``) ``conv``, zero-padded.

    The weight is reordered into oneDNN's layout once per input shape and kept, instead of on
    every call (docs/benchmarks.md); the cache follows the weight's storage and version, so
    ``load_state_dict`` or an in-place update under ``no_grad`` is seen (an update through
    ``.data`` is not: it bumps no version).

    Args:
        conv (nn.Conv2d): A convolution with a tuple ``padding``.
        x (torch.Tensor): ``(B, in, H, W)``, CPU float32.

    Returns:
        torch.Tensor: ``(B, out, H', W')``, channels-last when ``x`` was.
    """
    conv_args: List[Any] = [list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups]
    shape, weight = x.shape, conv.weight
    weight = _kept_layout(conv, weight, shape, lambda: _REORDER_CONV(weight, *conv_args, shape))
    return _CONV(x, weight, conv.bias, *conv_args, "none", [], None)


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
    return _phase_split_conv(conv, x)


def inference_depthwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """:func:`depthwise` in CPU float32 inference (:func:`onednn_inference`), not checked."""
    if _phase_splittable(conv):
        return _phase_split_conv(conv, x)
    return inference_conv2d(conv, x)


def _phase_split_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a :func:`_phase_splittable` ``conv``, over the phase grids of ``x``."""
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
    """XCA's output for the ``(B, C, H, W)`` map ``x``, in inference (no dropout): ``qkv`` as a
    1x1 convolution, then :func:`attend`.

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
    tokens = pointwise(qkv, x).permute(0, 2, 3, 1).reshape(b, h * w, 3 * c)
    return attend(tokens, proj, temperature, num_heads).view(b, h, w, c).permute(0, 3, 1, 2)


def attend(
    qkv_tokens: torch.Tensor, proj: nn.Linear, temperature: torch.Tensor, num_heads: int
) -> torch.Tensor:
    """XCA after its ``qkv`` projection, in inference (no dropout).

    Same result as the authors' formulation, with two products reassociated so the ``N``
    tokens are read fewer times:

    - per head, ``normalize(q) @ normalize(k).T`` is ``q @ k.T`` divided by the norms of its
      rows and columns (a ``(d, d)`` scaling instead of two normalised copies of q and k);
    - ``proj(blockdiag(attn) @ v)`` is ``v`` times the ``(C, C)`` matrix
      ``W_proj @ blockdiag(attn)``: one product over the tokens instead of ``attn @ v``, its
      layout copy and ``proj``.

    Args:
        qkv_tokens (torch.Tensor): ``(B, N, 3C)``, channels ordered ``(q|k|v, head, channel)``.
        proj (nn.Linear): ``C -> C``.
        temperature (torch.Tensor): ``(heads, 1, 1)``.
        num_heads (int): Heads; each has ``d = C / heads`` channels.

    Returns:
        torch.Tensor: ``(B, N, C)``, contiguous.
    """
    b, n, c3 = qkv_tokens.shape
    c = c3 // 3
    d = c // num_heads
    tokens = qkv_tokens.reshape(b, n, 3, num_heads, d)
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
    return torch.baddbmm(proj.bias.view(1, 1, c), v, mix_t)
