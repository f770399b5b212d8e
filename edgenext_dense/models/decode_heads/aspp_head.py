"""The DeepLabv3 head as apple/ml-cvnets builds it (the recipe of MobileViT and EdgeNeXt).

Paper: "Rethinking Atrous Convolution for Semantic Image Segmentation", Chen et al., 2017
(https://arxiv.org/abs/1706.05587). Reference: apple/ml-cvnets cvnets-v0.1,
``cvnets/models/segmentation/heads/deeplabv3.py`` and ``cvnets/modules/aspp_block.py``.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import nn


@MODELS.register_module()
class CvnetsASPPHead(BaseDecodeHead):
    """DeepLabv3 ASPP head with cvnets' 1x1 projection.

    On one backbone map: a 1x1 branch, 3x3 branches at ``dilations[1:]`` and an image-pooling
    branch (each conv + BN + ReLU), in cvnets' order so its checkpoints map by renaming; their
    concatenation through a 1x1 conv + BN + ReLU (NOTE: mmseg's ``ASPPHead`` uses a 3x3 conv
    here, 2.62M more weights at 256 channels); element-wise ``aspp_dropout``; then mmseg's
    classifier (``Dropout2d(dropout_ratio)``, a 1x1 conv with bias).

    Args:
        dilations (Sequence[int]): Dilation of each conv branch; 1 gives the 1x1 branch.
            Defaults to ``(1, 6, 12, 18)``, cvnets' rates at output stride 16.
        aspp_dropout (float): Dropout probability after the projection. Defaults to 0.1.
        **kwargs: :class:`~mmseg.models.decode_heads.decode_head.BaseDecodeHead` arguments.
    """

    def __init__(
        self,
        dilations: Sequence[int] = (1, 6, 12, 18),
        aspp_dropout: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        dilations = tuple(dilations)
        if not dilations or any(int(d) != d or d < 1 for d in dilations):
            raise ValueError(f"dilations must be positive integers, got {dilations!r}")
        if not 0.0 <= aspp_dropout < 1.0:
            raise ValueError(f"aspp_dropout must be in [0, 1), got {aspp_dropout!r}")
        if not isinstance(self.in_channels, int):
            raise ValueError(
                "CvnetsASPPHead reads one feature map: give an int in_channels and in_index "
                f"(got in_channels={self.in_channels!r}, input_transform={self.input_transform!r})"
            )
        self.dilations = dilations
        conv_kwargs: Dict[str, Any] = dict(
            conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg
        )
        self.aspp_modules = ASPPModule(dilations, self.in_channels, self.channels, **conv_kwargs)
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            ConvModule(self.in_channels, self.channels, 1, **conv_kwargs),
        )
        self.project = ConvModule(
            (len(dilations) + 1) * self.channels, self.channels, 1, **conv_kwargs
        )
        self.aspp_dropout = nn.Dropout(aspp_dropout) if aspp_dropout > 0 else nn.Identity()

    def _forward_feature(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The ASPP features (N, ``channels``, H, W) before the classifier."""
        x = self._transform_inputs(inputs)
        outs = list(self.aspp_modules(x))
        pooled = self.image_pool(x)
        outs.append(
            resize(pooled, size=x.shape[2:], mode="bilinear", align_corners=self.align_corners)
        )
        return self.aspp_dropout(self.project(torch.cat(outs, dim=1)))

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-class logits at the resolution of the input feature map."""
        return self.cls_seg(self._forward_feature(inputs))
