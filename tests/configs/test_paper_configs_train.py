"""Both paper configs train a few iterations of their exact pipelines on generated data.

The detector reads a tiny COCO 2017-format set with the 80 official categories; the segmenter
reads a VOC + SBD layout plus that COCO set relabelled by ``coco_to_voc_seg.py``, as the paper's
recipe does. Only data roots, batch sizes, workers and the number of epochs are overridden.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from coco_factory import write_coco
from tool_runner import REPO, run, tool

from edgenext_dense.datasets.synthetic import make_voc_shapes

pytestmark = pytest.mark.slow


def _loader_opts(prefix: str, batch: int) -> list:
    return [
        f"{prefix}.batch_size={batch}",
        f"{prefix}.num_workers=0",
        f"{prefix}.persistent_workers=False",
    ]


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("coco")
    write_coco(root, "train2017", 4, seed=0)
    write_coco(root, "val2017", 2, seed=1)
    return root


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> Path:
    """VOC2012 with SegmentationClassAug/ and aug.txt, as voc_aug.py leaves it."""
    info = make_voc_shapes(tmp_path_factory.mktemp("voc") / "VOCdevkit", 4, 2, 256, seed=0)
    root = Path(info["data_root"])
    shutil.copytree(root / "SegmentationClass", root / "SegmentationClassAug")
    sets = root / "ImageSets" / "Segmentation"
    shutil.copy(sets / "train.txt", sets / "aug.txt")
    return root


def _metrics_line(log: str, key: str) -> str:
    lines = [line for line in log.splitlines() if key in line]
    assert lines, f"no line with {key!r} in the output:\n{log[-3000:]}"
    return lines[-1]


def test_det_paper_config(coco_root, synthetic_checkpoints, tmp_path):
    ckpt, _ = synthetic_checkpoints("small", "mmpretrain")
    work = tmp_path / "work"
    opts = [
        f"model.backbone.init_cfg.checkpoint={ckpt}",
        "train_cfg.max_epochs=1",
        "train_cfg.val_interval=1",
        "model.test_cfg.score_thr=0.005",  # two iterations in, no class reaches 0.05
        *_loader_opts("train_dataloader", 2),
        *_loader_opts("val_dataloader", 2),
        *_loader_opts("test_dataloader", 2),
    ]
    for loader in ("train", "val", "test"):
        opts.append(f"{loader}_dataloader.dataset.data_root={coco_root}/")
    for evaluator in ("val", "test"):
        opts.append(
            f"{evaluator}_evaluator.ann_file={coco_root}/annotations/instances_val2017.json"
        )
    config = str(REPO / "configs/det/ssdlite_edgenext_coco.py")
    proc = run(tool("train.py", config, "--work-dir", str(work), "--cfg-options", *opts), tmp_path)
    log = proc.stdout + proc.stderr
    assert "CvnetsSSDRandomCrop" in (work / "ssdlite_edgenext_coco.py").read_text()
    # validation scores the averaged and the raw weights
    line = _metrics_line(log, "raw/coco/bbox_mAP")
    assert "coco/bbox_mAP:" in line.replace("raw/coco/bbox_mAP:", "")
    saved = torch.load(work / "epoch_1.pth", map_location="cpu", weights_only=False)
    assert "ema_state_dict" in saved and "steps" in saved["ema_state_dict"]
    # tools/test.py reports both too
    test = run(tool("test.py", config, str(work / "epoch_1.pth"), "--cfg-options", *opts), tmp_path)
    assert "raw/coco/bbox_mAP" in test.stdout and "\n  coco/bbox_mAP" in test.stdout


def test_seg_paper_config_with_coco(coco_root, voc_root, synthetic_checkpoints, tmp_path):
    converted = run(
        tool("dataset_converters/coco_to_voc_seg.py", str(coco_root), "--split", "train2017"),
        tmp_path,
    )
    kept = (coco_root / "voc_seg" / "train2017.txt").read_text().split()
    assert kept, converted.stdout
    ckpt, _ = synthetic_checkpoints("small", "official")
    work = tmp_path / "work"
    opts = [
        f"model.backbone.init_cfg.checkpoint={ckpt}",
        f"train_dataloader.dataset.datasets.0.data_root={voc_root}",
        f"train_dataloader.dataset.datasets.1.data_root={coco_root}",
        f"val_dataloader.dataset.data_root={voc_root}",
        f"test_dataloader.dataset.data_root={voc_root}",
        "train_cfg.max_epochs=1",
        *_loader_opts("train_dataloader", 2),
        *_loader_opts("val_dataloader", 1),
        *_loader_opts("test_dataloader", 1),
    ]
    config = str(REPO / "configs/seg/deeplabv3_edgenext_voc.py")
    proc = run(tool("train.py", config, "--work-dir", str(work), "--cfg-options", *opts), tmp_path)
    log = proc.stdout + proc.stderr
    # one epoch over VOC + SBD (4) and the relabelled COCO images, batches of 2
    iters = (4 + len(kept)) // 2
    assert f"Epoch(train) [1][{iters}/{iters}]" in log
    dumped = (work / "deeplabv3_edgenext_voc.py").read_text()
    assert "CvnetsRandomResizeCrop" in dumped and "voc_seg/train2017" in dumped
    line = _metrics_line(log, "raw/mIoU")
    assert "mIoU:" in line.replace("raw/mIoU:", "")
