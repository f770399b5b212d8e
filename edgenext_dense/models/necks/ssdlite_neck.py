"""The SSDLite extra levels of the EdgeNeXt paper's detector (MobileViT's cvnets-v0.1 wiring).

The EdgeNeXt paper (Maaz et al., 2022, Sec. 4.2) trains its detector inside apple/ml-cvnets
(tag cvnets-v0.1, ``cvnets/models/detection/ssd.py``): the backbone's stride-16 and stride-32
maps, then extra levels at strides 64, 128 and 256, each one separable convolution, and a last
1x1 level from a global average pool. This module builds those extra levels; the per-level
projections and predictors are in :class:`~edgenext_dense.models.dense_heads.SSDLiteHead`.
"""

from __future__ import annotations

from typing import Sequence, Tuple

from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn

# cvnets initialises every detection conv with xavier_uniform and zero biases
XAVIER_INIT = dict(type="Xavier", layer="Conv2d", distribution="uniform", bias=0)


def _extra_level(in_channels: int, out_channels: int, norm_cfg: ConfigType, act_cfg: ConfigType):
    """One stride-2 extra level: 3x3 depth-wise conv + BN, then 1x1 conv + BN + activation.

    cvnets ``SeparableConv(kernel_size=3, stride=2, use_norm=True, use_act=True)``: its
    depth-wise half always has a norm and never an activation.
    """
    return DepthwiseSeparableConvModule(
        in_channels,
        out_channels,
        kernel_size=3,
        stride=2,
        padding=1,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
        dw_act_cfg=None,
    )


def _pooled_level(in_channels: int, out_channels: int, act_cfg: ConfigType) -> nn.Sequential:
    """The last (1x1) level: global average pool, then a 1x1 conv and activation.

    cvnets ``ConvLayer(kernel_size=1, use_norm=False, use_act=True)`` keeps its default
    ``bias=False`` even without a norm, so this conv has no bias either.
    """
    return nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        ConvModule(in_channels, out_channels, 1, bias=False, norm_cfg=None, act_cfg=act_cfg),
    )


@MODELS.register_module()
class SSDLiteNeck(BaseModule):
    """Backbone maps plus SSDLite extra levels, as the EdgeNeXt paper's detector.

    The inputs are passed through unchanged; ``len(extra_channels)`` stride-2 separable levels
    are appended from the last input, then a global-average-pooled 1x1 level when
    ``pool_channels`` is set. At 320x320 with EdgeNeXt stages 3 and 4 the outputs are
    20, 10, 5, 3, 2 and 1 pixels square.

    Args:
        in_channels (Sequence[int]): Channels of the backbone maps, in stride order.
            Defaults to ``(160, 304)`` (EdgeNeXt-S stages 3 and 4).
        extra_channels (Sequence[int]): Output channels of the stride-2 extra levels.
            Defaults to ``(256, 128, 128)``.
        pool_channels (int, optional): Channels of the pooled 1x1 level; None leaves it out.
            Defaults to 64.
        norm_cfg (dict, optional): Norm layer of the extra levels; None means
            ``dict(type='BN')``. Defaults to None.
        act_cfg (dict, optional): Activation of the extra levels; None means
            ``dict(type='ReLU')``, what cvnets' detection configs use outside the backbone.
            Defaults to None.
        init_cfg (dict | list[dict], optional): Initialisation; None means cvnets'
            Xavier-uniform convolutions with zero biases. Defaults to None.
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (160, 304),
        extra_channels: Sequence[int] = (256, 128, 128),
        pool_channels: int | None = 64,
        norm_cfg: OptConfigType = None,
        act_cfg: OptConfigType = None,
        init_cfg: OptMultiConfig = None,
    ) -> None:
        super().__init__(init_cfg=dict(XAVIER_INIT) if init_cfg is None else init_cfg)
        norm_cfg = dict(type="BN") if norm_cfg is None else norm_cfg
        act_cfg = dict(type="ReLU") if act_cfg is None else act_cfg
        if not in_channels:
            raise ValueError("SSDLiteNeck needs at least one input level, got in_channels=()")
        self.in_channels = tuple(in_channels)
        self.extra_channels = tuple(extra_channels)
        self.pool_channels = pool_channels

        self.extra_layers = nn.ModuleList()
        channels = self.in_channels[-1]
        for out_channels in self.extra_channels:
            self.extra_layers.append(_extra_level(channels, out_channels, norm_cfg, act_cfg))
            channels = out_channels
        self.pool_layer = _pooled_level(channels, pool_channels, act_cfg) if pool_channels else None

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each output level, in order."""
        pooled = (self.pool_channels,) if self.pool_layer is not None else ()
        return self.in_channels + self.extra_channels + pooled

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Append the extra levels to the backbone maps.

        Args:
            inputs (Sequence[Tensor]): ``len(in_channels)`` NCHW backbone maps.

        Returns:
            tuple[Tensor]: The inputs, then each extra level, then the pooled level.
        """
        if len(inputs) != len(self.in_channels):
            raise ValueError(
                f"SSDLiteNeck expects {len(self.in_channels)} backbone maps (in_channels="
                f"{self.in_channels}), got {len(inputs)}: check the backbone's out_indices"
            )
        for level, (feat, channels) in enumerate(zip(inputs, self.in_channels)):
            if feat.shape[1] != channels:
                raise ValueError(
                    f"SSDLiteNeck input {level} has {feat.shape[1]} channels but in_channels says "
                    f"{channels}: set neck.in_channels (and the first bbox_head.in_channels) to "
                    "the backbone's stage widths, e.g. EdgeNeXt-S stages 3-4 are (160, 304)"
                )
        outs = list(inputs)
        x = outs[-1]
        for layer in self.extra_layers:
            x = layer(x)
            outs.append(x)
        if self.pool_layer is not None:
            outs.append(self.pool_layer(x))
        return tuple(outs)
