"""tools/demo/image_seg_demo.py: blended masks with a legend, broken images skipped, checkpoints
of other tasks refused."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings
from mmseg.datasets import PascalVOCDataset
from mmseg.registry import MODELS

from edgenext_dense.apis.loading import load_trained_model
from edgenext_dense.apis.seg_demo import run_seg_demo
from edgenext_dense.datasets.synthetic import make_voc_shapes
from edgenext_dense.engine.preflight import PreflightError
from edgenext_dense.image_files import draw_legend, draw_segmentation

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "configs/seg/deeplabv3_edgenext-xxs_1xb8-1k_shapesvoc-192.py"
VOC_META = dict(
    classes=list(PascalVOCDataset.METAINFO["classes"]),
    palette=[list(c) for c in PascalVOCDataset.METAINFO["palette"]],
)


def _segmentor_state(config: Path) -> dict:
    cfg = Config.fromfile(str(config))
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope("mmseg")
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.init_weights()
    return model.state_dict()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg_demo")
    info = make_voc_shapes(root / "shapes_voc", num_train=1, num_val=2, img_size=96, seed=0)
    images = root / "images"
    images.mkdir()
    for i, src in enumerate(sorted(Path(info["img_dir"]).glob("val_*.jpg"))):
        (images / f"img{i}.jpg").write_bytes(src.read_bytes())
    (images / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (images / "notes.txt").write_text("not an image, not listed")
    ckpt = root / "segmentor.pth"
    torch.save({"state_dict": _segmentor_state(CONFIG), "meta": {"dataset_meta": VOC_META}}, ckpt)
    return dict(root=root, images=images, ckpt=ckpt)


def _run_tool(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, str(REPO / "tools/demo/image_seg_demo.py"), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_folder_is_segmented_and_a_broken_image_is_reported_and_skipped(setup, tmp_path):
    out = tmp_path / "out"
    proc = _run_tool(
        str(setup["images"]), str(CONFIG), "--weights", str(setup["ckpt"]), "--out-dir", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["img0.jpg.png", "img1.jpg.png"]
    assert (
        "2 image(s) processed, 1 skipped" in proc.stderr
        and "broken.jpg is not a readable image" in proc.stderr
    )
    drawn = mmcv.imread(str(out / "img0.jpg.png"))
    original = mmcv.imread(str(setup["images"] / "img0.jpg"))
    # the blended image on the left, the legend panel on the right
    assert drawn.shape[0] >= original.shape[0] and drawn.shape[1] > original.shape[1] + 50
    left = drawn[: original.shape[0], : original.shape[1]].astype(int)
    assert np.abs(left - original.astype(int)).mean() > 5


def test_single_image_with_full_opacity_shows_palette_colours(setup, tmp_path):
    summary = run_seg_demo(
        str(setup["images"] / "img1.jpg"), str(CONFIG), str(setup["ckpt"]),
        out_dir=str(tmp_path), opacity=1.0, log=lambda _: None,
    )  # fmt: skip
    assert summary.results == [str(tmp_path / "img1.jpg.png")] and not summary.skipped
    drawn = mmcv.imread(summary.results[0], channel_order="rgb")[:96, :96]
    palette = {tuple(c) for c in VOC_META["palette"]}
    colours = {tuple(c) for c in drawn.reshape(-1, 3).tolist()}
    assert colours <= palette  # opacity 1: only class colours, nothing of the photo


def test_drawing_blends_and_lists_the_classes_present():
    image = np.full((40, 60, 3), 200, np.uint8)
    labels = np.zeros((40, 60), np.int64)
    labels[:, 30:] = 15  # person on the right half
    drawn = draw_segmentation(image, labels, VOC_META, opacity=1.0)[..., ::-1]  # RGB
    assert drawn.shape[0] >= 40 and drawn.shape[1] > 60
    assert tuple(drawn[10, 45]) == (192, 128, 128)  # person in the VOC palette (RGB)
    assert tuple(drawn[10, 5]) == (0, 0, 0)  # background
    half = draw_segmentation(image, labels, VOC_META, opacity=0.5)[..., ::-1]
    assert tuple(half[10, 45]) == (196, 164, 164)  # (200 + colour) / 2
    legend = draw_legend(labels, VOC_META["classes"], VOC_META["palette"], 40)
    colours = {tuple(c) for c in legend.reshape(-1, 3).tolist()}
    assert (192, 128, 128) in colours and (0, 0, 0) in colours
    assert (128, 0, 0) not in colours  # aeroplane is absent, so not in the legend


@pytest.mark.parametrize(
    "state, looks_like",
    [
        ({"downsample_layers.0.0.weight": torch.zeros(1), "head.fc.weight": torch.zeros(1)},
         "image-classification checkpoint"),
        ({"backbone.stem.weight": torch.zeros(1), "neck.x": torch.zeros(1),
          "bbox_head.cls_convs.0.weight": torch.zeros(1)}, "detection model"),
    ],
    ids=["classifier", "detector"],
)  # fmt: skip
def test_checkpoint_of_another_task_is_refused(tmp_path, state, looks_like):
    ckpt = tmp_path / "other.pth"
    torch.save({"state_dict": state}, ckpt)
    with pytest.raises(PreflightError, match=f"not a segmentor for this config.*{looks_like}"):
        load_trained_model(str(CONFIG), str(ckpt), "seg")


@pytest.mark.slow
def test_tool_refuses_a_classification_checkpoint(setup, tmp_path):
    ckpt = tmp_path / "edgenext_small.pth"
    torch.save({"model": {"downsample_layers.0.0.weight": torch.zeros(1)}}, ckpt)
    proc = _run_tool(str(setup["images"]), str(CONFIG), "--weights", str(ckpt))
    assert proc.returncode == 1
    assert "image-classification checkpoint" in proc.stderr and str(ckpt) in proc.stderr


def test_checkpoint_of_another_segmentor_is_refused(setup, tmp_path):
    ckpt = tmp_path / "s.pth"
    torch.save({"state_dict": _segmentor_state(REPO / "configs/seg/deeplabv3_edgenext_voc.py")},
               ckpt)  # fmt: skip
    with pytest.raises(ValueError, match="does not fit .*shapesvoc"):
        load_trained_model(str(CONFIG), str(ckpt), "seg")


def test_bad_arguments(setup, tmp_path):
    with pytest.raises(ValueError, match="opacity must be in"):
        run_seg_demo(str(setup["images"]), str(CONFIG), str(setup["ckpt"]), opacity=0)
    with pytest.raises(FileNotFoundError, match="neither an image file nor a folder"):
        run_seg_demo(str(tmp_path / "nothing"), str(CONFIG), str(setup["ckpt"]))
    with pytest.raises(PreflightError, match="does not exist"):
        run_seg_demo(str(setup["images"]), str(CONFIG), str(tmp_path / "missing.pth"))
