"""The DeepLabv3 head as apple/ml-cvnets builds it, for mmsegmentation.

Paper: "Rethinking Atrous Convolution for Semantic Image Segmentation", Chen et al., 2017
(https://arxiv.org/abs/1706.05587). Reference implementation: apple/ml-cvnets, tag cvnets-v0.1,
``cvnets/models/segmentation/heads/deeplabv3.py`` and ``cvnets/modules/aspp_block.py``
(Apple sample-code license), the recipe MobileViT and EdgeNeXt trained their segmenters with.

It differs from mmseg's :class:`~mmseg.models.decode_heads.ASPPHead` in one place that matters
for mobile models: the projection after the concatenated branches is a **1x1** conv, where
mmseg's bottleneck is a 3x3 conv (8 * 5C * C more weights: 2.62M more at C = 256). The
branches come in cvnets' order (1x1, the three atrous 3x3, image pooling last), so a cvnets
checkpoint maps onto this head by renaming alone.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple, Union

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.aspp_head import ASPPModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import nn


@MODELS.register_module()
class CvnetsASPPHead(BaseDecodeHead):
    """DeepLabv3 ASPP head with a 1x1 projection, as in ml-cvnets.

    On the selected backbone map (stage 4 at output stride 16 in the paper) it runs

    * a 1x1 conv, three 3x3 convs with dilations ``dilations[1:]`` and an image-pooling
      branch (global average pool, 1x1 conv, bilinear upsampling), each conv + BN + ReLU;
    * their concatenation (5 * ``channels``) through a 1x1 conv + BN + ReLU;
    * dropout (``aspp_dropout``, element-wise as cvnets' ASPP ``Dropout``);
    * mmseg's classifier: ``Dropout2d(dropout_ratio)`` (cvnets-v0.1's ``classifier_dropout``)
      and a 1x1 conv with bias to ``num_classes``.

    The segmentor upsamples the logits bilinearly to the input size.

    With EdgeNeXt-S (304 input channels) and 21 classes this head has 1,214,613 parameters at
    ``channels=128`` and 2,593,045 at ``channels=256``.

    Args:
        dilations (Sequence[int]): Dilation of each convolutional branch; 1 gives the 1x1
            branch. cvnets uses rates 6/12/18 at output stride 16 (twice that at 8).
            Defaults to ``(1, 6, 12, 18)``.
        aspp_dropout (float): Dropout probability after the projection. Defaults to 0.1.
        **kwargs: :class:`~mmseg.models.decode_heads.decode_head.BaseDecodeHead` arguments
            (``in_channels``, ``channels``, ``num_classes``, ``norm_cfg``, ``dropout_ratio``,
            ``in_index``, ``loss_decode``, ...).
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
        conv_kwargs: Dict[str, dict | None] = dict(
            conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg
        )
        # cvnets' ASPP.convs[0:4]: the 1x1 branch and the atrous 3x3 branches.
        self.aspp_modules = ASPPModule(dilations, self.in_channels, self.channels, **conv_kwargs)
        # cvnets' ASPPPooling, concatenated last.
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            ConvModule(self.in_channels, self.channels, 1, **conv_kwargs),
        )
        # NOTE: 1x1, not the 3x3 bottleneck of mmseg's ASPPHead.
        self.project = ConvModule(
            (len(dilations) + 1) * self.channels, self.channels, 1, **conv_kwargs
        )
        self.aspp_dropout = nn.Dropout(aspp_dropout) if aspp_dropout > 0 else nn.Identity()

    def _forward_feature(self, inputs: Union[List[torch.Tensor], Tuple[torch.Tensor, ...]]):
        """Return the ASPP features (N, ``channels``, H, W) before the classifier."""
        x = self._transform_inputs(inputs)
        outs = list(self.aspp_modules(x))
        outs.append(
            resize(
                self.image_pool(x),
                size=x.shape[2:],
                mode="bilinear",
                align_corners=self.align_corners,
            )
        )
        return self.aspp_dropout(self.project(torch.cat(outs, dim=1)))

    def forward(self, inputs: Union[List[torch.Tensor], Tuple[torch.Tensor, ...]]):
        """Return per-class logits at the resolution of the input feature map."""
        return self.cls_seg(self._forward_feature(inputs))
