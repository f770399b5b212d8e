"""EdgeNeXt backbone for dense prediction.

Paper: "EdgeNeXt: Efficiently Amalgamated CNN-Transformer Architecture for Mobile Vision
Applications", Maaz et al., 2022 (https://arxiv.org/abs/2206.10589).
Original code: https://github.com/mmaaz60/EdgeNeXt (MIT license).

Module names are the authors', so official checkpoints load by unwrapping alone (other layouts:
:mod:`.edgenext_checkpoint`). Added for dense heads: multi-scale outputs, output stride 16 or 8
(dilated depth-wise convs, same weights), output norms, ``frozen_stages``, strict ``init_cfg``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import MMLogger
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import nn

from edgenext_dense.registry import MODELS

from .edgenext_arch import (
    ARCH_SETTINGS,
    GLOBAL_BLOCKS,
    KERNEL_SIZES,
    SDTA_POS_EMBED,
    SDTA_SCALES,
    resolve_arch,
)
from .edgenext_blocks import (
    LN_EPS,
    ConvEncoder,
    LayerNorm2d,
    PatchConv2d,
    SDTAEncoder,
    _downsample_conv,
)
from .edgenext_checkpoint import load_pretrained
from .edgenext_inference import call_unobserved, global_forward_hooks, runs_inference_kernels
from .edgenext_kernels import freeze_weights


@MODELS.register_module()
class EdgeNeXt(BaseModule):
    """EdgeNeXt as a multi-scale backbone for detection and segmentation.

    Args:
        arch (str | dict): ``'xx_small'``, ``'x_small'``, ``'small'`` or ``'base'`` (or another
            spelling, see :func:`resolve_arch`), or a dict of ``channels``, ``depths`` and
            ``num_heads`` (4 values each) for custom widths. Defaults to ``'small'``.
        in_channels (int): Input channels. Defaults to 3.
        out_indices (Sequence[int]): Stages returned, any of 0..3 (strides 4, 8, 16, 32).
            Defaults to ``(0, 1, 2, 3)``.
        output_stride (int): 32, 16 or 8; below 32 the last downsamplings keep resolution and
            the later depth-wise convolutions are dilated. Defaults to 32.
        out_norms (bool): Add a (not pretrained) LayerNorm on each returned map. Defaults to
            False, the raw stage outputs the paper's heads consumed.
        frozen_stages (int): Leading stages (with their downsamplings) frozen and kept in eval
            mode; 0 or -1 freezes nothing. Defaults to -1.
        drop_path_rate (float): Stochastic depth rate, increased linearly over the blocks.
            Defaults to 0.
        layer_scale_init_value (float): Initial layer scale. Defaults to 1e-6.
        cpu_fused_kernels (bool): In CPU float32 inference, run each encoder as one call on
            oneDNN kernels, and the layers and blocks no forward hook observes without
            ``nn.Module``'s call (``edgenext_inference``; equal up to float rounding). Defaults
            to True.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH)`` loads any public
            EdgeNeXt checkpoint strictly; None is the paper's initialisation. Defaults to None.
    """

    fused = False

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
        cpu_fused_kernels: bool = True,
        init_cfg: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        settings = self._parse_arch(arch)
        self.arch = arch if isinstance(arch, dict) else resolve_arch(arch)
        self.channels: Tuple[int, ...] = tuple(settings["channels"])
        self.depths: Tuple[int, ...] = tuple(settings["depths"])
        self.num_heads: Tuple[int, ...] = tuple(settings["num_heads"])
        indices = (out_indices,) if isinstance(out_indices, int) else tuple(out_indices)
        indices = tuple(sorted(i + 4 if i < 0 else i for i in indices))
        if not indices or len(set(indices)) < len(indices) or not set(indices) <= {0, 1, 2, 3}:
            raise ValueError(f"out_indices must be distinct values in 0..3, got {out_indices!r}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride!r}")
        if not -1 <= frozen_stages <= 4:
            raise ValueError(f"frozen_stages must be in -1..4, got {frozen_stages!r}")
        self.out_indices = indices
        self.output_stride = output_stride
        self.frozen_stages = frozen_stages
        self.cpu_fused_kernels = bool(cpu_fused_kernels)
        # dilation of each stage's depth-wise convs: 1 while the stride still grows
        self.dilations = tuple(max(1, s // output_stride) for s in (4, 8, 16, 32))
        self.strides = tuple(min(s, output_stride) for s in (4, 8, 16, 32))

        c = self.channels
        stem = nn.Sequential(
            PatchConv2d(in_channels, c[0], 4, stride=4), LayerNorm2d(c[0], eps=LN_EPS)
        )
        self.downsample_layers = nn.ModuleList([stem])
        for i in range(1, 4):
            # a skipped downsampling (0: a real one) runs at the previous stage's dilation
            dilation = self.dilations[i - 1] if self.strides[i] == self.strides[i - 1] else 0
            self.downsample_layers.append(
                nn.Sequential(
                    LayerNorm2d(c[i - 1], eps=LN_EPS), _downsample_conv(c[i - 1], c[i], dilation)
                )
            )
        dpr = iter(torch.linspace(0, drop_path_rate, sum(self.depths)).tolist())
        self.stages = nn.ModuleList(
            nn.Sequential(
                *(self._make_block(i, j, next(dpr), layer_scale_init_value) for j in range(d))
            )
            for i, d in enumerate(self.depths)
        )
        self.out_norms = (
            nn.ModuleList(LayerNorm2d(c[i], eps=LN_EPS) for i in self.out_indices)
            if out_norms
            else None
        )
        self._freeze_stages()

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

    def _make_block(self, stage: int, index: int, drop_path: float, ls_init: float) -> nn.Module:
        common = dict(
            dilation=self.dilations[stage],
            drop_path=drop_path,
            layer_scale_init_value=ls_init,
            cpu_fused_kernels=self.cpu_fused_kernels,
        )
        if index >= self.depths[stage] - GLOBAL_BLOCKS[stage]:
            return SDTAEncoder(
                self.channels[stage],
                num_heads=self.num_heads[stage],
                scales=SDTA_SCALES[stage],
                use_pos_emb=SDTA_POS_EMBED[stage],
                **common,
            )
        return ConvEncoder(self.channels[stage], kernel_size=KERNEL_SIZES[stage], **common)

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

    @property
    def non_pretrained_prefixes(self) -> Tuple[str, ...]:
        """State-dict prefixes a classification checkpoint does not hold (new modules)."""
        return ("out_norms.",) if self.out_norms is not None else ()

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the stage outputs selected by ``out_indices`` (NCHW, floor(H / stride))."""
        if x.dim() != 4 or x.shape[-1] < 32 or x.shape[-2] < 32:
            raise ValueError(
                f"EdgeNeXt expects an (N, C, H, W) tensor with H, W >= 32, got {tuple(x.shape)}"
            )
        # NOTE: channels-last activations: depth-wise and 1x1 convs run natively on them, and
        # the NHWC views the LayerNorms take need no copies (see edgenext_blocks).
        x = x.contiguous(memory_format=torch.channels_last)
        # in CPU float32 inference, layers and blocks nothing observes skip nn.Module's calls
        fast = runs_inference_kernels(self, x) and not global_forward_hooks()
        outs = []
        for i in range(self.out_indices[-1] + 1):
            if fast:
                x = call_unobserved(self.downsample_layers[i], x)
                x = call_unobserved(self.stages[i], x)
            else:
                x = self.stages[i](self.downsample_layers[i](x))
            if i in self.out_indices:
                outs.append(x if self.out_norms is None else self.out_norms[len(outs)](x))
        return tuple(outs)

    def fuse(self) -> EdgeNeXt:
        """Fold LayerNorm affines and layer scales into the linears, for inference only.

        Outputs stay the same up to float rounding, but the parameters no longer match the
        checkpoint layout, so a fused model refuses to train. Never called implicitly. All
        weights become inference constants, which CPU inference keeps in oneDNN's layout
        (``edgenext_kernels``).

        Returns:
            EdgeNeXt: ``self``, fused and in eval mode.
        """
        self.eval()
        for stage in self.stages:
            for block in stage:
                block.fuse()
        freeze_weights(self.downsample_layers)
        self.fused = True
        return self

    def _freeze_stages(self) -> None:
        for i in range(max(self.frozen_stages, 0)):
            for module in (self.downsample_layers[i], self.stages[i]):
                module.eval()
                module.requires_grad_(False)

    def train(self, mode: bool = True) -> EdgeNeXt:
        """Set train/eval mode, keeping frozen stages in eval mode; returns ``self``."""
        if mode and self.fused:
            raise RuntimeError("this EdgeNeXt was fused for inference (fuse()); it cannot train")
        super().train(mode)
        self._freeze_stages()
        return self

    def init_weights(self) -> None:
        """Load ``init_cfg``'s pretrained checkpoint strictly, or initialise as the paper."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get("type") == "Pretrained":
            MMLogger.get_current_instance().info(load_pretrained(self, cfg["checkpoint"]).summary())
        elif cfg is not None:
            return super().init_weights()
        else:
            self.apply(_init_paper_weights)
        self._is_init = True


def _init_paper_weights(module: nn.Module) -> None:
    """The official initialisation: truncated normal (std 0.02) for convs and linears."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
