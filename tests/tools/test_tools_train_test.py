"""End to end through the real scripts: tools/train.py, --resume, tools/test.py, dist_train.sh.

Each test trains a tiny EdgeNeXt-XXS model for a few iterations on a generated shapes dataset
(96 px images), in subprocesses as a user runs them, and checks what a user would look at:
checkpoints, the iteration a resumed run reaches, the metrics test.py prints, curves.png, and
the error messages for a missing dataset or a checkpoint of the wrong kind.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import socket
import subprocess
import sys

import pytest
import torch
from tool_runner import REPO, run, tool, tool_env
from trained_like import random_checkpoint

from edgenext_dense.datasets.synthetic import make_coco_shapes, make_voc_shapes

pytestmark = pytest.mark.slow

IMG_SIZE = 96
DET_CLASSES = ("circle", "rectangle", "triangle")

# The project's configs, shrunk: EdgeNeXt-XXS, backbone init off, 96 px images, training batch 2
# (BN after global pooling needs 2), a few iterations, logs every iteration.
# Detection: 4 training images = 2 iterations per epoch.
DET_CONFIG = """
_base_ = '{repo}/configs/det/ssdlite_edgenext-xxs_4xb32-200e_coco-320.py'
data_root = '{data_root}/'
metainfo = dict(classes={classes})
size = {size}
model = dict(
    backbone=dict(init_cfg=None),
    bbox_head=dict(num_classes={num_classes}, anchor_generator=dict(input_size=size)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3),
    dict(type='Resize', scale=(size, size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(size, size), keep_ratio=False),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
log_processor = dict(window_size=1)
randomness = dict(seed=0)
"""

SEG_CONFIG = """
_base_ = '{repo}/configs/seg/deeplabv3_edgenext-xxs_4xb32-50e_voc12aug-512.py'
data_root = '{data_root}'
size = {size}
model = dict(
    data_preprocessor=dict(size=(size, size)),
    backbone=dict(init_cfg=None))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCheckedAnnotations', num_classes=21),
    dict(type='RandomResize', scale=(2 * size, size), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(size, size), cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='Pad', size=(size, size)),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2 * size, size), keep_ratio=True),
    dict(type='LoadCheckedAnnotations', num_classes=21),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, ann_file='ImageSets/Segmentation/train.txt',
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
# Segmentation: 2 training images = 1 iteration per epoch.
train_cfg = dict(max_epochs=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
log_processor = dict(window_size=1)
randomness = dict(seed=0)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def det_setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("det")
    make_coco_shapes(
        root / "shapes_coco", num_train=4, num_val=2, img_size=IMG_SIZE, seed=0, classes=DET_CLASSES
    )
    config = root / "ssd_edgenext-xxs_tiny_shapes.py"
    config.write_text(
        DET_CONFIG.format(
            repo=REPO,
            data_root=root / "shapes_coco",
            classes=DET_CLASSES,
            num_classes=len(DET_CLASSES),
            size=IMG_SIZE,
        )
    )
    return dict(root=root, config=config)


@pytest.fixture(scope="module")
def seg_setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("seg")
    info = make_voc_shapes(root / "shapes_voc", num_train=2, num_val=2, img_size=IMG_SIZE, seed=0)
    config = root / "fcn_edgenext-xxs_tiny_shapes.py"
    config.write_text(SEG_CONFIG.format(repo=REPO, data_root=info["data_root"], size=IMG_SIZE))
    return dict(root=root, config=config)


def test_det_train_resume_test(det_setup) -> None:
    root, config = det_setup["root"], str(det_setup["config"])
    work = root / "work"
    # 1 epoch of 2 iterations, a checkpoint, a validation.
    first = run(tool("train.py", config, "--work-dir", str(work)), cwd=root)
    assert (work / "epoch_1.pth").is_file()
    assert "loss_cls" in first.stdout and "eta:" in first.stdout
    assert "coco/bbox_mAP" in first.stdout
    # --resume without a path picks the latest checkpoint and continues to epoch 2 (iter 4);
    # this loads mmengine's own checkpoint (HistoryBuffer inside) under torch's weights_only.
    second = run(
        tool(
            "train.py",
            config,
            "--work-dir",
            str(work),
            "--resume",
            "--cfg-options",
            "train_cfg.max_epochs=2",
        ),
        cwd=root,
    )
    assert "Resumed from" in second.stdout or "resumed" in second.stdout.lower()
    assert "Epoch(train) [1]" not in second.stdout, "resume restarted from epoch 1"
    assert "Epoch(train) [2][2/2]" in second.stdout
    assert (work / "epoch_2.pth").is_file()
    ckpt = torch.load(work / "epoch_2.pth", map_location="cpu", weights_only=False)
    assert ckpt["meta"]["iter"] == 4 and ckpt["meta"]["epoch"] == 2
    # curves.png: loss of all 4 iterations (continued across the resume) and 2 validations.
    assert (work / "curves.png").stat().st_size > 5000
    curves = json.loads((work / "curves.json").read_text())
    assert curves["train"]["loss"][0] == [1, 2, 3, 4]
    assert curves["val"]["coco/bbox_mAP"][0] == [2, 4]

    # test.py prints the COCO metrics and dumps predictions.
    out_pkl = root / "results.pkl"
    show_dir = root / "show"
    tested = run(
        tool(
            "test.py",
            config,
            str(work / "epoch_2.pth"),
            "--work-dir",
            str(root / "test_work"),
            "--out",
            str(out_pkl),
            "--show-dir",
            str(show_dir),
        ),
        cwd=root,
    )
    for name in (
        "bbox_mAP",
        "bbox_mAP_50",
        "bbox_mAP_75",
        "bbox_mAP_s",
        "bbox_mAP_m",
        "bbox_mAP_l",
    ):
        # small objects only in 96 px images: medium/large are "n/a" (pycocotools' -1)
        assert re.search(rf"coco/{name}\s+(\d\.\d{{4}}|n/a)", tested.stdout), name
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all" in tested.stdout
    with open(out_pkl, "rb") as f:
        predictions = pickle.load(f)
    assert len(predictions) == 2 and "pred_instances" in predictions[0]
    assert len(list(show_dir.rglob("*.jpg"))) == 2


def test_det_dist_train_two_cpu_processes(det_setup) -> None:
    root, config = det_setup["root"], str(det_setup["config"])
    work = root / "work_dist"
    env_port = str(_free_port())
    proc = subprocess.run(
        ["bash", str(REPO / "tools" / "dist_train.sh"), config, "2", "--work-dir", str(work)],
        cwd=root,
        env={**tool_env(), "PORT": env_port, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    text = proc.stdout + proc.stderr
    assert "gloo" in text
    assert re.search(r"Distributed training: True", text)
    assert re.search(r"GPU number: 2", text)  # mmengine logs the world size under this name
    # 2 images over 2 processes at batch 1: one iteration per epoch.
    assert "Epoch(train) [1][1/1]" in text
    assert (work / "epoch_1.pth").is_file()


def test_seg_train_resume_test(seg_setup) -> None:
    root, config = seg_setup["root"], str(seg_setup["config"])
    work = root / "work"
    first = run(tool("train.py", config, "--work-dir", str(work)), cwd=root)
    assert "decode.loss_ce" in first.stdout and "mIoU" in first.stdout
    assert (work / "epoch_2.pth").is_file()
    resumed = run(
        tool(
            "train.py",
            config,
            "--work-dir",
            str(work),
            "--resume",
            str(work / "epoch_2.pth"),
            "--cfg-options",
            "train_cfg.max_epochs=4",
        ),
        cwd=root,
    )
    assert re.findall(r"Epoch\(train\) \[(\d+)\]\[1/1\]", resumed.stdout) == ["3", "4"]
    ckpt = torch.load(work / "epoch_4.pth", map_location="cpu", weights_only=False)
    assert ckpt["meta"]["iter"] == 4
    show_dir = root / "show"
    tested = run(
        tool(
            "test.py",
            config,
            str(work / "epoch_4.pth"),
            "--work-dir",
            str(root / "test_work"),
            "--show-dir",
            str(show_dir),
        ),
        cwd=root,
    )
    assert re.search(r"mIoU\s+\d+\.\d{4}", tested.stdout)
    # --show-dir: one coloured prediction per val image
    assert len(list((show_dir / "vis_data" / "vis_image").glob("*.png"))) == 2
    assert re.search(r"aAcc\s+\d+\.\d{4}", tested.stdout)
    # mmseg's per-class table lists all 21 VOC classes.
    assert "per class results" in tested.stdout
    for name in ("background", "aeroplane", "tvmonitor"):
        assert re.search(rf"\|\s*{name}\s*\|", tested.stdout), name


def test_fresh_checkout_without_data_or_checkpoint(det_setup, tmp_path) -> None:
    """The paper's config run where nothing was downloaded: data first, then the checkpoint."""
    config = str(REPO / "configs/det/ssdlite_edgenext_coco.py")
    proc = run(tool("train.py", config), cwd=tmp_path, expect_ok=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "data/coco/   (train_dataloader, CocoDataset)" in proc.stderr
    for part in ("instances_train2017.json", "train2017/", "val2017/"):
        assert part in proc.stderr
    assert "make_shapes_dataset.py det" in proc.stderr
    assert not (tmp_path / "work_dirs").exists()  # stopped before the Runner was built

    # With the data in place, the ImageNet checkpoint of the backbone is the next thing missing.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "coco").symlink_to(det_setup["root"] / "shapes_coco")
    proc = run(tool("train.py", config), cwd=tmp_path, expect_ok=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "the classification checkpoint checkpoints/edgenext_small.pth does not exist" in (
        proc.stderr
    )
    assert "--cfg-options model.backbone.init_cfg=None" in proc.stderr


def test_classification_checkpoint_refused_by_test_py(det_setup, tmp_path) -> None:
    # An EdgeNeXt ImageNet checkpoint passed as detector weights.
    cls_ckpt = tmp_path / "edgenext_xx_small.pth"
    state = ("stages.0.0.dwconv.weight", "downsample_layers.0.0.weight", "head.weight")
    torch.save({"model": {k: torch.zeros(1) for k in state}}, cls_ckpt)
    proc = run(
        tool("test.py", str(det_setup["config"]), str(cls_ckpt), "--work-dir", str(tmp_path / "w")),
        cwd=tmp_path,
        expect_ok=False,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"the checkpoint {cls_ckpt} is not a detector for this config" in proc.stderr
    assert "image-classification checkpoint" in proc.stderr and "'bbox_head.'" in proc.stderr


def test_checkpoint_of_another_arch_refused_by_test_py(det_setup, tmp_path) -> None:
    """An xx_small detector's weights with an x_small config: refused, not scored at 0.001."""
    ckpt = random_checkpoint(det_setup["config"], "det", tmp_path / "xxs.pth", DET_CLASSES, 0)
    x_small = tmp_path / "ssd_edgenext-xs_tiny_shapes.py"
    x_small.write_text(
        f"_base_ = '{det_setup['config']}'\n"
        "model = dict(backbone=dict(arch='x_small'), neck=dict(in_channels=(100, 192)),\n"
        "             bbox_head=dict(in_channels=(100, 192, 256, 128, 128, 64)))\n"
    )
    proc = run(
        tool("test.py", str(x_small), str(ckpt), "--work-dir", str(tmp_path / "w")),
        cwd=tmp_path,
        expect_ok=False,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert str(ckpt) in proc.stderr and "does not fit" in proc.stderr
    assert "another shape" in proc.stderr and "backbone." in proc.stderr
    assert "coco/bbox_mAP" not in proc.stdout


def test_segmentation_checkpoint_refused_as_load_from(det_setup, seg_setup, tmp_path) -> None:
    classes = [f"c{i}" for i in range(21)]
    seg_ckpt = random_checkpoint(seg_setup["config"], "seg", tmp_path / "seg.pth", classes, 0)
    proc = run(
        tool(
            "train.py",
            str(det_setup["config"]),
            "--work-dir",
            str(tmp_path / "w"),
            "--cfg-options",
            f"load_from={seg_ckpt}",
        ),
        cwd=tmp_path,
        expect_ok=False,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"the checkpoint {seg_ckpt} is not a detector" in proc.stderr
    assert "a segmentation model" in proc.stderr


def test_truncated_checkpoint_refused_by_train_resume(det_setup, tmp_path) -> None:
    """A fragment given to --resume: its name and what to do, not torch's traceback."""
    fragment = tmp_path / "epoch_2.pth"
    buffer = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, buffer)
    fragment.write_bytes(buffer.getvalue()[:1500])
    proc = run(
        tool(
            "train.py",
            str(det_setup["config"]),
            "--work-dir",
            str(tmp_path / "w"),
            "--resume",
            str(fragment),
        ),  # fmt: skip
        cwd=tmp_path,
        expect_ok=False,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert str(fragment) in proc.stderr and "weights_only=False" not in proc.stderr
