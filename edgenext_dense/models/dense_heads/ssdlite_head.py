"""The SSDLite head and priors of the EdgeNeXt paper's detector (Sec. 4.2), as mmdet modules.

The paper trained in apple/ml-cvnets (tag cvnets-v0.1): ``cvnets/modules/ssd.py`` (the head),
``cvnets/misc/anchor_generator.py`` (the priors) and ``cvnets/models/detection/ssd.py`` (the
wiring). Losses and decoding are mmdet's :class:`~mmdet.models.dense_heads.SSDHead`.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, List, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.cnn import ConvModule
from mmdet.models.dense_heads import SSDHead
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.utils import InstanceList, OptConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ..necks.ssdlite_neck import XAVIER_INIT

DeviceType = Union[str, torch.device]
# cvnets' center (0.1) and size (0.2) variances
CVNETS_BOX_CODER = dict(
    type="DeltaXYWHBBoxCoder", target_means=(0.0, 0.0, 0.0, 0.0), target_stds=(0.1, 0.1, 0.2, 0.2)
)


@TASK_UTILS.register_module()
class SSDLiteAnchorGenerator:
    """SSD priors as fractions of the network input, as cvnets-v0.1's ``SSDAnchorGenerator``.

    With ``L`` levels, ``s = linspace(min_ratio, max_ratio, L + 1)``; level ``k`` has, per map
    location, squares of side ``s[k]`` and ``sqrt(s[k] * s[k + 1])`` and, per aspect ratio
    ``r``, boxes ``s[k] * (sqrt(r), 1 / sqrt(r))`` and ``s[k] * (1 / sqrt(r), sqrt(r))``
    (width, height), clipped to 1. Location ``(i, j)`` of an ``h x w`` map is centred at
    ``((j + 0.5) / w, (i + 0.5) / h)``, which mmdet's integer strides cannot place on the 3x3
    and 2x2 maps of a 320x320 input. The input is the padded batch the head sets through
    :meth:`input_shape`, else ``input_size``.

    Args:
        ratios (Sequence[Sequence[float]]): Aspect ratios per level (duplicates dropped).
            Defaults to ``((2, 3),) * 5 + ((2,),)``.
        min_ratio (float): Smallest prior side as a fraction of the input. Defaults to 0.1.
        max_ratio (float): Upper end of the scale range. Defaults to 1.05.
        input_size (int | tuple[int, int]): (height, width) used when no input shape is set.
            Defaults to 320.
        clip (bool): Clip prior widths and heights to the input (cvnets' default).
            Defaults to True.
    """

    def __init__(
        self,
        ratios: Sequence[Sequence[float]] = ((2, 3),) * 5 + ((2,),),
        min_ratio: float = 0.1,
        max_ratio: float = 1.05,
        input_size: Union[int, Tuple[int, int]] = 320,
        clip: bool = True,
    ) -> None:
        if not ratios:
            raise ValueError("SSDLiteAnchorGenerator needs aspect ratios for at least one level")
        if not 0 < min_ratio < max_ratio:
            raise ValueError(f"need 0 < min_ratio < max_ratio, got {min_ratio}, {max_ratio}")
        self.ratios = tuple(tuple(dict.fromkeys(float(r) for r in level)) for level in ratios)
        scales = np.linspace(min_ratio, max_ratio, len(self.ratios) + 1)
        self.min_sizes = tuple(float(s) for s in scales[:-1])
        self.max_sizes = tuple(float(math.sqrt(a * b)) for a, b in zip(scales[:-1], scales[1:]))
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        self.input_size: Tuple[int, int] = (int(size[0]), int(size[1]))
        self.clip = clip
        self._input_shape: Tuple[int, int] | None = None
        self.base_priors = []  # per level, (num_base_priors, 2) widths and heights
        for small, big, level_ratios in zip(self.min_sizes, self.max_sizes, self.ratios):
            sizes = [(small, small), (big, big)]
            for root in map(math.sqrt, level_ratios):
                sizes += [(small * root, small / root), (small / root, small * root)]
            wh = torch.tensor(sizes, dtype=torch.float32)
            self.base_priors.append(wh.clamp(max=1.0) if clip else wh)

    @property
    def num_levels(self) -> int:
        """Number of feature levels."""
        return len(self.ratios)

    @property
    def num_base_priors(self) -> List[int]:
        """Priors per map location on each level: 2 squares + 2 per aspect ratio."""
        return [2 + 2 * len(r) for r in self.ratios]

    @contextmanager
    def input_shape(self, shape: Sequence[int] | None) -> Iterator[None]:
        """Generate priors for a padded input of ``shape`` (height, width; None: ``input_size``)
        inside the ``with`` block."""
        previous = self._input_shape
        self._input_shape = None if shape is None else (int(shape[0]), int(shape[1]))
        try:
            yield
        finally:
            self._input_shape = previous

    def grid_priors(
        self,
        featmap_sizes: Sequence[Tuple[int, int]],
        dtype: torch.dtype = torch.float32,
        device: DeviceType = "cuda",
    ) -> List[Tensor]:
        """Per level, ``(h * w * num_base_priors, 4)`` (x1, y1, x2, y2) priors in input pixels,
        ordered by row, column, then prior, for maps of ``featmap_sizes`` (height, width)."""
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(
                f"got {len(featmap_sizes)} feature maps for {self.num_levels} anchor levels"
            )
        in_h, in_w = self._input_shape or self.input_size
        scale = torch.tensor([in_w, in_h], device=device, dtype=torch.float32)
        priors = []
        for (feat_h, feat_w), base in zip(featmap_sizes, self.base_priors):
            feat_h, feat_w = int(feat_h), int(feat_w)
            cy = (torch.arange(feat_h, device=device, dtype=torch.float32) + 0.5) * (in_h / feat_h)
            cx = (torch.arange(feat_w, device=device, dtype=torch.float32) + 0.5) * (in_w / feat_w)
            cy, cx = torch.meshgrid(cy, cx, indexing="ij")
            centers = torch.stack([cx.reshape(-1), cy.reshape(-1)], dim=-1)[:, None, :]
            half = (base.to(device) * scale / 2)[None, :, :]
            boxes = torch.cat([centers - half, centers + half], dim=-1)
            priors.append(boxes.reshape(-1, 4).to(dtype))
        return priors

    def valid_flags(
        self,
        featmap_sizes: Sequence[Tuple[int, int]],
        pad_shape: Sequence[int],
        device: DeviceType = "cuda",
    ) -> List[Tensor]:
        """Per level, a bool per prior: whether its map location covers the image's unpadded
        ``pad_shape`` (height, width)."""
        (in_h, in_w), (pad_h, pad_w) = self._input_shape or self.input_size, pad_shape[:2]
        flags = []
        for (feat_h, feat_w), num_base in zip(featmap_sizes, self.num_base_priors):
            valid = torch.zeros(feat_h, feat_w, dtype=torch.bool, device=device)
            valid[: math.ceil(pad_h * feat_h / in_h), : math.ceil(pad_w * feat_w / in_w)] = True
            flags.append(valid.reshape(-1, 1).expand(-1, num_base).reshape(-1))
        return flags

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(ratios={self.ratios}, min_sizes="
            f"{[round(s, 4) for s in self.min_sizes]}, max_sizes="
            f"{[round(s, 4) for s in self.max_sizes]}, input_size={self.input_size}, "
            f"clip={self.clip})"
        )


def _input_shape_of(img_meta: dict) -> Tuple[int, int] | None:
    """The padded network input (height, width) an image was predicted in."""
    keys = ("batch_input_shape", "pad_shape", "img_shape")
    return next((tuple(img_meta[k][:2]) for k in keys if img_meta.get(k) is not None), None)


def _with_default(cfg: OptConfigType, default: dict) -> dict:
    """``cfg`` when it names a type, else ``default`` updated with ``cfg``'s arguments."""
    if cfg is not None and "type" in cfg:
        return cfg
    return {**default, **(cfg or {})}


@MODELS.register_module()
class SSDLiteHead(SSDHead):
    """SSDLite head of the EdgeNeXt paper's detector (cvnets-v0.1 ``SSDHead``).

    Per level: a 1x1 conv + BN + activation to ``proj_channels[i]`` where the width differs
    (3x3 levels only), then one separable convolution (3x3 depth-wise + BN, 1x1 conv with bias)
    whose ``A * (4 + num_classes + 1)`` outputs hold, per prior, 4 box deltas then the class
    logits (background last); a ``kernel_sizes[i] == 1`` level (the pooled one) predicts with
    one 1x1 conv. Training and decoding are mmdet's ``SSDHead`` (``train_cfg``: assigner,
    ``neg_pos_ratio``, ``smoothl1_beta``).

    Args:
        num_classes (int): Object classes, background excluded. Defaults to 80.
        in_channels (Sequence[int]): Channels of the input levels. Defaults to
            ``(160, 304, 256, 128, 128, 64)`` (EdgeNeXt-S with the default neck).
        proj_channels (Sequence[int]): Width each level is projected to before predicting.
            Defaults to ``(512, 256, 256, 128, 128, 64)``.
        kernel_sizes (Sequence[int]): Predictor kernel per level, 3 or 1. Defaults to
            ``(3, 3, 3, 3, 3, 1)``.
        norm_cfg (dict, optional): Norm of the projections and depth-wise convs; None means
            ``dict(type='BN')``. Defaults to None.
        act_cfg (dict, optional): Activation of the projections; None means
            ``dict(type='ReLU')``. Defaults to None.
        anchor_generator (dict, optional): None means ``SSDLiteAnchorGenerator`` (cvnets' six
            levels); a dict without ``type`` overrides its arguments. Defaults to None.
        bbox_coder (dict, optional): None means :data:`CVNETS_BOX_CODER`; a dict without
            ``type`` overrides its arguments. Defaults to None.
        reg_decoded_bbox (bool): Regress decoded boxes (for IoU losses). Defaults to False.
        separate_branches (bool): Predict classes and boxes with two separable convolutions
            (mmdet's SSDLite) instead of one shared one (cvnets). Defaults to False.
        dw_act (bool): Apply ``act_cfg`` after each predictor's depth-wise convolution (mmdet's
            SSDLite) instead of none (cvnets). Defaults to False.
        train_cfg (dict, optional): mmdet's SSD training config. Defaults to None.
        test_cfg (dict, optional): mmdet's test config plus ``max_per_class`` (after NMS, keep
            each class's best k, as cvnets' top-k; <= 0 keeps all). Defaults to None.
        init_cfg (dict | list[dict], optional): None means cvnets' Xavier-uniform convolutions
            with zero biases. Defaults to None.
    """

    def __init__(
        self,
        num_classes: int = 80,
        in_channels: Sequence[int] = (160, 304, 256, 128, 128, 64),
        proj_channels: Sequence[int] = (512, 256, 256, 128, 128, 64),
        kernel_sizes: Sequence[int] = (3, 3, 3, 3, 3, 1),
        norm_cfg: OptConfigType = None,
        act_cfg: OptConfigType = None,
        anchor_generator: OptConfigType = None,
        bbox_coder: OptConfigType = None,
        reg_decoded_bbox: bool = False,
        separate_branches: bool = False,
        dw_act: bool = False,
        train_cfg: OptConfigType = None,
        test_cfg: OptConfigType = None,
        init_cfg: OptMultiConfig = None,
    ) -> None:
        if not len(in_channels) == len(proj_channels) == len(kernel_sizes):
            raise ValueError(
                f"SSDLiteHead needs one proj_channels and one kernel_sizes entry per input level: "
                f"in_channels={tuple(in_channels)}, proj_channels={tuple(proj_channels)}, "
                f"kernel_sizes={tuple(kernel_sizes)}"
            )
        if any(k not in (1, 3) for k in kernel_sizes):
            raise ValueError(f"kernel_sizes must be 1 or 3, got {tuple(kernel_sizes)}")
        # read by _init_layers, which SSDHead.__init__ calls
        self.proj_channels = tuple(proj_channels)
        self.kernel_sizes = tuple(kernel_sizes)
        self.separate_branches = separate_branches
        self.dw_act = dw_act
        super().__init__(
            num_classes=num_classes,
            in_channels=tuple(in_channels),
            stacked_convs=0,
            use_depthwise=True,
            norm_cfg=dict(type="BN") if norm_cfg is None else norm_cfg,
            act_cfg=dict(type="ReLU") if act_cfg is None else act_cfg,
            anchor_generator=_with_default(anchor_generator, dict(type="SSDLiteAnchorGenerator")),
            bbox_coder=_with_default(bbox_coder, CVNETS_BOX_CODER),
            reg_decoded_bbox=reg_decoded_bbox,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            init_cfg=dict(XAVIER_INIT) if init_cfg is None else init_cfg,
        )

    def _init_layers(self) -> None:
        """Build the per-level projections and predictors (called by ``SSDHead.__init__``)."""
        if len(self.num_base_priors) != len(self.in_channels):
            raise ValueError(
                f"the anchor generator has {len(self.num_base_priors)} levels but the head has "
                f"{len(self.in_channels)} inputs (in_channels={self.in_channels})"
            )
        self.proj_layers = nn.ModuleList()
        self.pred_layers = nn.ModuleList()
        self.reg_layers = nn.ModuleList() if self.separate_branches else None
        for channels, proj_ch, kernel, num_base in zip(
            self.in_channels, self.proj_channels, self.kernel_sizes, self.num_base_priors
        ):
            proj: nn.Module = nn.Identity()
            if kernel > 1 and proj_ch != channels:
                proj = ConvModule(
                    channels, proj_ch, 1, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg
                )
                channels = proj_ch
            self.proj_layers.append(proj)
            # cvnets predicts each prior's 4 box deltas and its class logits with one conv
            per_prior = self.cls_out_channels + (0 if self.separate_branches else 4)
            self.pred_layers.append(self._predictor(channels, kernel, num_base * per_prior))
            if self.separate_branches:
                self.reg_layers.append(self._predictor(channels, kernel, num_base * 4))

    def _predictor(self, channels: int, kernel: int, out_channels: int) -> nn.Module:
        """A 1x1 conv, or a separable conv: depth-wise + BN (+ activation), then a 1x1 conv."""
        if kernel == 1:
            return nn.Conv2d(channels, out_channels, 1)
        act_cfg = self.act_cfg if self.dw_act else None
        depthwise = ConvModule(
            channels,
            channels,
            kernel,
            padding=kernel // 2,
            groups=channels,
            norm_cfg=self.norm_cfg,
            act_cfg=act_cfg,
        )
        return nn.Sequential(depthwise, nn.Conv2d(channels, out_channels, 1))

    def forward(self, x: Tuple[Tensor, ...]) -> Tuple[List[Tensor], List[Tensor]]:
        """Per level, ``A * (num_classes + 1)`` class logits and ``A * 4`` box deltas, channel
        ``a * C + c`` holding prior ``a``'s value ``c`` (mmdet's layout)."""
        if len(x) != len(self.pred_layers):
            raise ValueError(
                f"SSDLiteHead expects {len(self.pred_layers)} feature levels, got {len(x)}"
            )
        cls_scores, bbox_preds = [], []
        for level, (feat, proj, pred) in enumerate(zip(x, self.proj_layers, self.pred_layers)):
            feat = proj(feat)
            if self.separate_branches:
                cls_scores.append(pred(feat))
                bbox_preds.append(self.reg_layers[level](feat))
                continue
            out = pred(feat)
            n, _, h, w = out.shape
            a, c = self.num_base_priors[level], self.cls_out_channels
            out = out.view(n, a, 4 + c, h, w)
            bbox_preds.append(out[:, :, :4].reshape(n, a * 4, h, w))
            cls_scores.append(out[:, :, 4:].reshape(n, a * c, h, w))
        return cls_scores, bbox_preds

    def get_anchors(
        self,
        featmap_sizes: List[tuple],
        batch_img_metas: List[dict],
        device: DeviceType = "cuda",
    ) -> Tuple[List[List[Tensor]], List[List[Tensor]]]:
        """Priors and valid flags for a batch, relative to its padded input size."""
        with self.prior_generator.input_shape(_input_shape_of(batch_img_metas[0])):
            return super().get_anchors(featmap_sizes, batch_img_metas, device=device)

    def predict_by_feat(
        self,
        cls_scores: List[Tensor],
        bbox_preds: List[Tensor],
        score_factors: List[Tensor] | None = None,
        batch_img_metas: List[dict] | None = None,
        cfg: OptConfigType = None,
        rescale: bool = False,
        with_nms: bool = True,
    ) -> InstanceList:
        """mmdet's decoding and NMS, with priors for the batch's padded input size.

        Mixed-precision maps (``test_cfg.fp16=True``) are decoded in float32: bfloat16 has
        2-pixel steps at 320 pixels, and mmcv's CPU NMS takes float32 only.
        """
        shape = _input_shape_of(batch_img_metas[0]) if batch_img_metas else None
        with self.prior_generator.input_shape(shape):
            return super().predict_by_feat(
                [score.float() for score in cls_scores],
                [pred.float() for pred in bbox_preds],
                score_factors=score_factors,
                batch_img_metas=batch_img_metas,
                cfg=cfg,
                rescale=rescale,
                with_nms=with_nms,
            )

    def _bbox_post_process(
        self,
        results: InstanceData,
        cfg: ConfigDict,
        rescale: bool = False,
        with_nms: bool = True,
        img_meta: dict | None = None,
    ) -> InstanceData:
        """mmdet's rescaling, size filter and NMS, then ``max_per_class`` (see the class)."""
        results = super()._bbox_post_process(results, cfg, rescale, with_nms, img_meta)
        max_per_class = cfg.get("max_per_class", -1)
        if with_nms and max_per_class > 0 and len(results) > max_per_class:
            # each box's rank within its class, in the (score) order NMS left them
            labels, order = torch.sort(results.labels, stable=True)
            first = torch.searchsorted(labels, labels)  # where each class starts
            rank = torch.empty_like(labels)
            rank[order] = torch.arange(len(labels), device=labels.device) - first
            results = results[rank < max_per_class]
        return results
