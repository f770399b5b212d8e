"""The SSDLite extra levels of the EdgeNeXt paper's detector (Sec. 4.2).

The paper trained in apple/ml-cvnets (tag cvnets-v0.1, ``cvnets/models/detection/ssd.py``,
MobileViT's wiring): the backbone's stride-16 and stride-32 maps, extra levels at strides 64,
128 and 256 (one separable convolution each) and a last 1x1 level from a global average pool.
"""

from __future__ import annotations

from typing import Sequence, Tuple

from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn

# cvnets initialises every detection conv with xavier_uniform and zero biases
XAVIER_INIT = dict(type="Xavier", layer="Conv2d", distribution="uniform", bias=0)


@MODELS.register_module()
class SSDLiteNeck(BaseModule):
    """Backbone maps passed through, plus SSDLite extra levels appended from the last one.

    At 320x320 with EdgeNeXt stages 3 and 4 the outputs are 20, 10, 5, 3, 2 and 1 pixels square.

    Args:
        in_channels (Sequence[int]): Channels of the backbone maps. Defaults to ``(160, 304)``
            (EdgeNeXt-S stages 3 and 4).
        extra_channels (Sequence[int]): Channels of the stride-2 separable levels. Defaults to
            ``(256, 128, 128)``.
        pool_channels (int, optional): Channels of the pooled 1x1 level; None leaves it out.
            Defaults to 64.
        norm_cfg (dict, optional): Norm of the extra levels; None means ``dict(type='BN')``.
            Defaults to None.
        act_cfg (dict, optional): Activation of the extra levels; None means
            ``dict(type='ReLU')``, as cvnets' detection heads. Defaults to None.
        init_cfg (dict | list[dict], optional): None means cvnets' Xavier-uniform convolutions
            with zero biases. Defaults to None.
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
        # cvnets' SeparableConv: the depth-wise half has a norm and never an activation
        sep = dict(stride=2, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg, dw_act_cfg=None)
        widths = self.in_channels[-1:] + self.extra_channels
        self.extra_layers = nn.ModuleList(
            DepthwiseSeparableConvModule(c_in, c_out, 3, **sep)
            for c_in, c_out in zip(widths, widths[1:])
        )
        self.pool_layer = None
        if pool_channels:  # cvnets' ConvLayer keeps bias=False even without a norm
            conv = ConvModule(
                widths[-1], pool_channels, 1, bias=False, norm_cfg=None, act_cfg=act_cfg
            )
            self.pool_layer = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv)

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each output level, in order."""
        pooled = (self.pool_channels,) if self.pool_layer is not None else ()
        return self.in_channels + self.extra_channels + pooled

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Return the ``len(in_channels)`` backbone maps, each extra level, the pooled level."""
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
        for layer in self.extra_layers:
            outs.append(layer(outs[-1]))
        if self.pool_layer is not None:
            outs.append(self.pool_layer(outs[-1]))
        return tuple(outs)
