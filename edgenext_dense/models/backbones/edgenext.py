"""EdgeNeXt backbone for dense prediction.

Paper: "EdgeNeXt: Efficiently Amalgamated CNN-Transformer Architecture for Mobile Vision
Applications", Maaz et al., 2022 (https://arxiv.org/abs/2206.10589).
Original code: https://github.com/mmaaz60/EdgeNeXt (MIT license).

Module names follow the authors' release (``downsample_layers``, ``stages.i.j.dwconv``,
``pwconv1``, ``xca``, ...), so official checkpoints load by unwrapping alone; the timm and
mmpretrain layouts are renamed by the pure functions in :mod:`.edgenext_checkpoint`.

Beyond the classification network this adds what dense heads need: multi-scale outputs
(``out_indices``), an ``output_stride`` of 16 or 8 (the last downsampling keeps resolution and
the following depth-wise convolutions are dilated, the checkpoints load unchanged), optional
per-output LayerNorms, ``frozen_stages`` and strict pretrained loading through ``init_cfg``.
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
    SDTAEncoder,
    _downsample_conv,
)
from .edgenext_checkpoint import load_pretrained


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
        cpu_fused_kernels (bool): In inference on CPU (float32, no autograd, not traced), run
            each bottleneck's expansion linear and GELU as one oneDNN kernel; the outputs
            equal the plain computation up to float rounding. False always computes them
            apart. Training, CUDA and export never use it. Defaults to True.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=PATH)`` loads any
            public EdgeNeXt checkpoint layout strictly (see :mod:`.edgenext_checkpoint`);
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
        cpu_fused_kernels: bool = True,
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
        self.cpu_fused_kernels = bool(cpu_fused_kernels)
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
                cpu_fused_kernels=self.cpu_fused_kernels,
            )
        return ConvEncoder(
            self.channels[stage],
            kernel_size=KERNEL_SIZES[stage],
            dilation=dilation,
            drop_path=drop_path,
            layer_scale_init_value=ls_init,
            cpu_fused_kernels=self.cpu_fused_kernels,
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
        # NOTE: channels-last activations: depth-wise and 1x1 convs run natively on them, and
        # the NHWC views the LayerNorms take need no copies (see edgenext_blocks).
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
