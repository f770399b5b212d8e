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
from tool_runner import load_tool

from edgenext_dense.datasets.seg_converters import (
    COCO_TO_VOC,
    VOC_NAME_OF_COCO,
    coco_category_to_voc,
    convert_coco_to_voc,
    convert_voc_aug,
    read_sbd_mask,
    save_voc_mask,
)

REPO = Path(__file__).resolve().parents[2]


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


@pytest.mark.slow
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

# The 20 VOC classes in the official COCO 2017 category list (id, name).
COCO2017_VOC_CATEGORIES = [
    (1, "person"), (2, "bicycle"), (3, "car"), (4, "motorcycle"), (5, "airplane"), (6, "bus"),
    (7, "train"), (9, "boat"), (16, "bird"), (17, "cat"), (18, "dog"), (19, "horse"),
    (20, "sheep"), (21, "cow"), (44, "bottle"), (62, "chair"), (63, "couch"),
    (64, "potted plant"), (67, "dining table"), (72, "tv"),
]  # fmt: skip
# sacmehta/EdgeNets data_loader/segmentation/coco.py: VOC label i <- COCO category CAT_LIST[i].
EDGENETS_CAT_LIST = [0, 5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72]
PERSON, MOTORCYCLE, COUCH, TV, KITE = 1, 4, 63, 72, 38


def _square(x0, y0, x1, y1):
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _columns_rle(h: int, w: int, c0: int, c1: int) -> dict:
    # Uncompressed RLE (column-major runs, starting with zeros): columns c0..c1-1 are set.
    return {"size": [h, w], "counts": [h * c0, h * (c1 - c0), h * (w - c1)]}


def _ann(ann_id, image_id, cat, seg, iscrowd=0):
    return dict(id=ann_id, image_id=image_id, category_id=cat, segmentation=seg, iscrowd=iscrowd)


def _img(image_id, width, height):
    return dict(id=image_id, file_name=f"{image_id:012d}.jpg", width=width, height=height)


def _coco_json(root: Path, split: str = "train2017") -> Path:
    cats = [{"id": i, "name": n} for i, n in COCO2017_VOC_CATEGORIES]
    cats.append({"id": KITE, "name": "kite"})  # not a VOC class
    images = [
        _img(1, 300, 260),  # person then motorcycle (overlapping), a two-polygon couch, a kite
        _img(2, 300, 260),  # the same two instances in the other order
        _img(3, 256, 256),  # a crowd of people, then a tv overlapping it
        _img(4, 300, 200),  # 200 px high: skipped
        _img(5, 200, 300),  # 200 px wide: skipped
        _img(6, 256, 256),  # only a kite: all background, skipped
        _img(7, 256, 256),  # one person over the whole image: one label, skipped
        _img(8, 256, 256),  # no annotation: skipped
    ]
    person, moto = [_square(10, 10, 100, 100)], [_square(50, 50, 150, 150)]
    anns = [
        _ann(1, 1, PERSON, person),
        _ann(2, 2, MOTORCYCLE, moto),
        _ann(3, 3, PERSON, _columns_rle(256, 256, 100, 120), iscrowd=1),
        _ann(4, 1, MOTORCYCLE, moto),
        _ann(5, 2, PERSON, person),
        _ann(6, 3, TV, [_square(90, 0, 130, 50)]),
        _ann(7, 1, COUCH, [_square(200, 10, 240, 50), _square(250, 10, 290, 50)]),
        _ann(8, 1, KITE, [_square(200, 200, 250, 250)]),
        _ann(9, 4, PERSON, person),
        _ann(10, 5, PERSON, person),
        _ann(11, 6, KITE, [_square(10, 10, 100, 100)]),
        _ann(12, 7, PERSON, _columns_rle(256, 256, 0, 256)),
    ]
    ann_file = root / "annotations" / f"instances_{split}.json"
    ann_file.parent.mkdir(parents=True)
    ann_file.write_text(json.dumps(dict(images=images, annotations=anns, categories=cats)))
    return ann_file


def test_coco_mapping_reproduces_edgenets_cat_list_on_coco2017_ids():
    voc_of_id = {cat_id: COCO_TO_VOC[name] for cat_id, name in COCO2017_VOC_CATEGORIES}
    id_of_voc = {voc: cat_id for cat_id, voc in voc_of_id.items()}
    assert [0] + [id_of_voc[label] for label in range(1, 21)] == EDGENETS_CAT_LIST
    # The converter's own lookup gives the same, with COCO or VOC spellings of the names.
    cats = [{"id": i, "name": n} for i, n in COCO2017_VOC_CATEGORIES]
    assert coco_category_to_voc(cats, "x.json") == voc_of_id
    for cat in cats:
        cat["name"] = VOC_NAME_OF_COCO.get(cat["name"], cat["name"])
    assert {c["name"] for c in cats} >= {"aeroplane", "motorbike", "sofa", "tvmonitor"}
    assert coco_category_to_voc(cats, "x.json") == voc_of_id


def test_convert_coco_to_voc_paints_as_edgenets(tmp_path):
    _coco_json(tmp_path)
    info = convert_coco_to_voc(tmp_path)
    assert info["num_images"] == 8 and info["skipped_small"] == 2
    assert info["skipped_labels"] == 3  # kite only, one class everywhere, no annotation
    kept = (tmp_path / "voc_seg/train2017.txt").read_text().split()
    assert kept == ["000000000001", "000000000002", "000000000003"]
    masks = {i: _read_png(tmp_path / f"voc_seg/train2017/{i}.png") for i in kept}
    first = masks["000000000001"]
    assert first.shape == (260, 300)
    assert first[20, 20] == 15 and first[120, 120] == 14  # person, motorcycle -> motorbike
    assert first[75, 75] == 15  # overlap: the first annotation in the file, the person
    assert first[30, 220] == first[30, 270] == 18  # both polygons of the couch -> sofa
    assert first[30, 245] == 0 and first[225, 225] == 0  # between them; the kite
    assert set(np.unique(first)) == {0, 14, 15, 18}  # no 255 anywhere
    second = masks["000000000002"]
    assert second[75, 75] == 14  # the motorcycle comes first here
    assert second[20, 20] == 15 and second[120, 120] == 14
    # The crowd is painted as person and, being first, keeps its pixels under the tv.
    crowd = masks["000000000003"]
    assert (crowd[:, 100:120] == 15).all() and (crowd == 15).sum() == 256 * 20
    assert crowd[25, 95] == crowd[25, 125] == 20
    assert (crowd[60:, :100] == 0).all() and set(np.unique(crowd)) == {0, 15, 20}
    written = sorted(p.stem for p in (tmp_path / "voc_seg/train2017").glob("*.png"))
    assert written == kept


def test_convert_coco_to_voc_thresholds_are_options(tmp_path):
    _coco_json(tmp_path)
    info = convert_coco_to_voc(tmp_path, min_size=100, min_labels=1, out_dir=tmp_path / "o")
    assert info["num_kept"] == 8 and info["skipped_small"] == info["skipped_labels"] == 0
    assert (_read_png(tmp_path / "o/train2017/000000000007.png") == 15).all()
    info = convert_coco_to_voc(tmp_path, min_size=257, out_dir=tmp_path / "big")
    assert info["num_kept"] == 2 and info["skipped_small"] == 6  # 256 px: below 257


def test_convert_coco_to_voc_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="instances_train2017.json does not exist"):
        convert_coco_to_voc(tmp_path)
    ann = tmp_path / "annotations/instances_val2017.json"
    ann.parent.mkdir(parents=True)
    cats = [{"id": 1, "name": "person"}, {"id": 5, "name": "aeroplane"}, {"id": 2, "name": "kite"}]
    ann.write_text(json.dumps({"images": [], "annotations": [], "categories": cats}))
    with pytest.raises(ValueError) as err:
        convert_coco_to_voc(tmp_path, split="val2017")
    message = str(err.value)
    assert str(ann) in message and "18 of the 20 VOC classes" in message
    assert "bicycle" in message and "tv (tvmonitor)" in message and "couch (sofa)" in message
    assert "person" not in message and "aeroplane" not in message  # those two are there
    assert "instances_train2017.json" in message  # what to give instead
    ann.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        convert_coco_to_voc(tmp_path, split="val2017")


def _coco_tool():
    return load_tool("tools/dataset_converters/coco_to_voc_seg.py")


def test_coco_to_voc_seg_tool(tmp_path, capsys):
    tool = _coco_tool()
    _coco_json(tmp_path)
    assert tool.main([str(tmp_path)]) == 0
    assert "3 of 8 images kept" in capsys.readouterr().out
    assert tool.main([str(tmp_path / "nowhere")]) != 0
    assert str(tmp_path / "nowhere/annotations/instances_train2017.json") in capsys.readouterr().err
