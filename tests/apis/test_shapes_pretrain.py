"""Shapes classification pretraining (the no-download demos' ImageNet stand-in).

Through the public function and ``tools/pretrain_shapes.py``: the crops are deterministic and
labelled, a short run writes a backbone checkpoint in the published layout that the
backbone's ``init_cfg=Pretrained`` loads, and bad arguments are refused.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgenext_dense.apis import init_classifier
from edgenext_dense.apis.shapes_pretrain import (
    RECIPE_VERSION,
    pretrain_shapes_classifier,
    recipe_mismatch,
    render_shape_crops,
)
from edgenext_dense.datasets.synthetic import SHAPE_CLASSES, scene_rng
from edgenext_dense.models.backbones import EdgeNeXt
from edgenext_dense.models.backbones.edgenext_checkpoint import (
    read_edgenext_checkpoint,
    save_official,
)

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools/pretrain_shapes.py"
TINY = dict(iters=2, batch_size=4, img_size=32, num_train=2, num_val=1, log=None)


def test_crops_are_deterministic_labelled_and_split_apart():
    crops, labels = render_shape_crops(3, 32, "train", seed=0)
    again, labels_again = render_shape_crops(3, 32, "train", seed=0)
    val, _ = render_shape_crops(3, 32, "val", seed=0)
    assert crops.dtype == np.uint8 and crops.shape[1:] == (32, 32, 3)
    assert len(crops) == len(labels) >= 3  # every scene holds at least one visible shape
    assert labels.dtype == np.int64 and 0 <= labels.min() and labels.max() < len(SHAPE_CLASSES)
    np.testing.assert_array_equal(crops, again)
    np.testing.assert_array_equal(labels, labels_again)
    assert not np.array_equal(crops[: len(val)], val[: len(crops)])


def test_crops_refuse_bad_arguments():
    with pytest.raises(ValueError, match="at least one scene"):
        render_shape_crops(0, 32, "train", seed=0)
    with pytest.raises(ValueError, match="unknown kind .* or split 'test'"):
        scene_rng(0, "cls", "test", 0)


def test_pretraining_writes_a_published_layout_checkpoint(tmp_path):
    out = tmp_path / "shapes.pth"
    result = pretrain_shapes_classifier(out, arch="xxs", **TINY)
    assert result.path == str(out) and result.arch == "xx_small"
    assert result.classes == SHAPE_CLASSES and 0.0 <= result.val_accuracy <= 1.0

    source = read_edgenext_checkpoint(out)
    assert source.format == "official" and source.arch == "xx_small"
    assert not any(k.startswith(("head.", "norm.")) for k in source.state_dict)  # backbone only
    meta = torch.load(out, map_location="cpu", weights_only=True)["meta"]
    assert meta["classes"] == list(SHAPE_CLASSES) and meta["iters"] == 2
    assert meta["val_accuracy"] == round(result.val_accuracy, 4)

    # the dense configs' path: the backbone's init_cfg loads every backbone tensor
    backbone = EdgeNeXt(
        arch="xx_small", out_indices=(2, 3), init_cfg=dict(type="Pretrained", checkpoint=str(out))
    )
    backbone.init_weights()
    assert backbone.state_dict().keys() == source.state_dict.keys()
    for name, tensor in backbone.state_dict().items():
        torch.testing.assert_close(tensor, source.state_dict[name], rtol=0, atol=0)

    # not a classifier: the classification API says so instead of inventing a head
    with pytest.raises(ValueError, match="no classifier tensors"):
        init_classifier(str(out))


def test_pretraining_is_deterministic(tmp_path):
    first = pretrain_shapes_classifier(tmp_path / "a.pth", **TINY)
    second = pretrain_shapes_classifier(tmp_path / "b.pth", **TINY)
    a = torch.load(first.path, weights_only=True)["state_dict"]
    b = torch.load(second.path, weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_pretraining_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="iters > 0"):
        pretrain_shapes_classifier(tmp_path / "x.pth", **{**TINY, "iters": 0})
    with pytest.raises(ValueError, match="unknown EdgeNeXt arch|arch"):
        pretrain_shapes_classifier(tmp_path / "x.pth", **{**TINY, "arch": "huge"})
    assert not (tmp_path / "x.pth").exists()


def _tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def test_recipe_mismatch_names_what_differs(tmp_path):
    path = tmp_path / "s.pth"
    pretrain_shapes_classifier(path, seed=3, **TINY)
    tiny = {k: v for k, v in TINY.items() if k != "log"}
    assert recipe_mismatch(path, seed=3, **tiny) is None
    assert recipe_mismatch(path, seed=3, **dict(tiny, arch="xxsmall")) is None  # any spelling
    assert recipe_mismatch(path, seed=4, **tiny) == "seed 3 (now 4)"
    assert recipe_mismatch(path, **dict(tiny, iters=5)) == "iters 2 (now 5), seed 3 (now 0)"
    meta = torch.load(path, weights_only=True)["meta"]
    assert meta["recipe"] == RECIPE_VERSION and meta["source_format"] == "shapes-pretrain"
    with pytest.raises(TypeError, match="unknown settings"):
        recipe_mismatch(path, epochs=3)


def test_recipe_mismatch_flags_files_of_an_older_recipe(tmp_path):
    """What the 800-iteration pretraining of an earlier version wrote: no recipe, fewer keys."""
    path = tmp_path / "old.pth"
    old_meta = dict(arch="xx_small", source_format="shapes-pretrain", iters=800, seed=0)
    save_official({}, path, meta=dict(old_meta, img_size=64, val_accuracy=0.8955))
    differs = recipe_mismatch(path)
    assert differs.startswith("iters 800 (now 1600), batch_size unrecorded (now 64)")
    assert f"recipe unrecorded (now {RECIPE_VERSION})" in differs


def test_recipe_mismatch_refuses_unreadable_and_foreign_files(tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="pass --force to overwrite it"):
        recipe_mismatch(broken)
    foreign = tmp_path / "imagenet.pth"
    save_official({}, foreign, meta=dict(source_format="official"))
    with pytest.raises(ValueError, match="source_format='official'"):
        recipe_mismatch(foreign)


@pytest.mark.slow
def test_tool_trains_keeps_an_existing_file_and_reports_bad_input(tmp_path):
    out = tmp_path / "ckpt" / "shapes.pth"
    tiny = ["--iters", "2", "--batch-size", "4", "--img-size", "32"]
    tiny += ["--num-train", "2", "--num-val", "1", "--threads", "1"]
    run = _tool("--out", str(out), *tiny)
    assert run.returncode == 0, run.stderr
    assert "val accuracy" in run.stdout and out.is_file()
    written = out.stat().st_mtime_ns

    again = _tool("--out", str(out), *tiny)
    assert again.returncode == 0 and "keeping it" in again.stdout
    assert out.stat().st_mtime_ns == written

    # other settings than the file's: retrained, and the tool says why
    changed = _tool("--out", str(out), *tiny, "--seed", "1")
    assert changed.returncode == 0, changed.stderr
    assert "trained differently (seed 0 (now 1)); retraining" in changed.stdout
    assert torch.load(out, weights_only=True)["meta"]["seed"] == 1

    # a file the tool did not write is never overwritten without --force
    foreign = tmp_path / "foreign.pth"
    save_official({}, foreign, meta=dict(source_format="official"))
    refused = _tool("--out", str(foreign), *tiny)
    assert (
        refused.returncode == 2 and "not a checkpoint of tools/pretrain_shapes.py" in refused.stderr
    )
    assert torch.load(foreign, weights_only=True)["meta"] == dict(source_format="official")
    forced = _tool("--out", str(foreign), *tiny, "--force")
    assert forced.returncode == 0 and "val accuracy" in forced.stdout

    bad = _tool("--out", str(tmp_path / "bad.pth"), "--iters", "0")
    assert bad.returncode == 2 and "iters > 0" in bad.stderr


@pytest.mark.slow
def test_pretraining_learns_the_shapes(tmp_path):
    # 150 iterations: far above the 1-in-5 of guessing
    result = pretrain_shapes_classifier(
        tmp_path / "s.pth", iters=150, img_size=64, num_train=200, num_val=40, log=None
    )
    assert result.val_accuracy > 0.5
