"""The VOC segmentation converters on tiny generated inputs: SBD .mat files and COCO jsons."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from edgenext_dense.datasets.seg_converters import (
    COCO_TO_VOC,
    aug_train_ids,
    convert_coco_to_voc,
    convert_voc_aug,
    num_labels,
    read_sbd_mask,
    save_voc_mask,
)

REPO = Path(__file__).resolve().parents[1]


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "P", "masks are palettised like VOC's"
        return np.array(img)


def _write_ids(path: Path, ids) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{i}\n" for i in ids))


def _sbd_mat(path: Path, mask: np.ndarray) -> None:
    # The SBD layout: a 1x1 struct GTcls with Segmentation, Boundaries, CategoriesPresent.
    present = np.unique(mask[mask > 0]).astype(np.uint8)
    savemat(
        path,
        {"GTcls": {"Segmentation": mask, "Boundaries": np.zeros(1), "CategoriesPresent": present}},
    )


@pytest.fixture()
def voc_and_sbd(tmp_path):
    """A VOCdevkit with 3 train / 2 val ids and an SBD release with 4 + 2 ids."""
    devkit, sbd = tmp_path / "VOCdevkit", tmp_path / "benchmark_RELEASE"
    voc = devkit / "VOC2012"
    voc_train, voc_val = ["2007_000032", "2007_000039", "2008_000001"], ["2007_000033", "v2"]
    sbd_train, sbd_val = ["2008_000001", "s1", "s2", "2007_000033"], ["s3", "v2"]
    _write_ids(voc / "ImageSets/Segmentation/train.txt", voc_train)
    _write_ids(voc / "ImageSets/Segmentation/val.txt", voc_val)
    (voc / "SegmentationClass").mkdir(parents=True)
    for i, name in enumerate(voc_train + voc_val):
        mask = np.zeros((6, 7), np.uint8)
        mask[1:3, 1:3] = 15
        mask[0, :] = 255
        mask[4, 4] = 1 + i  # tells the masks apart
        save_voc_mask(mask, voc / "SegmentationClass" / f"{name}.png")
    (sbd / "dataset/cls").mkdir(parents=True)
    for i, name in enumerate(sorted(set(sbd_train + sbd_val))):
        mask = np.zeros((5, 4), np.uint8)
        mask[2:, 1:] = 1 + i
        _sbd_mat(sbd / "dataset/cls" / f"{name}.mat", mask)
    _write_ids(sbd / "dataset/train.txt", sbd_train)
    _write_ids(sbd / "dataset/val.txt", sbd_val)
    return dict(devkit=devkit, sbd=sbd, voc_train=voc_train, voc_val=voc_val)


def test_aug_ids_are_sbd_and_voc_train_without_voc_val():
    ids = aug_train_ids(["a", "b", "v"], ["c"], ["t", "a"], ["v", "x"])
    assert ids == ["a", "b", "c", "t"]


def test_read_sbd_mask_round_trip(tmp_path):
    mask = np.arange(12, dtype=np.uint8).reshape(3, 4)
    _sbd_mat(tmp_path / "x.mat", mask)
    out = read_sbd_mask(tmp_path / "x.mat")
    assert out.dtype == np.uint8 and np.array_equal(out, mask)


def test_read_sbd_mask_rejects_instance_files_and_bad_labels(tmp_path):
    savemat(tmp_path / "inst.mat", {"GTinst": {"Segmentation": np.zeros((2, 2))}})
    with pytest.raises(ValueError, match="inst.mat is not an SBD class mask.*GTinst"):
        read_sbd_mask(tmp_path / "inst.mat")
    _sbd_mat(tmp_path / "bad.mat", np.full((2, 2), 23, np.uint8))
    with pytest.raises(ValueError, match="bad.mat: labels 23..23 outside 0..20"):
        read_sbd_mask(tmp_path / "bad.mat")
    (tmp_path / "broken.mat").write_bytes(b"not a mat file")
    with pytest.raises(ValueError, match="could not read .*broken.mat"):
        read_sbd_mask(tmp_path / "broken.mat")


def test_convert_voc_aug(voc_and_sbd):
    info = convert_voc_aug(voc_and_sbd["devkit"], voc_and_sbd["sbd"])
    voc = voc_and_sbd["devkit"] / "VOC2012"
    out = voc / "SegmentationClassAug"
    assert info["num_sbd"] == 6 and info["num_voc"] == 5
    # SBD train+val + VOC train, minus VOC val.
    expected = sorted({"2008_000001", "s1", "s2", "s3", "2007_000032", "2007_000039"})
    aug = (voc / "ImageSets/Segmentation/aug.txt").read_text().split()
    assert aug == expected and info["num_aug"] == len(expected)
    # An SBD-only image: its .mat labels, as a palettised PNG.
    s1 = _read_png(out / "s1.png")
    assert s1.shape == (5, 4) and set(np.unique(s1)) <= set(range(21))
    # A VOC train image also in SBD: VOC's mask (with its 255 border) wins.
    voc_mask = _read_png(voc / "SegmentationClass/2008_000001.png")
    assert np.array_equal(_read_png(out / "2008_000001.png"), voc_mask)
    assert (voc_mask == 255).any()
    # Every training id has a mask.
    assert all((out / f"{i}.png").is_file() for i in aug)


def test_convert_voc_aug_parallel_matches_serial(voc_and_sbd, tmp_path):
    convert_voc_aug(voc_and_sbd["devkit"], voc_and_sbd["sbd"], tmp_path / "serial")
    convert_voc_aug(voc_and_sbd["devkit"], voc_and_sbd["sbd"], tmp_path / "par", nproc=2)
    for png in (tmp_path / "serial").glob("*.png"):
        assert np.array_equal(_read_png(png), _read_png(tmp_path / "par" / png.name))


def test_convert_voc_aug_missing_sbd_names_path_and_layout(voc_and_sbd, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SBD mask folder .*nowhere/dataset/cls.*"):
        convert_voc_aug(voc_and_sbd["devkit"], tmp_path / "nowhere")
    try:
        convert_voc_aug(tmp_path / "no_devkit", voc_and_sbd["sbd"])
    except FileNotFoundError as err:
        assert "VOC2012" in str(err) and "SegmentationClass" in str(err)
    else:
        raise AssertionError("a missing VOCdevkit must raise")


def test_voc_aug_tool(voc_and_sbd):
    proc = subprocess.run(
        [sys.executable, "tools/dataset_converters/voc_aug.py", str(voc_and_sbd["devkit"]),
         str(voc_and_sbd["sbd"])],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "6 training ids written" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "tools/dataset_converters/voc_aug.py", "/nonexistent", "/nonexistent"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "/nonexistent/VOC2012" in proc.stderr


# ------------------------------------------------------------------------------------- COCO


def _square(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _coco_json(root: Path, split: str = "train2017") -> Path:
    cats = [
        {"id": 1, "name": "person"},
        {"id": 4, "name": "motorcycle"},
        {"id": 63, "name": "couch"},
        {"id": 72, "name": "tv"},
        {"id": 13, "name": "stop sign"},  # not a VOC class
    ]
    images = [
        {"id": 1, "file_name": "000000000001.jpg", "width": 300, "height": 260},  # kept
        {"id": 2, "file_name": "000000000002.jpg", "width": 300, "height": 200},  # small
        {"id": 3, "file_name": "000000000003.jpg", "width": 300, "height": 300},  # stop sign
        {"id": 4, "file_name": "000000000004.jpg", "width": 256, "height": 256},  # nothing
        {"id": 5, "file_name": "000000000005.jpg", "width": 256, "height": 256},  # crowd+tv
    ]
    anns = [
        dict(id=1, image_id=1, category_id=1, segmentation=_square(10, 10, 100, 100), iscrowd=0),
        dict(id=2, image_id=1, category_id=4, segmentation=_square(50, 50, 150, 150), iscrowd=0),
        dict(id=3, image_id=1, category_id=63, segmentation=_square(200, 200, 250, 250),
             iscrowd=0),
        dict(id=4, image_id=2, category_id=1, segmentation=_square(10, 10, 100, 100), iscrowd=0),
        dict(id=5, image_id=3, category_id=13, segmentation=_square(10, 10, 100, 100), iscrowd=0),
        dict(id=6, image_id=5, category_id=72, segmentation=_square(0, 0, 50, 50), iscrowd=0),
        # an uncompressed-RLE crowd of people: ignored, not painted as person
        dict(id=7, image_id=5, category_id=1, iscrowd=1,
             segmentation={"size": [256, 256], "counts": [256 * 100, 256 * 20, 256 * 136]}),
    ]  # fmt: skip
    ann_file = root / "annotations" / f"instances_{split}.json"
    ann_file.parent.mkdir(parents=True)
    ann_file.write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    return ann_file


def test_coco_mapping_is_the_standard_twenty():
    assert sorted(COCO_TO_VOC.values()) == list(range(1, 21))
    assert COCO_TO_VOC["motorcycle"] == 14 and COCO_TO_VOC["couch"] == 18
    assert COCO_TO_VOC["tv"] == 20 and COCO_TO_VOC["airplane"] == 1


def test_num_labels_counts_background_not_ignore():
    assert num_labels(np.array([[0, 0], [255, 255]])) == 1
    assert num_labels(np.array([[0, 15], [255, 15]])) == 2


def test_convert_coco_to_voc(tmp_path):
    _coco_json(tmp_path)
    info = convert_coco_to_voc(tmp_path)
    assert info["num_images"] == 5 and info["skipped_small"] == 1
    # no VOC object (stop sign only / no annotation) -> one label -> skipped
    assert info["skipped_labels"] == 2
    kept = (tmp_path / "voc_seg/train2017.txt").read_text().split()
    assert kept == ["000000000001", "000000000005"]
    mask = _read_png(tmp_path / "voc_seg/train2017/000000000001.png")
    assert mask.shape == (260, 300)
    assert mask[20, 20] == 15  # person
    assert mask[120, 120] == 14  # motorcycle -> motorbike
    assert mask[75, 75] == 255  # person and motorbike overlap: ignored
    assert mask[225, 225] == 18  # couch -> sofa
    assert mask[5, 5] == 0 and mask[255, 290] == 0
    crowd = _read_png(tmp_path / "voc_seg/train2017/000000000005.png")
    assert crowd[10, 10] == 20  # tv
    assert (crowd[:, 100:120] == 255).all() and (crowd == 15).sum() == 0
    assert not (tmp_path / "voc_seg/train2017/000000000002.png").exists()


def test_convert_coco_to_voc_thresholds_are_options(tmp_path):
    _coco_json(tmp_path)
    info = convert_coco_to_voc(tmp_path, min_size=100, min_labels=1, out_dir=tmp_path / "o")
    assert info["num_kept"] == 5 and info["skipped_small"] == info["skipped_labels"] == 0


def test_convert_coco_to_voc_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="instances_train2017.json does not exist"):
        convert_coco_to_voc(tmp_path)
    ann = tmp_path / "annotations/instances_val2017.json"
    ann.parent.mkdir(parents=True)
    ann.write_text(json.dumps({"images": [], "annotations": [], "categories": [
        {"id": 1, "name": "giraffe"}]}))  # fmt: skip
    with pytest.raises(ValueError, match="none of the 20 VOC categories"):
        convert_coco_to_voc(tmp_path, split="val2017")
    ann.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        convert_coco_to_voc(tmp_path, split="val2017")


def test_coco_to_voc_seg_tool(tmp_path):
    _coco_json(tmp_path)
    proc = subprocess.run(
        [sys.executable, "tools/dataset_converters/coco_to_voc_seg.py", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 of 5 images kept" in proc.stdout
