"""Tests of the synthetic shape datasets (datasets/synthetic.py, shapes_render.py) and their CLI.

The datasets are tiny (6 train / 3 val images of 64-96 px) and generated once per module.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tool_runner import load_tool

from edgenext_dense.datasets import (
    MANIFEST_NAME,
    SHAPE_CLASSES,
    VOC_CLASSES,
    VOC_ID_OF_SHAPE,
    SceneConfig,
    make_coco_shapes,
    make_voc_shapes,
    mask_to_polygons,
    render_scene,
    scene_rng,
    voc_palette,
)

REPO = Path(__file__).resolve().parents[2]
COCO_SIZE = 96
VOC_SIZE = 64
TINY = dict(num_train=6, num_val=3)


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> dict:
    return make_coco_shapes(tmp_path_factory.mktemp("coco"), img_size=COCO_SIZE, **TINY)


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> dict:
    return make_voc_shapes(tmp_path_factory.mktemp("voc") / "VOCdevkit", img_size=VOC_SIZE, **TINY)


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _load_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1))


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, size", [(make_coco_shapes, COCO_SIZE), (make_voc_shapes, VOC_SIZE)], ids=["coco", "voc"]
)
def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path, make, size):
    first = _files(Path(make(tmp_path / "a", img_size=size, seed=3, **TINY)["out_dir"]))
    again = _files(Path(make(tmp_path / "b", img_size=size, seed=3, **TINY)["out_dir"]))
    other = _files(Path(make(tmp_path / "c", img_size=size, seed=4, **TINY)["out_dir"]))
    assert len(first) >= 9
    assert first == again
    images = [k for k in first if k.endswith(".jpg")]
    assert set(images) == {k for k in other if k.endswith(".jpg")}
    assert all(first[k] != other[k] for k in images), "another seed should change every image"


def test_larger_dataset_starts_with_the_images_of_a_smaller_one(tmp_path):
    small = make_coco_shapes(tmp_path / "s", num_train=2, num_val=1, img_size=COCO_SIZE)
    large = make_coco_shapes(tmp_path / "l", num_train=5, num_val=2, img_size=COCO_SIZE)
    for name in ("000000000001.jpg", "000000000002.jpg"):
        small_bytes = (Path(small["train_img_dir"]) / name).read_bytes()
        assert small_bytes == (Path(large["train_img_dir"]) / name).read_bytes()
    val_name = "000000000001.jpg"
    train_first = (Path(large["train_img_dir"]) / val_name).read_bytes()
    assert (Path(large["val_img_dir"]) / val_name).read_bytes() != train_first


# ---------------------------------------------------------------------------------------------
# COCO detection
# ---------------------------------------------------------------------------------------------


def test_coco_layout_and_annotations_load_in_pycocotools(coco):
    from pycocotools.coco import COCO

    root = Path(coco["out_dir"])
    for split, n in (("train", 6), ("val", 3)):
        api = COCO(str(root / "annotations" / f"instances_{split}2017.json"))
        assert len(api.getImgIds()) == n == coco["num_images"][split]
        assert len(api.getAnnIds()) == coco["num_annotations"][split]
        cats = api.loadCats(api.getCatIds())
        assert [(c["id"], c["name"]) for c in cats] == list(enumerate(SHAPE_CLASSES, start=1))
        for img in api.loadImgs(api.getImgIds()):
            path = root / f"{split}2017" / img["file_name"]
            with Image.open(path) as im:
                assert im.format == "JPEG" and im.size == (img["width"], img["height"])
            anns = api.loadAnns(api.getAnnIds(imgIds=[img["id"]]))
            assert 1 <= len(anns) <= 6, "every image holds 1-6 objects"
            for ann in anns:
                x, y, w, h = ann["bbox"]
                assert x >= 0 and y >= 0 and w >= 1 and h >= 1
                assert x + w <= img["width"] and y + h <= img["height"]
                assert ann["iscrowd"] == 0 and 0 < ann["area"] <= w * h
                assert ann["segmentation"] and all(len(p) >= 6 for p in ann["segmentation"])


def test_coco_boxes_and_polygons_match_the_drawn_pixels(coco):
    """Re-render each image: the JPEG shows it, and each box bounds exactly its visible pixels."""
    from pycocotools.coco import COCO

    api = COCO(coco["train_ann_file"])
    for img in api.loadImgs(api.getImgIds()):
        scene = render_scene(scene_rng(0, "coco", "train", img["id"] - 1), COCO_SIZE)
        with Image.open(Path(coco["train_img_dir"]) / img["file_name"]) as im:
            jpeg = np.asarray(im.convert("RGB"), dtype=np.float32)
        assert np.abs(jpeg - scene.image).mean() < 12, "the JPEG is not the rendered scene"
        anns = sorted(api.loadAnns(api.getAnnIds(imgIds=[img["id"]])), key=lambda a: a["id"])
        assert len(anns) == len(scene.instances)
        for k, (ann, inst) in enumerate(zip(anns, scene.instances)):
            pixels = scene.instance_map == k + 1
            rows, cols = np.flatnonzero(pixels.any(1)), np.flatnonzero(pixels.any(0))
            expected = [cols[0], rows[0], cols[-1] + 1 - cols[0], rows[-1] + 1 - rows[0]]
            assert ann["bbox"] == [float(v) for v in expected]
            assert ann["area"] == pixels.sum()
            assert api.loadCats(ann["category_id"])[0]["name"] == inst.label
            # The object's colour shows in the JPEG where the annotation says it is.
            assert np.median(np.abs(jpeg[pixels] - inst.color)) < 16
            assert _mask_iou(api.annToMask(ann).astype(bool), pixels) > 0.8


def test_some_objects_overlap_and_keep_most_of_their_pixels(tmp_path):
    summary = make_coco_shapes(tmp_path, num_train=40, num_val=1, img_size=128)
    data = _load_json(summary["train_ann_file"])
    occluded = 0
    for i in range(40):
        scene = render_scene(scene_rng(0, "coco", "train", i), 128)
        for k, inst in enumerate(scene.instances):
            visible = int((scene.instance_map == k + 1).sum())
            assert visible >= 0.65 * inst.full_area - 1
            occluded += visible < inst.full_area
    assert occluded >= 5, "the detection set should contain partly hidden objects"
    # COCO's "small" (< 32x32 pixels at the default 320 px) scaled to 128 px: a few at most.
    areas = np.array([a["area"] for a in data["annotations"]])
    assert np.mean(areas < (32 * 128 / 320) ** 2) < 0.15, "objects should be mostly medium/large"


def test_coco_loads_in_mmdet_and_evaluates_ground_truth_as_perfect(coco):
    pytest.importorskip("mmdet")
    import torch
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations
    from mmdet.evaluation import CocoMetric

    dataset = CocoDataset(
        data_root=coco["out_dir"],
        ann_file="annotations/instances_val2017.json",
        data_prefix=dict(img="val2017/"),
        metainfo=dict(classes=SHAPE_CLASSES),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=[LoadImageFromFile(), LoadAnnotations(with_bbox=True)],
    )
    assert len(dataset) == 3
    ann = _load_json(coco["val_ann_file"])
    metric = CocoMetric(ann_file=coco["val_ann_file"], metric="bbox")
    metric.dataset_meta = dataset.metainfo
    for i in range(len(dataset)):
        item = dataset[i]
        assert item["img"].shape == (COCO_SIZE, COCO_SIZE, 3)
        boxes, labels = item["gt_bboxes"].tensor, torch.as_tensor(item["gt_bboxes_labels"])
        expected = [a for a in ann["annotations"] if a["image_id"] == item["img_id"]]
        assert len(boxes) == len(expected) >= 1
        assert labels.tolist() == [a["category_id"] - 1 for a in expected]
        pred = dict(bboxes=boxes, scores=torch.ones(len(boxes)), labels=labels)
        sample = dict(img_id=item["img_id"], ori_shape=item["ori_shape"], pred_instances=pred)
        metric.process({}, [sample])
    results = metric.compute_metrics(metric.results)
    assert results["bbox_mAP_50"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# VOC segmentation
# ---------------------------------------------------------------------------------------------


def test_voc_layout_masks_and_splits(voc):
    root = Path(voc["data_root"])
    assert root.parts[-2:] == ("VOCdevkit", "VOC2012"), "mmseg's pascal_voc12 data_root layout"
    split_dir = root / "ImageSets" / "Segmentation"
    names = {s: (split_dir / f"{s}.txt").read_text().split() for s in ("train", "val", "trainval")}
    assert (len(names["train"]), len(names["val"])) == (6, 3)
    assert names["trainval"] == names["train"] + names["val"]
    allowed = {0, 255} | {VOC_ID_OF_SHAPE[c] for c in voc["classes"]}
    assert set(voc["class_ids"].values()) == allowed - {0, 255}
    seen = set()
    for name in names["trainval"]:
        with Image.open(root / "JPEGImages" / f"{name}.jpg") as im:
            assert im.format == "JPEG" and im.size == (VOC_SIZE, VOC_SIZE)
        with Image.open(root / "SegmentationClass" / f"{name}.png") as png:
            assert png.mode == "P" and png.size == (VOC_SIZE, VOC_SIZE)
            assert png.getpalette()[: 3 * 21] == voc_palette()[: 3 * 21]
            labels = np.asarray(png)
        values = set(np.unique(labels).tolist())
        assert values <= allowed, f"{name}: unexpected labels {values - allowed}"
        assert values - {0, 255}, f"{name}: no object"
        assert 0 < np.mean(labels == 255) < 0.2, f"{name}: ignore borders missing or too wide"
        seen |= values
    assert seen == allowed, "every class should appear in 9 images"


def test_voc_palette_is_the_standard_one():
    palette = np.array(voc_palette()).reshape(256, 3)
    assert palette[[0, 1, 15, 20, 255]].tolist() == [
        [0, 0, 0], [128, 0, 0], [192, 128, 128], [0, 64, 128], [224, 224, 192],
    ]  # fmt: skip
    assert VOC_CLASSES[VOC_ID_OF_SHAPE["rectangle"]] == "tvmonitor"


def test_voc_loads_with_mmseg_pascal_voc12_settings(voc, tmp_path):
    pytest.importorskip("mmseg")
    import mmseg.datasets  # noqa: F401  (registers PascalVOCDataset and its transforms)
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS

    config = tmp_path / "voc_shapes.py"  # a config as users write one: the base, unchanged
    config.write_text("_base_ = 'mmseg::_base_/datasets/pascal_voc12.py'\n")
    base = Config.fromfile(str(config))
    assert base.data_root == "data/VOCdevkit/VOC2012"
    for loader, n in ((base.train_dataloader, 6), (base.val_dataloader, 3)):
        cfg = loader.dataset.copy()
        cfg.data_root = voc["data_root"]
        cfg.pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations")]
        with DefaultScope.overwrite_default_scope("mmseg"):
            dataset = DATASETS.build(cfg)
        assert type(dataset).__name__ == "PascalVOCDataset" and len(dataset) == n
        assert dataset.metainfo["classes"] == VOC_CLASSES
        item = dataset[0]
        assert item["gt_seg_map"].shape == item["img"].shape[:2] == (VOC_SIZE, VOC_SIZE)
        allowed = {0, 255} | set(voc["class_ids"].values())
        assert set(np.unique(item["gt_seg_map"]).tolist()) <= allowed


# ---------------------------------------------------------------------------------------------
# Outlines
# ---------------------------------------------------------------------------------------------


def test_mask_to_polygons_outlines_each_piece():
    from pycocotools import mask as mask_utils

    mask = np.zeros((40, 50), dtype=bool)
    mask[5:20, 5:25] = True  # a rectangle...
    mask[10:14, 10:15] = False  # ...with a hole (COCO polygons cannot hold it)
    yy, xx = np.mgrid[:40, :50]
    mask |= (yy - 28) ** 2 + (xx - 38) ** 2 <= 64  # a disc
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 2
    rles = mask_utils.frPyObjects(polygons, 40, 50)
    drawn = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
    filled = mask.copy()
    filled[10:14, 10:15] = True
    assert _mask_iou(drawn, filled) > 0.95


# ---------------------------------------------------------------------------------------------
# CLI, manifest and argument errors
# ---------------------------------------------------------------------------------------------


def _cli():
    return load_tool("tools/dataset_converters/make_shapes_dataset.py")


@pytest.mark.parametrize("task", ["det", "seg"])
def test_cli_writes_once_then_reuses_the_complete_dataset(tmp_path, capsys, task):
    cli = _cli()
    args = [task, str(tmp_path), "--num-train", "3", "--num-val", "2", "--size", "64"]
    assert cli.main(args) == 0
    first = capsys.readouterr().out
    assert "written" in first and "3 train, 2 val" in first
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    assert cli.main(args) == 0
    assert "already complete" in capsys.readouterr().out
    assert stamps == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    # Other parameters regenerate, and leave no stale files of the previous set behind.
    assert cli.main(args[:3] + ["1", "--num-val", "1", "--size", "64", "--seed", "1"]) == 0
    assert "written" in capsys.readouterr().out
    images = [p for p in tmp_path.rglob("*.jpg")]
    assert len(images) == 2
    manifest = _load_json(tmp_path / MANIFEST_NAME)
    assert manifest["params"]["seed"] == 1 and manifest["params"]["num_train"] == 1


def test_incomplete_dataset_is_regenerated(tmp_path):
    summary = make_coco_shapes(tmp_path, num_train=2, num_val=1, img_size=64)
    lost = Path(summary["val_img_dir"]) / "000000000001.jpg"
    lost.unlink()
    again = make_coco_shapes(tmp_path, num_train=2, num_val=1, img_size=64)
    assert not again["reused"] and lost.is_file()
    assert make_coco_shapes(tmp_path, num_train=2, num_val=1, img_size=64)["reused"]


def test_interrupted_generation_is_redone(tmp_path, monkeypatch):
    saved = []
    save = Image.Image.save

    def crash_after_two(image, path, *args, **kwargs):
        if len(saved) == 2:
            raise KeyboardInterrupt
        saved.append(path)
        return save(image, path, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        make_voc_shapes(tmp_path, num_train=3, num_val=1, img_size=64)
    monkeypatch.undo()
    assert not _load_json(tmp_path / MANIFEST_NAME)["complete"]
    summary = make_voc_shapes(tmp_path, num_train=3, num_val=1, img_size=64)
    assert not summary["reused"]
    assert len(list(Path(summary["img_dir"]).glob("*.jpg"))) == 4


def test_dataset_of_an_earlier_generator_version_is_regenerated_not_refused(tmp_path):
    summary = make_coco_shapes(tmp_path, num_train=2, num_val=1, img_size=64)
    manifest = _load_json(tmp_path / MANIFEST_NAME)
    manifest["params"].update(generator="edgenext_dense.datasets.shapes_writer", version=1)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    again = make_coco_shapes(tmp_path, num_train=1, num_val=1, img_size=64)
    assert not again["reused"]
    assert not (Path(summary["train_img_dir"]) / "000000000002.jpg").exists(), "stale image kept"


@pytest.mark.parametrize(
    "make, taken",
    [
        (make_coco_shapes, "annotations/instances_val2017.json"),
        (make_coco_shapes, "train2017/000000000139.jpg"),
        (make_voc_shapes, "VOC2012/ImageSets/Segmentation/train.txt"),
        (make_voc_shapes, "VOC2012/JPEGImages/2007_000032.jpg"),
    ],
)
def test_existing_foreign_data_is_never_overwritten(tmp_path, make, taken):
    """Pointing the generator at a real COCO or VOC folder must not destroy it."""
    path = tmp_path / taken
    path.parent.mkdir(parents=True)
    path.write_bytes(b"real data")
    with pytest.raises(FileExistsError, match="did not write"):
        make(tmp_path, num_train=1, num_val=1, img_size=64)
    assert path.read_bytes() == b"real data"
    assert not (tmp_path / MANIFEST_NAME).exists()


def test_scene_settings_shape_the_dataset_and_its_manifest(tmp_path):
    easy = SceneConfig(num_objects=(1, 2), size_range=(0.4, 0.6))
    summary = make_coco_shapes(tmp_path, num_train=8, num_val=1, img_size=96, scene=easy)
    data = _load_json(summary["train_ann_file"])
    per_image = np.bincount([a["image_id"] for a in data["annotations"]])[1:]
    assert per_image.min() >= 1 and per_image.max() <= 2
    assert min(max(a["bbox"][2:]) for a in data["annotations"]) >= 0.4 * 96 * 0.5
    assert _load_json(tmp_path / MANIFEST_NAME)["params"]["scene"]["num_objects"] == [1, 2]
    assert make_coco_shapes(tmp_path, num_train=8, num_val=1, img_size=96, scene=easy)["reused"]
    assert not make_coco_shapes(tmp_path, num_train=8, num_val=1, img_size=96)["reused"]


@pytest.mark.parametrize(
    "kwargs, named",
    [
        (dict(num_objects=(0, 3)), "num_objects=(0, 3)"),
        (dict(num_objects=(4, 2)), "num_objects=(4, 2)"),
        (dict(size_range=(0.1, 1.5)), "size_range=(0.1, 1.5)"),
        (dict(max_occlusion=1.0), "max_occlusion=1.0"),
    ],
)
def test_bad_scene_settings_raise_value_error_naming_the_value(kwargs, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        SceneConfig(**kwargs)


def test_non_square_images(tmp_path):
    summary = make_coco_shapes(tmp_path, num_train=2, num_val=1, img_size=(64, 112))
    data = _load_json(summary["train_ann_file"])
    assert {(i["height"], i["width"]) for i in data["images"]} == {(64, 112)}
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        assert x + w <= 112 and y + h <= 64
    with Image.open(Path(summary["train_img_dir"]) / "000000000001.jpg") as im:
        assert im.size == (112, 64)


@pytest.mark.parametrize("make", [make_coco_shapes, make_voc_shapes], ids=["coco", "voc"])
@pytest.mark.parametrize(
    "kwargs, named",
    [
        (dict(img_size=16), "img_size=16"),
        (dict(img_size=(64, 20)), "img_size=(64, 20)"),
        (dict(img_size="64"), "'64'"),
        (dict(num_train=0), "num_train must be an int >= 1, got 0"),
        (dict(num_val=-2), "num_val must be an int >= 1, got -2"),
        (dict(seed=-1), "seed must be an int >= 0, got -1"),
        (dict(classes=("circle", "hexagon")), "hexagon"),
        (dict(classes=()), "classes=()"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(tmp_path, make, kwargs, named):
    args = dict(num_train=2, num_val=1, img_size=64)
    args.update(kwargs)
    with pytest.raises(ValueError, match=re.escape(named)):
        make(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists(), "nothing should be written for bad arguments"


def test_cli_reports_bad_arguments_without_a_traceback(tmp_path, capsys):
    assert _cli().main(["seg", str(tmp_path / "x"), "--size", "8"]) == 2
    err = capsys.readouterr().err
    assert "img_size=8 is too small" in err and "Traceback" not in err
