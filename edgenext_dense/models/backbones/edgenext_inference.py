"""EdgeNeXt's encoders in CPU float32 inference, a block per call, on token views.

In inference (no autograd, eval mode, float32 on CPU, outside autocast, not traced, compiled or
exported), a block whose ``cpu_fused_kernels`` is on runs here instead of through its modules:
the same parameters and the same outputs up to float rounding, with one check per block instead
of one per operation. The channels-last map is read as ``(B*H*W, C)`` tokens (views, no copies);
the point-wise linears are oneDNN inner products (:func:`onednn_linear`: a lower fixed cost per
call than a 1x1 convolution's), the expansion with its GELU as one kernel; the residual sums are
written into the block's fresh outputs, never into its input. ``EdgeNeXt.forward`` also runs
its layers and blocks without ``nn.Module``'s call where no forward hook observes them
(:func:`call_unobserved`). The modules' own forward stays the computation for training, tracing
and export (docs/benchmarks.md has the measurements).
"""

from __future__ import annotations

import torch
from torch import nn

from .edgenext_kernels import (
    attend,
    inference_conv2d,
    inference_depthwise,
    onednn_inference,
    onednn_linear,
    token_norm,
)


def runs_inference_kernels(block: nn.Module, x: torch.Tensor) -> bool:
    """Whether ``block`` (with a ``cpu_fused_kernels`` flag) runs ``x`` through this module."""
    return block.cpu_fused_kernels and not block.training and onednn_inference(x)


def global_forward_hooks() -> bool:
    """Whether forward hooks are registered for every module (``register_module_forward_hook``):
    then every module must be called as one."""
    hooks = torch.nn.modules.module
    return bool(hooks._global_forward_hooks or hooks._global_forward_pre_hooks)


def call_unobserved(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` in CPU float32 inference without global forward hooks (the caller checked
    both), without ``nn.Module``'s call machinery where nothing observes the call.

    A module with forward hooks of its own or in training mode is called as usual; an
    ``nn.Sequential`` runs its children this way; a layer with an ``inference`` method (the
    blocks, the stem's and the downsamplings' layers) runs that, unchecked.

    Args:
        module (nn.Module): A layer, block or ``nn.Sequential`` of them.
        x (torch.Tensor): Its input, CPU float32.

    Returns:
        torch.Tensor: ``module(x)``.
    """
    if module.training or module._forward_hooks or module._forward_pre_hooks:
        return module(x)
    if isinstance(module, nn.Sequential):
        for child in module:
            x = call_unobserved(child, x)
        return x
    inference = getattr(type(module), "inference", None)
    return module(x) if inference is None else inference(module, x)


def mlp(block: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The scaled inverted bottleneck (``norm``, ``pwconv1``, GELU, ``pwconv2``, ``gamma``) of
    ``(N, C)`` tokens; returns fresh ``(N, C)`` tokens."""
    hidden = onednn_linear(block.pwconv1, token_norm(block.norm, tokens), "gelu")
    out = onednn_linear(block.pwconv2, hidden)
    return out if block.gamma is None else out.mul_(block.gamma)


def conv_encoder(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A :class:`~.edgenext_blocks.ConvEncoder`'s output for the ``(B, C, H, W)`` map ``x``.

    Args:
        block (nn.Module): The encoder (``dwconv``, ``norm``, ``pwconv1``, ``pwconv2``,
            ``gamma``).
        x (torch.Tensor): ``(B, C, H, W)``, CPU float32, channels-last for free token views.

    Returns:
        torch.Tensor: ``(B, C, H, W)``, channels-last.
    """
    y = inference_depthwise(block.dwconv, x)
    b, c, h, w = y.shape
    out = mlp(block, y.permute(0, 2, 3, 1).reshape(-1, c))
    return out.view(b, h, w, c).permute(0, 3, 1, 2).add_(x)


def sdta_encoder(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An :class:`~.edgenext_blocks.SDTAEncoder`'s output for the ``(B, C, H, W)`` map ``x``.

    Args:
        block (nn.Module): The encoder.
        x (torch.Tensor): ``(B, C, H, W)``, CPU float32, channels-last for free token views.

    Returns:
        torch.Tensor: ``(B, C, H, W)``, channels-last.
    """
    y = block.split_convs(x, inference_conv2d)
    b, c, h, w = y.shape
    if block.pos_embd is not None:
        y.add_(block.pos_embd(b, h, w))
    tokens = y.permute(0, 2, 3, 1).reshape(b, h * w, c)
    xca = block.xca
    qkv = onednn_linear(xca.qkv, token_norm(block.norm_xca, tokens).view(-1, c))
    attn = attend(qkv.view(b, h * w, 3 * c), xca.proj, xca.temperature, xca.num_heads)
    if block.gamma_xca is not None:
        attn.mul_(block.gamma_xca)
    tokens = attn.add_(tokens).view(-1, c)
    return mlp(block, tokens).view(b, h, w, c).permute(0, 3, 1, 2).add_(x)
