"""The DeepLabv3 head of ml-cvnets (CvnetsASPPHead) and the EdgeNeXt segmentor it makes."""

from __future__ import annotations

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from edgenext_dense.models.decode_heads import CvnetsASPPHead


@pytest.fixture(autouse=True)
def _mmseg_scope() -> None:
    """mmseg's registries for every test here, whatever scope the tests before it left."""
    init_default_scope("mmseg")


# The issue's numbers: published EdgeNeXt-S backbone without its classifier, and the head.
EDGENEXT_S_BACKBONE = 5_281_224
HEAD_S_128 = 1_214_613
HEAD_S_256 = 2_593_045


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _head(in_channels: int = 304, channels: int = 128, **kwargs) -> CvnetsASPPHead:
    return MODELS.build(
        dict(
            type="CvnetsASPPHead",
            in_channels=in_channels,
            channels=channels,
            num_classes=21,
            norm_cfg=dict(type="BN", requires_grad=True),
            **kwargs,
        )
    )


def _segmentor(arch: str = "xx_small", output_stride: int = 16, channels: int = 32):
    in_channels = {"xx_small": 168, "small": 304}[arch]
    model = MODELS.build(
        ConfigDict(
            type="EncoderDecoder",
            data_preprocessor=dict(
                type="SegDataPreProcessor",
                mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375],
                bgr_to_rgb=True,
            ),
            backbone=dict(
                type="edgenext_dense.EdgeNeXt",
                arch=arch,
                out_indices=(3,),
                output_stride=output_stride,
            ),
            decode_head=dict(
                type="CvnetsASPPHead",
                in_channels=in_channels,
                channels=channels,
                num_classes=21,
                norm_cfg=dict(type="BN", requires_grad=True),
            ),
            test_cfg=dict(mode="whole"),
        )
    )
    model.init_weights()
    return model


def _samples(n: int, h: int, w: int, with_gt: bool = True):
    samples = []
    for i in range(n):
        sample = SegDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), scale_factor=1.0)
        )
        if with_gt:
            gt = torch.randint(0, 21, (1, h, w), generator=torch.Generator().manual_seed(i))
            gt[:, :2] = 255  # ignored border
            sample.gt_sem_seg = PixelData(data=gt)
        samples.append(sample)
    return samples


def test_head_params_match_the_issue_at_128_and_256_channels():
    # 1x1 + three 3x3 atrous + pooling branch + 1x1 projection (6 conv+BN) + 1x1 classifier.
    assert _n_params(_head(channels=128)) == HEAD_S_128
    assert _n_params(_head(channels=256)) == HEAD_S_256


def test_segmentor_params_are_the_papers_6_5m():
    model = _segmentor("small", channels=128)
    assert _n_params(model.backbone) == EDGENEXT_S_BACKBONE
    total = _n_params(model)
    assert total == EDGENEXT_S_BACKBONE + HEAD_S_128 == 6_495_837  # the paper's 6.5M


def test_head_is_cvnets_aspp_with_a_1x1_projection():
    head = _head()
    convs = [m.conv for m in head.aspp_modules]
    assert [c.kernel_size for c in convs] == [(1, 1), (3, 3), (3, 3), (3, 3)]
    assert [c.dilation[0] for c in convs] == [1, 6, 12, 18]
    assert [c.padding[0] for c in convs] == [0, 6, 12, 18]  # same-size outputs
    assert head.project.conv.kernel_size == (1, 1)
    assert head.project.conv.in_channels == 5 * 128
    assert all(m.bn is not None and m.activate is not None for m in head.aspp_modules)
    assert isinstance(head.aspp_dropout, torch.nn.Dropout) and head.aspp_dropout.p == 0.1
    assert head.conv_seg.out_channels == 21 and head.conv_seg.bias is not None
    # no bias in the BN-followed convs, as cvnets builds them
    assert head.project.conv.bias is None and head.image_pool[1].conv.bias is None


def test_head_output_keeps_the_feature_size_and_is_deterministic_in_eval():
    head = _head(channels=32).eval()
    feats = [torch.randn(2, 304, 7, 9)]
    out = head(feats)
    assert out.shape == (2, 21, 7, 9)
    assert torch.equal(out, head(feats))


def test_head_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dilations must be positive integers"):
        _head(dilations=(1, 0, 12, 18))
    with pytest.raises(ValueError, match="aspp_dropout must be in"):
        _head(aspp_dropout=1.0)
    with pytest.raises(ValueError, match="reads one feature map"):
        _head(in_channels=[160, 304], in_index=[0, 1], input_transform="multiple_select")


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_prediction_has_the_input_resolution_for_every_output_stride(output_stride):
    model = _segmentor(output_stride=output_stride).eval()
    h, w = 97, 131  # odd, not a multiple of any stride
    inputs = torch.randn(1, 3, h, w)
    with torch.no_grad():
        logits = model.encode_decode(inputs, [s.metainfo for s in _samples(1, h, w, False)])
        results = model.predict(inputs, _samples(1, h, w, with_gt=False))
    assert logits.shape == (1, 21, h, w)
    assert results[0].pred_sem_seg.data.shape == (1, h, w)
    assert results[0].seg_logits.data.shape == (21, h, w)


def test_loss_on_a_small_batch_trains_the_backbone_too():
    model = _segmentor().train()
    losses = model.loss(torch.randn(2, 3, 64, 64), _samples(2, 64, 64))
    assert set(losses) == {"decode.loss_ce", "decode.acc_seg"}
    loss = losses["decode.loss_ce"]
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    stem = model.backbone.downsample_layers[0][0].weight
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    assert model.decode_head.image_pool[1].conv.weight.grad.abs().sum() > 0
