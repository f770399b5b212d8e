"""A dataset root that exists but has not been through our converters: the preflight check names
the missing path and the exact command that writes it (voc_aug.py, coco_to_voc_seg.py)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from tool_runner import load_tool

import edgenext_dense  # noqa: F401  (first: registers modules, applies compat fixes)
from edgenext_dense.engine.preflight import PreflightError, check_dataset_paths

REPO = Path(__file__).resolve().parents[2]
COCO_CONFIG = REPO / "configs/seg/deeplabv3_edgenext-s_4xb32-50e_voc12aug-coco-512.py"
VOC_AUG = "tools/dataset_converters/voc_aug.py"
COCO_TO_VOC = "tools/dataset_converters/coco_to_voc_seg.py"


@pytest.fixture(autouse=True)
def _mmseg_scope() -> None:
    """mmseg's registries for every test here, whatever scope the tests before it left."""
    init_default_scope("mmseg")


def _voc(tmp_path: Path, with_aug: bool) -> Path:
    """A VOCdevkit/VOC2012 with VOC's own masks and lists; SBD's only when ``with_aug``."""
    root = tmp_path / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    for split in ("train", "val"):
        (root / f"ImageSets/Segmentation/{split}.txt").write_text("2007_000032\n")
    if with_aug:
        (root / "SegmentationClassAug").mkdir()
        (root / "ImageSets/Segmentation/aug.txt").write_text("2007_000032\n")
    return root


def _coco(tmp_path: Path, converted: bool) -> Path:
    """A COCO root with its train2017 images; coco_to_voc_seg.py's output when ``converted``."""
    root = tmp_path / "coco"
    (root / "train2017").mkdir(parents=True)
    (root / "annotations").mkdir()
    (root / "annotations/instances_train2017.json").write_text("{}")
    if converted:
        (root / "voc_seg/train2017").mkdir(parents=True)
        (root / "voc_seg/train2017.txt").write_text("000000000009\n")
    return root


def _roots(voc: Path, coco: Path) -> Dict[str, str]:
    """The --cfg-options that point the VOC + COCO config at the given roots."""
    return {
        "train_dataloader.dataset.datasets.0.data_root": str(voc),
        "train_dataloader.dataset.datasets.1.data_root": str(coco),
        "val_dataloader.dataset.data_root": str(voc),
        "test_dataloader.dataset.data_root": str(voc),
    }


def _config(voc: Path, coco: Path) -> Config:
    cfg = Config.fromfile(str(COCO_CONFIG))
    cfg.merge_from_dict(_roots(voc, coco))
    return cfg


def _preflight_message(cfg: Config) -> str:
    with pytest.raises(PreflightError) as err:
        check_dataset_paths(cfg, ("train", "val"), "seg")
    return str(err.value)


def _command(message: str, script: str) -> List[str]:
    """The arguments of the ``python SCRIPT ...`` line of a message."""
    lines = [line.strip() for line in message.splitlines() if f"python {script} " in line]
    assert len(lines) == 1, message
    return shlex.split(lines[0])[2:]


def test_voc_root_without_sbd_masks_names_them_and_the_voc_aug_command(tmp_path) -> None:
    voc = _voc(tmp_path, with_aug=False)
    message = _preflight_message(_config(voc, _coco(tmp_path, converted=True)))
    assert str(voc / "SegmentationClassAug") in message
    assert str(voc / "ImageSets/Segmentation/aug.txt") in message
    devkit = tmp_path / "VOCdevkit"
    assert f"python {VOC_AUG} {devkit} SBD_DIR\n" in message
    assert "benchmark.tgz" in message  # where SBD_DIR comes from
    # The command parses with the tool's own arguments: the devkit, then SBD.
    args = load_tool(VOC_AUG).parse_args(_command(message, VOC_AUG))
    assert Path(args.devkit_path) == devkit and args.aug_path == "SBD_DIR"
    assert COCO_TO_VOC not in message  # the COCO side is complete


def test_voc_aug_command_names_sbd_where_it_already_is(tmp_path) -> None:
    voc = _voc(tmp_path, with_aug=False)
    sbd = tmp_path / "VOCdevkit" / "benchmark_RELEASE"
    (sbd / "dataset/cls").mkdir(parents=True)
    message = _preflight_message(_config(voc, _coco(tmp_path, converted=True)))
    assert f"python {VOC_AUG} {tmp_path / 'VOCdevkit'} {sbd}\n" in message + "\n"
    assert "SBD_DIR" not in message


def test_unconverted_coco_root_names_the_masks_and_the_converter_command(tmp_path) -> None:
    coco = _coco(tmp_path, converted=False)
    message = _preflight_message(_config(_voc(tmp_path, with_aug=True), coco))
    assert str(coco / "voc_seg/train2017.txt") in message
    assert str(coco / "voc_seg/train2017") in message
    assert f"python {COCO_TO_VOC} {coco} --split train2017\n" in message
    args = load_tool(COCO_TO_VOC).parse_args(_command(message, COCO_TO_VOC))
    assert Path(args.coco_root) == coco and args.split == "train2017"
    # COCO's layout, not VOC's: the converted COCO set is read by PascalVOCDataset.
    assert "instances_train2017.json" in message
    assert VOC_AUG not in message and "SegmentationClassAug" not in message


def test_converted_data_passes(tmp_path) -> None:
    cfg = _config(_voc(tmp_path, with_aug=True), _coco(tmp_path, converted=True))
    check_dataset_paths(cfg, ("train", "val"), "seg")


@pytest.mark.slow
def test_train_tool_stops_with_both_commands(tmp_path) -> None:
    voc, coco = _voc(tmp_path, with_aug=False), _coco(tmp_path, converted=False)
    options = [f"{key}={value}" for key, value in _roots(voc, coco).items()]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "tools/train.py", str(COCO_CONFIG), "--work-dir", str(tmp_path / "work"),
         "--cfg-options", *options],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert str(voc / "SegmentationClassAug") in proc.stderr
    assert f"python {VOC_AUG} {tmp_path / 'VOCdevkit'} SBD_DIR" in proc.stderr
    assert str(coco / "voc_seg/train2017.txt") in proc.stderr
    assert f"python {COCO_TO_VOC} {coco} --split train2017" in proc.stderr
