"""Loading every public EdgeNeXt checkpoint layout strictly, and explaining bad files."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from checkpoint_factory import ARCHS, FORMATS, layout_rows, random_official_state, to_layout

from edgenext_dense.models.backbones import EdgeNeXt
from edgenext_dense.models.backbones.edgenext_checkpoint import (
    CheckpointError,
    convert_to_official,
    detect_format,
    infer_arch,
    load_pretrained,
    read_edgenext_checkpoint,
)


def _features(model: EdgeNeXt, seed: int = 1):
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(x)


@pytest.mark.parametrize("arch", ARCHS)
def test_three_layouts_load_to_identical_backbones(arch, synthetic_checkpoints):
    outputs = {}
    for fmt in FORMATS:
        path, state = synthetic_checkpoints(arch, fmt)
        model = EdgeNeXt(arch)
        report = load_pretrained(model, path)
        assert (report.source.format, report.source.arch) == (fmt, arch)
        # everything but the classifier's final norm and head, which are reported as dropped
        assert report.loaded == len(layout_rows(arch)) - 4
        assert report.dropped == ["head.bias", "head.weight", "norm.bias", "norm.weight"]
        torch.testing.assert_close(
            model.stages[2][0].pwconv1.weight, state["stages.2.0.pwconv1.weight"], rtol=0, atol=0
        )
        outputs[fmt] = _features(model)
    for fmt in ("timm", "mmpretrain"):
        for a, b in zip(outputs["official"], outputs[fmt]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_official_training_file_prefers_ema_and_usi_file_reads_state_dict(synthetic_checkpoints):
    path, state = synthetic_checkpoints("xx_small", "official")
    ema = read_edgenext_checkpoint(path)
    raw = read_edgenext_checkpoint(path, prefer_ema=False)
    torch.testing.assert_close(ema.state_dict["head.bias"], state["head.bias"])
    torch.testing.assert_close(raw.state_dict["head.bias"], state["head.bias"] + 1.0)
    # USI files keep the tensors under 'state_dict', like mmpretrain files: keys decide
    usi_path, _ = synthetic_checkpoints("xx_small", "official", usi=True)
    assert read_edgenext_checkpoint(usi_path).format == "official"


@pytest.mark.parametrize("fmt", FORMATS)
def test_converters_are_pure_and_idempotent(fmt):
    state = to_layout(random_official_state("xx_small"), "xx_small", fmt)
    before = dict(state)
    once = convert_to_official(state, detect_format(state))
    assert state == before  # input untouched
    assert detect_format(once) == "official"
    assert convert_to_official(once, "official") == once
    assert infer_arch(once) == "xx_small"
    assert sorted(once) == sorted(row[0] for row in layout_rows("xx_small"))


def test_detector_checkpoint_of_ours_initialises_a_backbone(tmp_path):
    state = random_official_state("xx_small")
    detector = {
        f"backbone.{k}": v for k, v in state.items() if not k.startswith(("norm.", "head."))
    }
    detector["bbox_head.cls_convs.0.weight"] = torch.zeros(3)
    torch.save({"meta": {"epoch": 3}, "state_dict": detector}, tmp_path / "det.pth")
    model = EdgeNeXt("xx_small", out_indices=(2, 3), output_stride=16)
    report = load_pretrained(model, tmp_path / "det.pth")
    assert report.source.format == "edgenext_dense" and report.dropped == []


def test_wrong_architecture_names_both(synthetic_checkpoints):
    path, _ = synthetic_checkpoints("small", "mmpretrain")
    model = EdgeNeXt("xx_small")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_pretrained(model, path)
    msg = str(info.value)
    assert str(path) in msg and "mmpretrain layout, EdgeNeXt small" in msg
    assert "the model is EdgeNeXt xx_small" in msg and "set arch='small'" in msg
    assert "unexpected in the checkpoint" in msg and "shape mismatches" in msg
    assert "stages.0.2.dwconv.weight" in msg  # small has 3 blocks in stage 0, xx_small 2
    # nothing was loaded
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_missing_and_extra_tensors_are_listed(tmp_path):
    state = random_official_state("xx_small")
    del state["stages.1.1.xca.temperature"]
    state["stages.1.1.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "edited.pth")
    with pytest.raises(CheckpointError) as info:
        load_pretrained(EdgeNeXt("xx_small"), tmp_path / "edited.pth")
    msg = str(info.value)
    assert "missing from the checkpoint (1):\n    stages.1.1.xca.temperature" in msg
    assert "unexpected in the checkpoint (1):\n    stages.1.1.extra.weight" in msg


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth' does not exist"):
        load_pretrained(EdgeNeXt("xx_small"), tmp_path / "nope.pth")


def test_truncated_file_names_the_path(tmp_path, synthetic_checkpoints):
    path, _ = synthetic_checkpoints("xx_small", "timm")
    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth'.*truncated or corrupt"):
        load_pretrained(EdgeNeXt("xx_small"), tmp_path / "cut.pth")


def test_text_file_names_the_path(tmp_path):
    (tmp_path / "notes.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"notes\.pth"):
        load_pretrained(EdgeNeXt("xx_small"), tmp_path / "notes.pth")


def test_non_edgenext_checkpoint_is_named(tmp_path):
    torch.save({"state_dict": {"conv1.weight": torch.zeros(64, 3, 7, 7)}}, tmp_path / "resnet.pth")
    with pytest.raises(CheckpointError, match=r"resnet\.pth' is not an EdgeNeXt checkpoint.*conv1"):
        load_pretrained(EdgeNeXt("xx_small"), tmp_path / "resnet.pth")


def test_init_cfg_pretrained_from_an_mmdet_config(synthetic_checkpoints):
    from mmdet.registry import MODELS

    path, state = synthetic_checkpoints("xx_small", "timm")
    backbone = MODELS.build(
        dict(
            type="edgenext_dense.EdgeNeXt",
            arch="xx_small",
            out_indices=(2, 3),
            init_cfg=dict(type="Pretrained", checkpoint=str(path)),
        )
    )
    backbone.init_weights()
    torch.testing.assert_close(
        backbone.stages[3][1].xca.temperature, state["stages.3.1.xca.temperature"]
    )


def test_init_cfg_pretrained_wrong_arch_fails_loudly(synthetic_checkpoints):
    path, _ = synthetic_checkpoints("x_small", "official")
    backbone = EdgeNeXt("xx_small", init_cfg=dict(type="Pretrained", checkpoint=str(path)))
    with pytest.raises(
        CheckpointError, match="EdgeNeXt x_small but the model is EdgeNeXt xx_small"
    ):
        backbone.init_weights()


def _convert(repo_root, src, dst, check=True):
    script = str(repo_root / "tools/convert_checkpoint.py")
    return subprocess.run(
        [sys.executable, script, str(src), str(dst)], capture_output=True, text=True, check=check
    )


@pytest.mark.slow
def test_convert_tool_round_trip(tmp_path, repo_root, synthetic_checkpoints):
    src, state = synthetic_checkpoints("x_small", "mmpretrain")
    dst = tmp_path / "ours.pth"
    run = _convert(repo_root, src, dst)
    assert "format: mmpretrain" in run.stdout and "arch: x_small" in run.stdout
    assert f"tensors: {len(layout_rows('x_small'))}" in run.stdout
    converted = read_edgenext_checkpoint(dst)
    assert converted.format == "official" and converted.arch == "x_small"
    assert converted.state_dict.keys() == state.keys()
    assert all(torch.equal(converted.state_dict[k], v) for k, v in state.items())
    # and back through the tool again: the same file contents
    again = tmp_path / "again.pth"
    _convert(repo_root, dst, again)
    assert all(
        torch.equal(read_edgenext_checkpoint(again).state_dict[k], v) for k, v in state.items()
    )


@pytest.mark.slow
def test_convert_tool_reports_bad_input(tmp_path, repo_root):
    run = _convert(repo_root, tmp_path / "x.pth", tmp_path / "y.pth", check=False)
    assert run.returncode == 1 and "x.pth' does not exist" in run.stderr
    assert not (tmp_path / "y.pth").exists()
