"""tools/demo/image_demo.py: drawings and JSON per image, skipped broken files, clear refusals.

The detector is the shapes demo config's (EdgeNeXt-XXS SSDLite, 5 classes) with untrained
weights saved as ``tools/train.py`` saves them (``meta.dataset_meta`` + ``state_dict``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mmcv
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from edgenext_dense.apis.det_demo import main

REPO = Path(__file__).resolve().parents[2]
SHAPES_CONFIG = next((REPO / "configs/det").glob("ssdlite_edgenext-xxs_*_shapes-*.py"))
COCO_CONFIG = REPO / "configs/det/ssdlite_edgenext-xxs_4xb32-200e_coco-320.py"


@pytest.fixture(scope="module")
def detector_ckpt(tmp_path_factory) -> Path:
    cfg = Config.fromfile(str(SHAPES_CONFIG))
    init_default_scope("mmdet")
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp("ckpt") / "epoch_1.pth"
    meta = dict(dataset_meta=dict(classes=cfg.classes), epoch=1, iter=1)
    torch.save(dict(meta=meta, state_dict=model.state_dict()), path)
    return path


@pytest.fixture()
def image_dir(tmp_path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    img = np.full((240, 360, 3), 200, dtype=np.uint8)
    img[60:180, 100:220] = (30, 60, 220)
    mmcv.imwrite(img, str(folder / "good.jpg"))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, not listed")
    return folder


def test_folder_writes_drawings_and_json_and_skips_broken_images(
    detector_ckpt, image_dir, tmp_path, capsys
) -> None:
    out = tmp_path / "out"
    argv = [str(image_dir), str(SHAPES_CONFIG), "--weights", str(detector_ckpt)]
    code = main([*argv, "--out-dir", str(out), "--score-thr", "0.0"])
    captured = capsys.readouterr()
    assert code == 0, captured.err

    # the good image: a drawing of the same size and a JSON file, also printed on stdout
    drawn = mmcv.imread(str(out / "vis/good.jpg"))
    assert drawn is not None and drawn.shape == (240, 360, 3)
    record = json.loads((out / "preds/good.jpg.json").read_text())
    (printed,) = [json.loads(line) for line in captured.out.splitlines()]
    assert printed["detections"] == record["detections"]
    assert (record["height"], record["width"]) == (240, 360)
    assert record["detections"], "an untrained head still scores every class above 0"
    for det in record["detections"]:
        assert det["class"] in ("circle", "rectangle", "triangle", "star", "cross")
        x1, y1, x2, y2 = det["bbox"]
        assert 0 <= x1 <= x2 <= 360 and 0 <= y1 <= y2 <= 240
    scores = [d["score"] for d in record["detections"]]
    assert scores == sorted(scores, reverse=True)

    # the broken and the empty file: reported with their path and a reason, then skipped
    assert "skipped" in captured.err and "broken.jpg" in captured.err
    assert "not a readable image" in captured.err
    assert "empty.png" in captured.err and "empty (0 bytes)" in captured.err
    assert "1 image(s) processed, 2 skipped" in captured.err
    assert sorted(p.name for p in (out / "vis").iterdir()) == ["good.jpg"]


def test_score_threshold_filters_detections(detector_ckpt, image_dir, tmp_path, capsys) -> None:
    image = str(image_dir / "good.jpg")
    argv = [image, str(SHAPES_CONFIG), "--weights", str(detector_ckpt), "--out-dir"]
    assert main([*argv, str(tmp_path / "a"), "--score-thr", "0.99"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert all(d["score"] >= 0.99 for d in record["detections"])


def test_a_single_broken_image_is_an_error(detector_ckpt, image_dir, tmp_path, capsys) -> None:
    argv = [str(image_dir / "broken.jpg"), str(SHAPES_CONFIG), "--weights", str(detector_ckpt)]
    assert main([*argv, "--out-dir", str(tmp_path / "out")]) == 1
    assert "broken.jpg" in capsys.readouterr().err


def test_an_image_whose_drawing_cannot_be_written_is_skipped(
    detector_ckpt, image_dir, tmp_path, capsys
) -> None:
    out = tmp_path / "out"
    (out / "vis" / "good.jpg").mkdir(parents=True)  # a folder where the drawing should go
    argv = [str(image_dir / "good.jpg"), str(SHAPES_CONFIG), "--weights", str(detector_ckpt)]
    assert main([*argv, "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "skipped" in err and "good.jpg" in err and "IsADirectoryError" in err
    assert "0 image(s) processed, 1 skipped" in err


def test_classification_checkpoint_is_refused(
    synthetic_checkpoints, image_dir, tmp_path, capsys
) -> None:
    ckpt, _ = synthetic_checkpoints("xx_small", "official")
    argv = [str(image_dir), str(SHAPES_CONFIG), "--weights", str(ckpt)]
    assert main([*argv, "--out-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert str(ckpt) in err and "not a detector" in err
    assert "classification" in err and "tools/train.py" in err
    assert not (tmp_path / "out").exists()


def test_checkpoint_of_another_config_is_refused(detector_ckpt, image_dir, capsys) -> None:
    # trained with 5 shape classes, used with the 80-class COCO config
    argv = [str(image_dir), str(COCO_CONFIG), "--weights", str(detector_ckpt)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "does not fit" in err and "number of classes" in err


def test_missing_inputs_are_reported(detector_ckpt, image_dir, tmp_path, capsys) -> None:
    argv = [str(tmp_path / "nowhere"), str(SHAPES_CONFIG), "--weights", str(detector_ckpt)]
    assert main(argv) == 1
    assert "nowhere is neither an image file nor a folder" in capsys.readouterr().err
    argv = [str(image_dir), str(SHAPES_CONFIG), "--weights", str(tmp_path / "none.pth")]
    assert main(argv) == 1
    assert "none.pth does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_script_runs_from_the_command_line(detector_ckpt, image_dir, tmp_path) -> None:
    out = tmp_path / "cli"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools/demo/image_demo.py"),
            str(image_dir / "good.jpg"),
            str(SHAPES_CONFIG),
            "--weights",
            str(detector_ckpt),
            "--out-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.splitlines()[-1])["image"].endswith("good.jpg")
    assert (out / "vis/good.jpg").is_file() and (out / "preds/good.jpg.json").is_file()


def test_one_label_per_object_keeps_the_best_class_of_overlapping_boxes() -> None:
    from mmengine.structures import InstanceData

    from edgenext_dense.apis.det_demo import best_class_per_object

    pred = InstanceData()
    pred.bboxes = torch.tensor(
        [[10.0, 10, 50, 50], [12, 11, 50, 52], [100, 100, 140, 140], [102, 100, 140, 141]]
    )
    pred.scores = torch.tensor([0.9, 0.5, 0.8, 0.7])
    pred.labels = torch.tensor([1, 3, 2, 2])  # the last two: one class, kept by the model's NMS
    kept = best_class_per_object(pred)
    assert kept.scores.tolist() == pytest.approx([0.9, 0.8])
    assert kept.labels.tolist() == [1, 2]
    assert len(best_class_per_object(pred[:0])) == 0
