"""The fast EdgeNeXt computation against a plain one, as the authors wrote it, on random weights.

The backbone runs the point-wise linears as 1x1 convolutions on channels-last maps and, in CPU
float32 inference, each encoder as one call on oneDNN kernels (``edgenext_inference``). The
reference here is the authors' formulation, written out: contiguous NCHW maps, ``F.linear`` on
``(B, H, W, C)`` / ``(B, N, C)`` tokens, the explicit mean/variance channels-first LayerNorm.
"""

from __future__ import annotations

import copy
from typing import Tuple

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgenext_dense.models.backbones import EdgeNeXt
from edgenext_dense.models.backbones.edgenext_blocks import (
    ConvEncoder,
    LayerNorm2d,
    SDTAEncoder,
    depthwise,
)


def _channels_first_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    x = (x - u) / torch.sqrt(s + norm.eps)
    if norm.weight is None:
        return x
    return norm.weight[:, None, None] * x + norm.bias[:, None, None]


def _tokens_norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _mlp(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = F.linear(_tokens_norm(block.norm, x), block.pwconv1.weight, block.pwconv1.bias)
    x = F.linear(F.gelu(x), block.pwconv2.weight, block.pwconv2.bias)
    return x if block.gamma is None else block.gamma * x


def _conv_encoder(block: ConvEncoder, x: torch.Tensor) -> torch.Tensor:
    return x + _mlp(block, block.dwconv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _xca(xca: nn.Module, x: torch.Tensor) -> torch.Tensor:
    b, n, c = x.shape
    qkv = F.linear(x, xca.qkv.weight, xca.qkv.bias).reshape(b, n, 3, xca.num_heads, -1)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    q, k, v = (t.transpose(-2, -1) for t in (q, k, v))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    attn = ((q @ k.transpose(-2, -1)) * xca.temperature).softmax(dim=-1)
    x = (attn @ v).permute(0, 3, 1, 2).reshape(b, n, c)
    return F.linear(x, xca.proj.weight, xca.proj.bias)


def _sdta_encoder(block: SDTAEncoder, x: torch.Tensor) -> torch.Tensor:
    shortcut = x
    splits = torch.split(x, block.width, dim=1)
    outs, sp = [], splits[0]
    for i, conv in enumerate(block.convs):
        sp = conv(sp if i == 0 else sp + splits[i])
        outs.append(sp)
    x = torch.cat(outs + list(splits[block.nums :]), dim=1)
    b, c, h, w = x.shape
    x = x.reshape(b, c, h * w).permute(0, 2, 1)
    if block.pos_embd is not None:
        projection = block.pos_embd.token_projection
        pos = F.conv2d(block.pos_embd.fourier_grid(h, w), projection.weight, projection.bias)
        x = x + pos.reshape(1, c, h * w).permute(0, 2, 1)
    attn = _xca(block.xca, _tokens_norm(block.norm_xca, x))
    x = x + (attn if block.gamma_xca is None else block.gamma_xca * attn)
    x = _mlp(block, x)
    return shortcut + x.permute(0, 2, 1).reshape(b, c, h, w)


def plain_forward(model: EdgeNeXt, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """The authors' computation of ``model``'s stage outputs, with its parameters."""
    outs = []
    for i in range(4):
        for layer in model.downsample_layers[i]:
            if isinstance(layer, LayerNorm2d):
                x = _channels_first_norm(layer, x)
            else:
                x = layer(x.contiguous())
        for block in model.stages[i]:
            x = (
                _conv_encoder(block, x)
                if isinstance(block, ConvEncoder)
                else _sdta_encoder(block, x)
            )
        if i in model.out_indices:
            outs.append(x)
    return tuple(outs)


def _random_model(output_stride: int = 32, **kwargs) -> EdgeNeXt:
    torch.manual_seed(0)
    model = EdgeNeXt("xx_small", output_stride=output_stride, **kwargs)
    for p in model.parameters():  # layer scales and LN affines far from their 1e-6 / 1 / 0 init
        p.data.add_(0.2 * torch.randn_like(p))
    return model.eval()


def _assert_outputs_close(got, expected) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        scale = float(b.abs().max())
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)


def _profiled_ops(model: nn.Module, x: torch.Tensor) -> set:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model(x)
    return {event.key for event in prof.key_averages()}


@pytest.mark.parametrize("output_stride", (32, 16))
def test_inference_paths_equal_the_plain_computation(output_stride):
    model = _random_model(output_stride)
    x = torch.randn(2, 3, 97, 130)
    with torch.no_grad():
        expected = plain_forward(model, x)
        fused_kernels = model(x)
        assert "mkldnn::_linear_pointwise" in _profiled_ops(model, x)
    _assert_outputs_close(fused_kernels, expected)
    with torch.enable_grad():  # autograd on: the plain 1x1 convolutions, no fused kernel
        _assert_outputs_close(model(x), expected)
    plain = _random_model(output_stride, cpu_fused_kernels=False)
    with torch.no_grad():
        assert not {"mkldnn::_linear_pointwise", "mkldnn::_convolution_pointwise"} & _profiled_ops(
            plain, x
        )
        _assert_outputs_close(plain(x), expected)
        _assert_outputs_close(model.fuse()(x), expected)  # folded constants + fused kernels


def _random_block(block: nn.Module) -> nn.Module:
    torch.manual_seed(1)
    for p in block.parameters():
        p.data.add_(0.2 * torch.randn_like(p))
    return block.eval()


@pytest.mark.parametrize("fuse", (False, True))
@pytest.mark.parametrize("channels_last", (False, True))
@pytest.mark.parametrize(
    "make, plain",
    [
        (lambda: ConvEncoder(24, kernel_size=5), _conv_encoder),
        (lambda: ConvEncoder(32, kernel_size=9, dilation=2), _conv_encoder),  # phase grids
        (lambda: SDTAEncoder(48, num_heads=4, scales=3, use_pos_emb=True), _sdta_encoder),
        (lambda: SDTAEncoder(24, num_heads=2, scales=1), _sdta_encoder),
    ],
    ids=("conv", "conv-dilated", "sdta-pos", "sdta-1-scale"),
)
def test_each_encoder_runs_one_inference_call_equal_to_the_plain_computation(
    make, plain, channels_last, fuse
):
    block = _random_block(make())
    expected_block = copy.deepcopy(block)
    if fuse:
        block.fuse()
    x = torch.randn(2, block.norm.normalized_shape[0], 19, 22)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = plain(expected_block, x.contiguous())
        got = block(x)
        ops = _profiled_ops(block, x)
    scale = float(expected.abs().max())
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5 * scale)
    assert "mkldnn::_linear_pointwise" in ops  # the block's inference call, not its modules
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_inference_calls_blocks_directly_unless_something_observes_them(monkeypatch):
    model = _random_model()
    x = torch.randn(1, 3, 64, 64)
    seen = []
    hook = model.stages[1][0].register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        expected = model(x)
        hook.remove()
        _assert_outputs_close(model(x), expected)
    assert len(seen) == 1 and seen[0].shape == (1, 48, 8, 8)  # a block's hook runs

    def module_forward(self, x):
        raise AssertionError("called through nn.Module")

    monkeypatch.setattr(ConvEncoder, "forward", module_forward)
    with torch.no_grad():
        _assert_outputs_close(model(x), expected)  # the blocks' inference calls, no forward
        hook = model.stages[1][0].register_forward_hook(lambda m, i, o: None)
        with pytest.raises(AssertionError, match="nn.Module"):
            model(x)  # a hooked block is called as a module, so its hook runs
        hook.remove()
        hook = torch.nn.modules.module.register_module_forward_pre_hook(lambda m, i: None)
        try:
            with pytest.raises(AssertionError, match="nn.Module"):
                model(x)  # so is every module under a global hook
        finally:
            hook.remove()
        model.stages[0][0].train()
        with pytest.raises(AssertionError, match="nn.Module"):
            model(x)  # and a block in training mode


def test_a_block_in_train_mode_runs_its_modules_even_without_autograd():
    model = _random_model(drop_path_rate=0.5).train()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ops = _profiled_ops(model, x)
        first, second = model(x)[-1], model(x)[-1]
    assert "mkldnn::_linear_pointwise" not in ops
    assert not torch.equal(first, second)  # stochastic depth is on, as training wants


@pytest.mark.parametrize("output_stride", (32, 16))
def test_training_gradients_equal_the_plain_computation(output_stride):
    model = _random_model(output_stride, drop_path_rate=0.0).train()
    x = torch.randn(2, 3, 64, 96)
    weights = [torch.randn_like(o) for o in plain_forward(model, x)]

    def grads(outputs):
        model.zero_grad()
        sum((o * w).sum() for o, w in zip(outputs, weights)).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    expected, got = grads(plain_forward(model, x)), grads(model(x))
    assert set(got) == set(expected)
    for name, grad in expected.items():
        scale = float(grad.abs().max()) + 1e-12
        torch.testing.assert_close(got[name], grad, rtol=1e-3, atol=1e-4 * scale, msg=name)
    # the linears keep the published (out, in) shapes: the 1x1 convolutions are views
    assert got["stages.0.0.pwconv1.weight"].shape == (96, 24)


@pytest.mark.parametrize("fuse", (False, True))
def test_inference_never_writes_into_a_block_input(fuse):
    model = _random_model()
    if fuse:
        model.fuse()
    x = torch.randn(1, 3, 64, 96)
    inputs = []
    hooks = [
        block.register_forward_pre_hook(lambda _, args: inputs.append((args[0], args[0].clone())))
        for stage in model.stages
        for block in stage
    ]
    with torch.no_grad():  # the residual adds go into the blocks' own outputs
        model(x)
    for hook in hooks:
        hook.remove()
    assert len(inputs) == sum(model.depths)
    for given, before in inputs:
        assert torch.equal(given, before)


def test_inference_under_autocast_keeps_each_sums_promoted_dtype():
    # no layer scales: pwconv2's bfloat16 output meets the residual as it is
    model = _random_model(layer_scale_init_value=0.0)
    block = ConvEncoder(24, layer_scale_init_value=0.0).eval()
    x, features = torch.randn(1, 3, 64, 96), torch.randn(1, 24, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with torch.enable_grad():  # out-of-place adds
            expected, expected_block = model(x), block(features)
        with torch.no_grad():
            got, got_block = model(x), block(features)
            # the float32 oneDNN kernels stand aside: autocast's bfloat16 is what was asked for
            assert not {"mkldnn::_linear_pointwise", "mkldnn::_convolution_pointwise"} & (
                _profiled_ops(model.fuse(), x)
            )
    # a float32 input plus the bfloat16 bottleneck is float32, in place or not
    assert got_block.dtype == expected_block.dtype == torch.float32
    torch.testing.assert_close(got_block, expected_block.detach())
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype
        scale = float(b.detach().float().abs().max())
        torch.testing.assert_close(a.float(), b.detach().float(), rtol=0.05, atol=0.05 * scale)


def test_fused_kernels_are_never_traced():
    model = _random_model()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        traced = torch.jit.trace(model, x, check_trace=False)
    graph = str(traced.inlined_graph)
    assert "_convolution_pointwise" not in graph and "_linear_pointwise" not in graph
    _assert_outputs_close(traced(x), plain_forward(model, x))


def _conv_input_shapes(fn) -> list:
    with torch.profiler.profile(record_shapes=True) as prof:
        fn()
    return [e.input_shapes[0] for e in prof.events() if e.name == "aten::convolution"]


@pytest.mark.parametrize("size, dilation", [((32, 32), 2), ((33, 31), 2), ((20, 23), 4)])
def test_dilated_9x9_depthwise_runs_undilated_over_the_phase_grids(size, dilation):
    torch.manual_seed(0)
    conv = nn.Conv2d(24, 24, 9, padding=4 * dilation, dilation=dilation, groups=24)
    x = torch.randn(2, 24, *size).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        expected = conv(x)  # the module itself: oneDNN's dilated kernel
        got = depthwise(conv, x)
        # one undilated convolution over the batch of d*d phase grids
        h, w = (-(-n // dilation) for n in size)
        assert _conv_input_shapes(lambda: depthwise(conv, x)) == [[2 * dilation**2, 24, h, w]]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert got.is_contiguous(memory_format=torch.channels_last)


def test_other_depthwise_convolutions_training_and_traces_run_as_they_are():
    x = torch.randn(1, 16, 24, 24)
    small = nn.Conv2d(16, 16, 7, padding=6, dilation=2, groups=16)  # oneDNN is fast at 7x7
    large = _Depthwise(nn.Conv2d(16, 16, 9, padding=8, dilation=2, groups=16))
    with torch.no_grad():
        assert _conv_input_shapes(lambda: depthwise(small, x)) == [[1, 16, 24, 24]]
    # training keeps the dilated kernel: gradients summed in its order (see depthwise())
    assert _conv_input_shapes(lambda: large(x)) == [[1, 16, 24, 24]]
    with torch.no_grad():
        traced = torch.jit.trace(large, x)
        graph = str(traced.inlined_graph)
        assert graph.count("aten::_convolution") == 1 and "aten::permute" not in graph
        torch.testing.assert_close(traced(x), large.conv(x))


class _Depthwise(nn.Module):
    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise(self.conv, x)


_REORDERS = ("mkldnn::_reorder_convolution_weight", "mkldnn::_reorder_linear_weight")


def test_a_fused_model_reorders_its_weights_once_and_follows_weight_updates(tmp_path):
    model = _random_model().fuse()
    reference = _random_model()
    sizes = [(64, 96), (64, 96), (96, 64), (64, 96)]  # a repeat, a new shape, a shape again
    with torch.no_grad():
        for h, w in sizes:
            x = torch.randn(1, 3, h, w)
            _assert_outputs_close(model(x), plain_forward(reference, x))
        x = torch.randn(1, 3, 64, 96)
        reorders = sum(k in _REORDERS for k in _ops_of(model, x))
        assert reorders == 0  # the same shape again: every weight already in oneDNN's layout
        before = model(x)[0]
        # an in-place update (as load_state_dict makes) is seen, not the cached layout
        model.stages[0][0].pwconv2.weight.mul_(2.0)
        assert [k for k in _ops_of(model, x) if k in _REORDERS] == [
            "mkldnn::_reorder_linear_weight"
        ]
        _assert_outputs_close(model(x), plain_forward(model, x))
        assert not torch.allclose(model(x)[0], before, rtol=1e-3)
        # so is one of the positional encoding's projection, whose output the model keeps
        before = model(x)[1]
        model.stages[1][-1].pos_embd.token_projection.weight.mul_(2.0)
        _assert_outputs_close(model(x), plain_forward(model, x))
        assert not torch.allclose(model(x)[1], before, rtol=1e-3)
    with torch.inference_mode():  # as the benchmark runs it: inference tensors keep no version
        _assert_outputs_close(model(x), plain_forward(model, x))
        built_there = _random_model().fuse()
        _assert_outputs_close(built_there(x), plain_forward(built_there, x))
    # the cache is not module state: a fused model still copies and saves
    copy_ = copy.deepcopy(model)
    torch.save(model, tmp_path / "fused.pth")
    with torch.no_grad():
        _assert_outputs_close(copy_(x), model(x))


def _ops_of(model: nn.Module, x: torch.Tensor) -> list:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model(x)
    return [event.name for event in prof.events()]
