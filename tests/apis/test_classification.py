"""ImageNet classification as the model zoo does it: same logits, same preprocessing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from edgenext_dense.apis import imagenet_classes, inference_classifier, init_classifier
from edgenext_dense.apis.classification import preprocess
from edgenext_dense.model_zoo import MODELS, get_model_info


def _image(path, size=(300, 200), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    rgb = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.float32)
    rgb += rng.normal(0, 20, rgb.shape)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path


needs_reference = pytest.mark.skipif(
    importlib.util.find_spec("mmpretrain") is None and not os.environ.get("CI"),
    reason="the reference (mmpretrain 1.2.0, installed --no-deps by tools/setup.sh) is absent",
)


@needs_reference
@pytest.mark.parametrize("arch,mm_arch", [("xx_small", "xxsmall"), ("small", "small")])
@pytest.mark.slow
def test_logits_equal_the_model_zoo_implementation(
    arch, mm_arch, tmp_path, repo_root, synthetic_checkpoints
):
    path, _ = synthetic_checkpoints(arch, "mmpretrain")
    inputs = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(3))
    torch.save(inputs, tmp_path / "inputs.pt")
    subprocess.run(
        [
            sys.executable,
            str(repo_root / "tests/reference/mmpretrain_logits.py"),
            mm_arch,
            str(path),
            str(tmp_path / "inputs.pt"),
            str(tmp_path / "ref.pt"),
        ],
        check=True,
        capture_output=True,
    )
    reference = torch.load(tmp_path / "ref.pt", weights_only=True)
    model = init_classifier(path)
    with torch.no_grad():
        ours = model(inputs)
    assert ours.shape == (2, 1000) and float(reference.std()) > 0.1  # logits are not trivial
    # We keep the authors' LayerNorm eps (1e-6 everywhere, as timm); mmpretrain's port uses
    # 1e-5 in the SDTA blocks' two norms and the final norm. That is the only difference:
    # with its eps our logits match to float rounding ...
    for block in model.backbone.stages[1:]:
        block[-1].norm_xca.eps = block[-1].norm.eps = 1e-5
    model.norm.eps = 1e-5
    with torch.no_grad():
        torch.testing.assert_close(model(inputs), reference, rtol=0, atol=1e-5)
    # ... and with the authors' eps they differ by under 1e-4 of the logits' scale.
    scale = float(reference.abs().max())
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-4 * scale)


@needs_reference
@pytest.mark.parametrize("fuse", (False, True))
@pytest.mark.slow
def test_fast_backbone_equals_the_plain_implementation(
    fuse, tmp_path, repo_root, synthetic_checkpoints
):
    """Our optimised forward (channels-last, cached encodings, optionally fused constants)
    against mmpretrain's straightforward one, at all four strides on an odd-sized input."""
    from edgenext_dense.models.backbones import EdgeNeXt
    from edgenext_dense.models.backbones.edgenext_checkpoint import load_pretrained

    path, _ = synthetic_checkpoints("x_small", "mmpretrain")
    inputs = torch.randn(1, 3, 97, 161, generator=torch.Generator().manual_seed(4))
    torch.save(inputs, tmp_path / "inputs.pt")
    script = str(repo_root / "tests/reference/mmpretrain_logits.py")
    args = [
        "xsmall",
        str(path),
        str(tmp_path / "inputs.pt"),
        str(tmp_path / "ref.pt"),
        "--features",
    ]
    subprocess.run([sys.executable, script, *args], check=True, capture_output=True)
    reference = torch.load(tmp_path / "ref.pt", weights_only=True)
    model = EdgeNeXt("x_small")
    load_pretrained(model, path)
    model = model.fuse() if fuse else model.eval()
    with torch.no_grad():
        ours = model(inputs)
    for a, b in zip(ours, reference):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4 * float(b.abs().max()))


def test_arch_and_preprocessing_inferred_from_checkpoint(synthetic_checkpoints):
    path, _ = synthetic_checkpoints("x_small", "timm")
    model = init_classifier(path)
    assert model.backbone.arch == "x_small" and model.resize_short == 292
    usi_path, _ = synthetic_checkpoints("xx_small", "official", usi=True)
    usi_named = usi_path.with_name("edgenext_xx_small_usi.pth")
    usi_named.write_bytes(usi_path.read_bytes())
    assert init_classifier(usi_named).resize_short == 269


def test_inference_result_fields(tmp_path, synthetic_checkpoints):
    path, _ = synthetic_checkpoints("xx_small", "official")
    model = init_classifier(path)
    image = _image(tmp_path / "img.png")
    result = inference_classifier(model, str(image))
    assert set(result) == {"pred_label", "pred_score", "pred_class", "topk"}
    scores = [t["score"] for t in result["topk"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
    assert result["pred_class"] == imagenet_classes()[result["pred_label"]]
    assert result["pred_score"] == scores[0]
    # a BGR array (what mmcv.imread returns) gives the same answer as the path
    bgr = np.asarray(Image.open(image).convert("RGB"))[..., ::-1].copy()
    assert inference_classifier(model, bgr)["topk"] == result["topk"]


def test_preprocessing_is_resize_short_then_center_crop(tmp_path):
    # a 400x200 image: short side 200 -> 292 (long side 584), then the central 256x256
    img = np.zeros((200, 400, 3), np.uint8)
    img[:, 196:204] = 255  # a white vertical bar at the center stays centered
    tensor = preprocess(img, resize_short=292, crop_size=256)
    assert tensor.shape == (1, 3, 256, 256)
    bright = (tensor[0, 0].mean(0) > 0).nonzero().flatten().float()
    assert abs(float(bright.mean()) - 127.5) <= 1 and 10 <= len(bright) <= 14  # 8 px * 1.46
    mean_red = (0 - 123.675) / 58.395
    assert abs(float(tensor[0, 0, 0, 0]) - mean_red) < 1e-5  # RGB order, ImageNet mean/std


def test_imagenet_classes():
    names = imagenet_classes()
    assert (
        len(names) == 1000
        and names[0].startswith("tench")
        and names[999].startswith("toilet tissue")
    )


def test_model_zoo_names():
    assert sorted(MODELS) == sorted(
        [
            "edgenext-xxsmall_3rdparty_in1k",
            "edgenext-xsmall_3rdparty_in1k",
            "edgenext-small_3rdparty_in1k",
            "edgenext-small-usi_3rdparty_in1k",
            "edgenext-base_3rdparty_in1k",
            "edgenext-base_3rdparty-usi_in1k",
        ]
    )
    usi = get_model_info("edgenext-small-usi_3rdparty_in1k")
    assert (usi.arch, usi.resize_short, usi.top1) == ("small", 269, 81.06)
    assert get_model_info("edgenext-xxsmall_3rdparty_in1k").resize_short == 292


def test_named_model_without_local_file_says_what_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGENEXT_CHECKPOINTS", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        init_classifier("edgenext-base_3rdparty-usi_in1k")
    msg = str(info.value)
    assert "https://download.openmmlab.com/mmclassification/v0/edgenext/" in msg
    assert str(tmp_path / "edgenext-base_3rdparty-usi_in1k_20220801-909e8939.pth") in msg


def test_named_model_with_local_file(tmp_path, monkeypatch, synthetic_checkpoints):
    monkeypatch.setenv("EDGENEXT_CHECKPOINTS", str(tmp_path))
    path, _ = synthetic_checkpoints("xx_small", "mmpretrain")
    info = get_model_info("edgenext-xxsmall_3rdparty_in1k")
    (tmp_path / info.filename).write_bytes(path.read_bytes())
    model = init_classifier(info.name)
    assert model.backbone.arch == "xx_small" and model.resize_short == 292


def test_backbone_only_checkpoint_cannot_classify(tmp_path, synthetic_checkpoints):
    _, state = synthetic_checkpoints("xx_small", "official")
    torch.save({k: v for k, v in state.items() if not k.startswith("head.")}, tmp_path / "bb.pth")
    with pytest.raises(ValueError, match="no classifier tensors"):
        init_classifier(tmp_path / "bb.pth")


def test_bad_images(tmp_path, synthetic_checkpoints):
    model = init_classifier(synthetic_checkpoints("xx_small", "timm")[0])
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        inference_classifier(model, tmp_path / "missing.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match="broken.jpg is not a readable image"):
        inference_classifier(model, tmp_path / "broken.jpg")
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        inference_classifier(model, np.zeros((10, 10), np.float32))


@pytest.mark.slow
def test_demo_script_prints_prediction(tmp_path, repo_root, synthetic_checkpoints):
    path, _ = synthetic_checkpoints("xx_small", "mmpretrain")
    image = _image(tmp_path / "img.jpg")
    script = str(repo_root / "tools/demo/image_classify.py")
    run = subprocess.run(
        [sys.executable, script, str(image), "--checkpoint", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(run.stdout.split("\n", 1)[1])
    assert run.stdout.startswith(result["pred_class"]) and len(result["topk"]) == 5
    bad = subprocess.run(
        [sys.executable, script, str(image), "--checkpoint", "edgenext-small_3rdparty_in1k"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert bad.returncode == 1 and "download.openmmlab.com" in bad.stderr
