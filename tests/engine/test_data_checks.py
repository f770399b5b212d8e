"""The COCO annotation check: what mmdet would drop silently stops the run, or 'warn' logs it.

Each test writes a tiny COCO dataset (two 64x48 images, five shape classes) and checks it with the
real shapes demo config, its data roots pointed at the tiny dataset.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from mmengine.logging import MMLogger

from edgenext_dense.engine.data_checks import check_datasets
from edgenext_dense.engine.preflight import PreflightError

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "configs/det/ssdlite_edgenext-xxs_1xb16-16e_shapes-256.py"
SHAPES = ("circle", "rectangle", "triangle", "star", "cross")
WIDTH, HEIGHT = 64, 48


def _clean_coco() -> Dict[str, Any]:
    """Two images, four well-formed annotations (ids 101-104), the demo's five categories."""
    images = [dict(id=i, file_name=f"{i:06d}.jpg", width=WIDTH, height=HEIGHT) for i in (1, 2)]
    boxes = [[4, 4, 20, 10], [30, 10, 20, 30], [0, 0, 64, 48], [10, 20, 5.5, 3]]
    annotations = [
        dict(id=101 + k, image_id=1 + k % 2, category_id=1 + k, bbox=box, area=box[2] * box[3],
             iscrowd=0)
        for k, box in enumerate(boxes)
    ]  # fmt: skip
    categories = [dict(id=i + 1, name=name, supercategory="shape") for i, name in enumerate(SHAPES)]
    return dict(images=images, annotations=annotations, categories=categories)


def _write_dataset(
    root: Path, coco: Dict[str, Any] | None = None, split: str = "train2017"
) -> Path:
    """Write ``annotations/instances_<split>.json`` and the images of the clean set under root."""
    (root / split).mkdir(parents=True, exist_ok=True)
    for image in _clean_coco()["images"]:
        cv2.imwrite(str(root / split / image["file_name"]), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    ann_file = root / "annotations" / f"instances_{split}.json"
    ann_file.parent.mkdir(parents=True, exist_ok=True)
    ann_file.write_text(json.dumps(coco if coco is not None else _clean_coco()))
    return ann_file


@pytest.fixture(scope="module")
def demo_cfg() -> Config:
    return Config.fromfile(str(DEMO_CONFIG))


def _config(demo_cfg: Config, root: Path, **options: Any) -> Config:
    """The demo config with every dataloader reading ``root``, plus ``options``."""
    cfg = copy.deepcopy(demo_cfg)
    splits = ("train", "val", "test")
    cfg.merge_from_dict({f"{s}_dataloader.dataset.data_root": f"{root}/" for s in splits})
    cfg.merge_from_dict(options)
    return cfg


def _error(cfg: Config, splits=("train",)) -> str:
    with pytest.raises(PreflightError) as info:
        check_datasets(cfg, splits, "det")
    return str(info.value)


def _line_with(message: str, words: str) -> str:
    """The message line that mentions ``words`` (case-insensitive); fails when there is none."""
    lines = [line for line in message.splitlines() if words.lower() in line.lower()]
    assert lines, f"no line mentions {words!r} in:\n{message}"
    return lines[0]


def _has_number(line: str, number: int) -> bool:
    return re.search(rf"(?<![\d.]){number}(?![\d.])", line) is not None


def _add_annotation(**fields: Any) -> Callable[[Dict[str, Any]], None]:
    def mutate(coco: Dict[str, Any]) -> None:
        defaults = dict(image_id=1, category_id=1, iscrowd=0, area=50.0)
        coco["annotations"].append({**defaults, **fields})

    return mutate


def _unknown_categories(coco: Dict[str, Any]) -> None:
    coco["categories"].append(dict(id=7, name="dog", supercategory="animal"))
    for ann_id, category in ((701, 7), (702, 99)):
        _add_annotation(id=ann_id, bbox=[5, 5, 10, 10])(coco)
        coco["annotations"][-1]["category_id"] = category


def _missing_image(coco: Dict[str, Any]) -> None:
    coco["images"].append(dict(id=907, file_name="gone.jpg", width=WIDTH, height=HEIGHT))


# (problem, how to make it, words of its message line, count, an example id in that line)
PROBLEMS = [
    ("unknown category", _unknown_categories, "category_id", 2, 702),
    ("zero-width box", _add_annotation(id=703, bbox=[5, 5, 0, 10]), "empty", 1, 703),
    ("negative-height box", _add_annotation(id=704, bbox=[5, 5, 10, -3]), "empty", 1, 704),
    ("box past the border", _add_annotation(id=705, bbox=[50, 5, 20, 10]), "beyond", 1, 705),
    ("box outside", _add_annotation(id=706, bbox=[70, 5, 20, 10]), "entirely outside", 1, 706),
    ("sub-pixel box", _add_annotation(id=708, bbox=[5, 5, 0.5, 10]), "under 1 pixel", 1, 708),
    ("unknown image id", _add_annotation(id=709, bbox=[5, 5, 10, 10], image_id=999), "image_id",
     1, 709),
    ("missing image file", _missing_image, "no file", 1, 907),
    ("annotation without area", lambda c: c["annotations"][0].pop("area"), "lack", 1, 101),
]  # fmt: skip


@pytest.mark.parametrize(
    "mutate, words, count, example_id", [p[1:] for p in PROBLEMS], ids=[p[0] for p in PROBLEMS]
)
def test_problem_names_file_count_and_example(tmp_path, demo_cfg, mutate, words, count, example_id):
    coco = _clean_coco()
    mutate(coco)
    ann_file = _write_dataset(tmp_path, coco)
    message = _error(_config(demo_cfg, tmp_path))
    assert str(ann_file) in message
    line = _line_with(message, words)
    assert _has_number(line, count) and str(example_id) in line, line


def test_clean_dataset_passes_every_split(tmp_path, demo_cfg):
    _write_dataset(tmp_path, split="train2017")
    _write_dataset(tmp_path, split="val2017")
    check_datasets(_config(demo_cfg, tmp_path), ("train", "val", "test"), "det")


def test_crowd_annotations_are_not_problems(tmp_path, demo_cfg):
    coco = _clean_coco()
    _add_annotation(id=710, bbox=[5, 5, 0.5, 0.5])(coco)
    coco["annotations"][-1].update(iscrowd=1, category_id=42)
    _write_dataset(tmp_path, coco)
    check_datasets(_config(demo_cfg, tmp_path), ("train",), "det")


def test_malformed_json_names_file_and_position(tmp_path, demo_cfg):
    ann_file = _write_dataset(tmp_path)
    ann_file.write_text('{"images": [{"id": 1,}]}')
    message = _error(_config(demo_cfg, tmp_path))
    assert str(ann_file) in message
    assert "line 1 column" in message


def test_not_a_coco_dict_names_the_missing_key(tmp_path, demo_cfg):
    ann_file = _write_dataset(tmp_path, coco=dict(images=[], annotations=[]))
    message = _error(_config(demo_cfg, tmp_path))
    assert str(ann_file) in message and "'categories'" in message


def test_every_problem_of_every_file_in_one_error(tmp_path, demo_cfg):
    bad = _clean_coco()
    _unknown_categories(bad)
    _add_annotation(id=703, bbox=[5, 5, 0, 10])(bad)
    train_file = _write_dataset(tmp_path, bad, split="train2017")
    val_file = _write_dataset(tmp_path, bad, split="val2017")
    message = _error(_config(demo_cfg, tmp_path), ("train", "val"))
    assert str(train_file) in message and str(val_file) in message
    assert "702" in _line_with(message, "category_id") and "703" in _line_with(message, "empty")
    assert "on_error='warn'" in message  # says how to go on


def test_wrapped_datasets_are_checked(tmp_path, demo_cfg):
    coco = _clean_coco()
    _unknown_categories(coco)
    ann_file = _write_dataset(tmp_path, coco)
    cfg = _config(demo_cfg, tmp_path)
    leaf = cfg.train_dataloader.dataset
    cfg.train_dataloader.dataset = dict(
        type="ConcatDataset",
        datasets=[dict(type="RepeatDataset", times=2, dataset=leaf)],
    )
    assert str(ann_file) in _error(cfg)


def test_without_metainfo_the_80_coco_classes_apply(tmp_path, demo_cfg):
    coco = _clean_coco()
    coco["categories"] = [dict(id=1, name="person"), dict(id=2, name="circle")]
    for ann in coco["annotations"]:
        ann["category_id"] = 1 if ann["id"] < 103 else 2
    _write_dataset(tmp_path, coco)
    cfg = _config(demo_cfg, tmp_path)
    cfg.train_dataloader.dataset.pop("metainfo")
    line = _line_with(_error(cfg), "category_id")
    assert "'circle'" in line and "103" in line and "101" not in line


def test_class_order_differing_from_the_file_is_reported(tmp_path, demo_cfg):
    _write_dataset(tmp_path)
    cfg = _config(demo_cfg, tmp_path)
    cfg.train_dataloader.dataset.metainfo = dict(classes=tuple(reversed(SHAPES)))
    assert "order" in _error(cfg)


def test_large_sets_check_a_fixed_sample_of_images(tmp_path, demo_cfg):
    coco = _clean_coco()
    coco["images"] += [
        dict(id=i, file_name=f"absent_{i}.jpg", width=WIDTH, height=HEIGHT)
        for i in range(10, 20_010)
    ]
    _write_dataset(tmp_path, coco)
    line = _line_with(_error(_config(demo_cfg, tmp_path)), "no file")
    assert "2000" in line and "sample" in line


def _log_file(tmp_path: Path, name: str) -> Path:
    """Make a fresh MMLogger the current one, writing to a file; print_log('current') goes there."""
    path = tmp_path / f"{name}.log"
    MMLogger.get_instance(f"test_data_checks_{name}", log_file=str(path))
    return path


def test_warn_logs_each_problem_and_goes_on(tmp_path, demo_cfg):
    coco = _clean_coco()
    _unknown_categories(coco)
    _add_annotation(id=703, bbox=[5, 5, 0, 10])(coco)
    ann_file = _write_dataset(tmp_path, coco)
    log = _log_file(tmp_path, "warn")
    cfg = _config(demo_cfg, tmp_path, **{"data_check.on_error": "warn"})
    check_datasets(cfg, ("train",), "det")
    warnings = [line for line in log.read_text().splitlines() if "WARNING" in line]
    assert len(warnings) == 2
    assert all(str(ann_file) in line for line in warnings)
    assert "702" in _line_with("\n".join(warnings), "category_id")


def test_warn_skips_missing_training_images(tmp_path, demo_cfg):
    coco = _clean_coco()
    _missing_image(coco)
    _write_dataset(tmp_path, coco)
    log = _log_file(tmp_path, "skip")
    cfg = _config(demo_cfg, tmp_path, **{"data_check.on_error": "warn"})
    check_datasets(cfg, ("train",), "det")
    assert "907" in log.read_text()
    loaders = [s for s in cfg.train_dataloader.dataset.pipeline if s.type == "LoadImageFromFile"]
    assert loaders and all(s.ignore_empty for s in loaders)


def test_warn_still_stops_on_missing_val_images(tmp_path, demo_cfg):
    coco = _clean_coco()
    _missing_image(coco)
    ann_file = _write_dataset(tmp_path, coco, split="val2017")
    _log_file(tmp_path, "val")
    cfg = _config(demo_cfg, tmp_path, **{"data_check.on_error": "warn"})
    message = _error(cfg, ("val",))
    assert str(ann_file) in message and "907" in message


def test_unknown_on_error_value_is_refused(tmp_path, demo_cfg):
    _write_dataset(tmp_path)
    cfg = _config(demo_cfg, tmp_path, **{"data_check.on_error": "ignore"})
    assert "'ignore'" in _error(cfg)


@pytest.mark.slow
def test_train_stops_on_bad_annotations(tmp_path):
    coco = _clean_coco()
    _unknown_categories(coco)
    ann_file = _write_dataset(tmp_path, coco, split="train2017")
    _write_dataset(tmp_path, split="val2017")
    options: List[str] = [
        f"{split}_dataloader.dataset.data_root={tmp_path}/" for split in ("train", "val", "test")
    ]
    options += [
        f"val_evaluator.ann_file={tmp_path}/annotations/instances_val2017.json",
        "model.backbone.init_cfg=None",
        "train_cfg.max_epochs=1",
        "train_dataloader.num_workers=0",
        "train_dataloader.persistent_workers=False",
        "val_dataloader.num_workers=0",
        "val_dataloader.persistent_workers=False",
    ]
    result = subprocess.run(
        [sys.executable, "tools/train.py", str(DEMO_CONFIG), "--work-dir", str(tmp_path / "work"),
         "--cfg-options", *options],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode != 0
    assert str(ann_file) in result.stderr
