"""The batch tools on odd folders: any image they cannot process is skipped and reported, the
rest is processed, outputs never clash, and a 48-megapixel photo stays under 2 GB.

Tools: ``tools/demo/image_demo.py``, ``tools/demo/image_seg_demo.py``,
``tools/deploy/onnx_infer.py`` and ``tools/deploy/onnx_eval.py`` (folders), and
``tools/demo/image_classify.py`` (one image). Models have random weights, saved as
``tools/train.py`` saves them, and the small EdgeNeXt-XXS configs. The segmentation config
resizes keeping the ratio to 192 px, so a 4x3000 image has no valid network size there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from tool_runner import load_tool
from trained_like import random_checkpoint

from edgenext_dense.datasets.synthetic import SHAPE_CLASSES, make_voc_shapes, render_scene
from edgenext_dense.deploy.export import export_onnx
from edgenext_dense.deploy.graphs import load_deploy_model

REPO = Path(__file__).resolve().parents[2]
DET_CONFIG = REPO / "configs/det/ssdlite_edgenext-xxs_1xb16-16e_shapes-256.py"
SEG_CONFIG = REPO / "configs/seg/deeplabv3_edgenext-xxs_1xb8-1k_shapesvoc-192.py"
UNREADABLE = {"empty.jpg": "0 bytes", "corrupt.jpg": "not a readable image"}
GOOD = ("pic.jpg", "pic.png")  # same stem: their outputs must not clash
PEAK_RSS_LIMIT_MIB = 2048


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A generated shapes scene as BGR uint8 (noise where a side is under 32 px)."""
    rng = np.random.default_rng(seed)
    if min(height, width) < 32:
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return np.ascontiguousarray(render_scene(rng, (height, width)).image)


def _skipped(err: str) -> Dict[str, str]:
    """The ``skipped <path>: <reason>`` lines of a run, by image file name."""
    lines = [line for line in err.splitlines() if line.startswith("skipped ")]
    return {Path(line[len("skipped ") :].split(": ", 1)[0]).name: line for line in lines}


def _names(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def det_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("det") / "epoch_1.pth"
    return random_checkpoint(DET_CONFIG, "det", path, SHAPE_CLASSES, seed=0)


@pytest.fixture(scope="module")
def seg_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seg") / "iter_1.pth"
    return random_checkpoint(SEG_CONFIG, "seg", path, [f"c{i}" for i in range(21)], seed=1)


@pytest.fixture(scope="module")
def det_onnx(det_checkpoint, tmp_path_factory) -> Path:
    deploy = load_deploy_model(str(DET_CONFIG), str(det_checkpoint))
    return Path(export_onnx(deploy, tmp_path_factory.mktemp("det_onnx") / "ssdlite.onnx"))


@pytest.fixture(scope="module")
def seg_onnx(seg_checkpoint, tmp_path_factory) -> Path:
    deploy = load_deploy_model(str(SEG_CONFIG), str(seg_checkpoint), input_size=(96, 128))
    return Path(export_onnx(deploy, tmp_path_factory.mktemp("seg_onnx") / "deeplabv3.onnx"))


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory) -> Path:
    """Two good images sharing a stem, a 1x1 and a 4x3000 image, an empty and a corrupt file."""
    folder = tmp_path_factory.mktemp("odd") / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "pic.jpg"), _image(120, 160, 1))
    cv2.imwrite(str(folder / "pic.png"), _image(90, 120, 2))
    cv2.imwrite(str(folder / "tiny.png"), np.full((1, 1, 3), 128, np.uint8))
    cv2.imwrite(str(folder / "thin.png"), _image(4, 3000, 3))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def _check_unreadable_reported(err: str) -> Dict[str, str]:
    skipped = _skipped(err)
    for name, words in UNREADABLE.items():
        assert name in skipped and words in skipped[name], err[-3000:]
    return skipped


# --------------------------------------------------------------------------- folders
def test_det_demo_processes_the_rest_of_an_odd_folder(
    det_checkpoint, odd_folder, tmp_path, capsys
) -> None:
    out = tmp_path / "out"
    argv = [str(odd_folder), str(DET_CONFIG), "--weights", str(det_checkpoint)]
    code = load_tool("tools/demo/image_demo.py").main([*argv, "--out-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    assert set(_check_unreadable_reported(captured.err)) == set(UNREADABLE)
    assert "4 image(s) processed, 2 skipped" in captured.err
    # the stretch resize takes the 1x1 and the 4x3000 images
    assert _names(out / "vis") == ["pic.jpg", "pic.png", "thin.png", "tiny.png"]
    assert _names(out / "preds") == [
        "pic.jpg.json", "pic.png.json", "thin.png.json", "tiny.png.json"
    ]  # fmt: skip
    shapes = {name: json.loads((out / "preds" / f"{name}.json").read_text()) for name in GOOD}
    assert [(r["height"], r["width"]) for r in shapes.values()] == [(120, 160), (90, 120)]


def test_seg_demo_processes_the_rest_of_an_odd_folder(
    seg_checkpoint, odd_folder, tmp_path, capsys
) -> None:
    out = tmp_path / "out"
    argv = [str(odd_folder), str(SEG_CONFIG), "--weights", str(seg_checkpoint)]
    code = load_tool("tools/demo/image_seg_demo.py").main([*argv, "--out-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    skipped = _check_unreadable_reported(captured.err)
    # mmseg's keep-ratio resize makes the 4x3000 image 0 pixels high; the 1x1 one is drawn
    assert set(skipped) == {*UNREADABLE, "thin.png"} and "resize" in skipped["thin.png"]
    assert "3 image(s) processed, 3 skipped" in captured.err
    assert _names(out) == ["pic.jpg.png", "pic.png.png", "tiny.png.png"]
    drawn = cv2.imread(str(out / "pic.png.png"))
    assert drawn.shape[0] >= 90 and drawn.shape[1] > 120  # the image and its legend


@pytest.mark.parametrize("task", ["det", "seg"])
def test_onnx_infer_processes_the_rest_of_an_odd_folder(
    task, det_onnx, seg_onnx, odd_folder, tmp_path, capsys
) -> None:
    out = tmp_path / "out"
    model = det_onnx if task == "det" else seg_onnx
    runtime = load_tool("tools/deploy/onnx_infer.py").load_runtime()
    code = runtime.main([str(odd_folder), "--model", str(model), "--out-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    skipped = _check_unreadable_reported(captured.err)
    if task == "det":
        assert set(skipped) == set(UNREADABLE)
        assert "4 image(s) processed, 2 skipped" in captured.err
        assert _names(out / "vis") == ["pic.jpg", "pic.png", "thin.png", "tiny.png"]
        assert "pic.jpg.json" in _names(out / "preds") and "pic.png.json" in _names(out / "preds")
        records = [json.loads(line) for line in captured.out.splitlines()]
        assert len({r["json_file"] for r in records}) == len(records) == 4
    else:
        assert set(skipped) == {*UNREADABLE, "thin.png"}
        assert "3000x4" in skipped["thin.png"] and "resizes to" in skipped["thin.png"]
        assert "3 image(s) processed, 3 skipped" in captured.err
        assert _names(out) == ["pic.jpg.png", "pic.png.png", "tiny.png.png"]


def test_onnx_infer_says_when_nothing_could_be_processed(seg_onnx, odd_folder, tmp_path, capsys):
    runtime = load_tool("tools/deploy/onnx_infer.py").load_runtime()
    code = runtime.main([str(odd_folder / "thin.png"), "--model", str(seg_onnx), "--out-dir", ""])
    err = capsys.readouterr().err
    assert code == 1
    assert "thin.png" in _skipped(err) and "0 image(s) processed, 1 skipped" in err


@pytest.fixture()
def odd_voc(tmp_path) -> Path:
    """A 4-image VOC test set: an empty, a corrupt and a 4x3000 image before a good one."""
    info = make_voc_shapes(tmp_path / "voc", num_train=1, num_val=4, img_size=96, seed=0)
    root = Path(info["data_root"])
    names = Path(info["val_split"]).read_text().split()
    (root / "JPEGImages" / f"{names[0]}.jpg").write_bytes(b"")
    (root / "JPEGImages" / f"{names[1]}.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    cv2.imwrite(str(root / "JPEGImages" / f"{names[2]}.jpg"), _image(4, 3000, 4))
    Image.fromarray(np.zeros((4, 3000), np.uint8)).save(
        root / "SegmentationClass" / f"{names[2]}.png"
    )
    return root


def test_onnx_eval_scores_the_images_it_can_predict(seg_onnx, odd_voc, tmp_path, capsys) -> None:
    names = sorted(p.name for p in (odd_voc / "JPEGImages").glob("val_*.jpg"))
    main = load_tool("tools/deploy/onnx_eval.py").main
    options = ["--cfg-options", f"test_dataloader.dataset.data_root={odd_voc}"]
    out = tmp_path / "scores.json"
    code = main([str(SEG_CONFIG), str(seg_onnx), "--json", str(out), *options])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    skipped = _skipped(captured.err)
    assert set(skipped) == set(names[:3])
    assert "0 bytes" in skipped[names[0]] and "not a readable image" in skipped[names[1]]
    assert "resizes to" in skipped[names[2]]
    assert "1 image(s) processed, 3 skipped" in captured.err
    assert "mIoU" in captured.out and "3 skipped" in captured.out
    (result,) = json.loads(out.read_text()).values()
    assert result["images"] == 1 and 0.0 <= result["metrics"]["mIoU"] <= 100.0
    assert sorted(Path(s["image"]).name for s in result["skipped"]) == names[:3]

    # the first three only: nothing to score is an error
    code = main([str(SEG_CONFIG), str(seg_onnx), "--limit", "3", *options])
    err = capsys.readouterr().err
    assert code == 1 and "none of the 3 test images" in err and "could be predicted" in err


# --------------------------------------------------------------------------- one image
def test_image_classify_explains_empty_and_corrupt_files_and_folders(
    synthetic_checkpoints, odd_folder, tmp_path, capsys
) -> None:
    main = load_tool("tools/demo/image_classify.py").main
    ckpt, _ = synthetic_checkpoints("xx_small", "official")
    assert main([str(odd_folder / "empty.jpg"), "--checkpoint", str(ckpt)]) == 1
    err = capsys.readouterr().err
    assert "empty.jpg" in err and "empty (0 bytes)" in err and "Traceback" not in err
    assert main([str(odd_folder / "corrupt.jpg"), "--checkpoint", str(ckpt)]) == 1
    err = capsys.readouterr().err
    assert "corrupt.jpg" in err and "not a readable image" in err
    # a folder is refused before the checkpoint is even looked at
    assert main([str(odd_folder), "--checkpoint", str(tmp_path / "none.pth")]) == 1
    err = capsys.readouterr().err
    assert str(odd_folder) in err and "is a folder" in err and "one image file" in err
    assert "does not exist" not in err
    assert main([str(odd_folder / "pic.png"), "--checkpoint", str(ckpt)]) == 0
    assert '"topk"' in capsys.readouterr().out


# --------------------------------------------------------------------------- same results
def test_seg_demo_labels_and_drawing_are_mmsegs(seg_checkpoint, monkeypatch) -> None:
    """Resizing one class at a time and blending in strips change no pixel (the ONNX runtime
    draws with the same function, legend included)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    from mmseg.visualization import SegLocalVisualizer

    from edgenext_dense import image_files
    from edgenext_dense.apis.loading import load_trained_model
    from edgenext_dense.apis.seg_demo import build_demo_pipeline, predict_labels

    model = load_trained_model(str(SEG_CONFIG), str(seg_checkpoint), "seg")
    img = _image(300, 410, 5)  # logits upsampled from 141x192
    data = build_demo_pipeline(model.cfg)(dict(img=img))
    with torch.no_grad():
        batch = dict(inputs=[data["inputs"]], data_samples=[data["data_samples"]])
        expected = model.test_step(batch)[0].pred_sem_seg.data[0].numpy()
    labels = predict_labels(model, build_demo_pipeline(model.cfg), img)
    assert labels.dtype == np.int64 and len(np.unique(labels)) > 1
    np.testing.assert_array_equal(labels, expected)

    visualizer = SegLocalVisualizer(name="test_batch_tools_mmseg", alpha=0.6)
    visualizer.dataset_meta = model.dataset_meta
    sample = SegDataSample(pred_sem_seg=PixelData(data=torch.from_numpy(labels[None])))
    visualizer.add_datasample("x", img[..., ::-1], sample, draw_gt=False, with_labels=False)
    monkeypatch.setattr(image_files, "_STRIP_PIXELS", 1000)  # many strips
    drawn = image_files.draw_segmentation(img, labels, model.dataset_meta, opacity=0.6)
    np.testing.assert_array_equal(drawn[:300, :410, ::-1], visualizer.get_image())


def test_onnx_labels_do_not_depend_on_the_strips(monkeypatch) -> None:
    from edgenext_dense.deploy.ort import postprocess

    logits = np.random.default_rng(0).standard_normal((21, 24, 32)).astype(np.float32)
    whole = postprocess.resize_bilinear(logits, (301, 403)).argmax(axis=0)
    monkeypatch.setattr(postprocess, "_STRIP_ELEMENTS", 21 * 403 * 7)  # 7-row strips
    np.testing.assert_array_equal(postprocess.segmentation_labels(logits, (301, 403), {}), whole)


# --------------------------------------------------------------------------- memory
# Runs the tool in a fresh process whose only child is the tool: RUSAGE_CHILDREN of pytest
# itself would also count every earlier subprocess of the session.
_PEAK_RSS = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(proc.stderr[-3000:])
print(proc.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB on Linux
"""


def _peak_rss_mib(*command: str) -> Tuple[int, float, str]:
    """Run a command; its exit status, peak resident memory in MiB and stderr's tail."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *command],
        capture_output=True, text=True, timeout=900, env=env, check=False,
    )  # fmt: skip
    code, kib = proc.stdout.split()[-2:]
    return int(code), int(kib) / 1024, proc.stderr


@pytest.fixture(scope="module")
def photo_48mp(tmp_path_factory) -> Path:
    """An 8000x6000 JPEG: gradients and a checkerboard (a small file, a big image)."""
    height, width = 6000, 8000
    y, x = np.ogrid[:height, :width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = x * 255 // width
    img[..., 1] = y * 255 // height
    img[..., 2] = (x // 500 + y // 500) % 2 * 200
    path = tmp_path_factory.mktemp("big") / "photo.jpg"
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


@pytest.mark.slow
def test_a_48_megapixel_photo_stays_under_2_gb_in_onnx_infer(seg_onnx, photo_48mp, tmp_path):
    out = tmp_path / "out"
    script = str(REPO / "tools/deploy/onnx_infer.py")
    args = [str(photo_48mp), "--model", str(seg_onnx), "--out-dir", str(out), "--threads", "1"]
    code, peak_mib, err = _peak_rss_mib(sys.executable, script, *args)
    assert code == 0, err
    assert peak_mib < PEAK_RSS_LIMIT_MIB, f"peak RSS {peak_mib:.0f} MiB"
    width, height = Image.open(out / "photo.jpg.png").size
    assert height == 6000 and width > 8000  # the photo and its legend


@pytest.mark.slow
def test_a_48_megapixel_photo_stays_under_2_gb_in_the_seg_demo(
    seg_checkpoint, photo_48mp, tmp_path
):
    out = tmp_path / "out"
    script = str(REPO / "tools/demo/image_seg_demo.py")
    args = [str(photo_48mp), str(SEG_CONFIG), "--weights", str(seg_checkpoint)]
    code, peak_mib, err = _peak_rss_mib(sys.executable, script, *args, "--out-dir", str(out))
    assert code == 0, err
    assert peak_mib < PEAK_RSS_LIMIT_MIB, f"peak RSS {peak_mib:.0f} MiB"
    width, height = Image.open(out / "photo.jpg.png").size
    assert height == 6000 and width > 8000
