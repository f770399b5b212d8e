"""Unit tests of edgenext_dense.engine: preflight checks, the curves hook, train and evaluate."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub, MMLogger
from PIL import Image
from torch import nn

import edgenext_dense  # noqa: F401
from edgenext_dense.engine import (
    PreflightError,
    TrainingCurvesHook,
    check_checkpoint_task,
    check_dataset_paths,
    check_pretrained_checkpoints,
    collect_curves,
    describe_checkpoint,
    evaluate,
    plot_curves,
    setup_cpu_distributed,
    train,
)
from edgenext_dense.engine import runner as runner_module
from edgenext_dense.engine.hooks import VAL_HISTORY_KEY

REPO = Path(__file__).resolve().parents[2]


def coco_dataset(root: Path, split: str = "train") -> dict:
    return dict(
        type="CocoDataset",
        data_root=str(root),
        ann_file=f"annotations/instances_{split}2017.json",
        data_prefix=dict(img=f"{split}2017/"),
    )


def voc_dataset(root: Path, split: str = "train", masks: str = "SegmentationClass") -> dict:
    return dict(
        type="PascalVOCDataset",
        data_root=str(root),
        ann_file=f"ImageSets/Segmentation/{split}.txt",
        data_prefix=dict(img_path="JPEGImages", seg_map_path=masks),
    )


def make_coco(root: Path) -> None:
    for split in ("train", "val"):
        (root / f"{split}2017").mkdir(parents=True, exist_ok=True)
        (root / "annotations").mkdir(exist_ok=True)
        (root / "annotations" / f"instances_{split}2017.json").write_text("{}")


def loaders(**datasets) -> Config:
    return Config({f"{split}_dataloader": dict(dataset=ds) for split, ds in datasets.items()})


# --------------------------------------------------------------------------- dataset paths


def test_missing_coco_root_names_path_and_shows_layout(tmp_path) -> None:
    root = tmp_path / "data" / "coco"
    cfg = loaders(train=coco_dataset(root), val=coco_dataset(root, "val"))
    with pytest.raises(PreflightError) as err:
        check_dataset_paths(cfg, ("train", "val"), "det")
    message = str(err.value)
    assert f"{root}   (train_dataloader, CocoDataset)" in message
    assert message.count(str(root) + "   (") == 1  # the root once, not once per split
    for part in ("annotations", "instances_train2017.json", "train2017/", "val2017/"):
        assert part in message
    assert "make_shapes_dataset.py det data/shapes_coco" in message


def test_missing_annotation_file_and_image_folder_under_existing_root(tmp_path) -> None:
    make_coco(tmp_path)
    (tmp_path / "annotations" / "instances_val2017.json").unlink()
    (tmp_path / "val2017").rmdir()
    cfg = loaders(train=coco_dataset(tmp_path), val=coco_dataset(tmp_path, "val"))
    with pytest.raises(PreflightError) as err:
        check_dataset_paths(cfg, ("train", "val"), "det")
    message = str(err.value)
    assert str(tmp_path / "annotations" / "instances_val2017.json") in message
    assert str(tmp_path / "val2017/") in message
    assert f"{tmp_path}/train2017/   (" not in message  # present paths are not reported


def test_complete_dataset_passes_and_unused_splits_are_skipped(tmp_path) -> None:
    make_coco(tmp_path)
    cfg = loaders(
        train=coco_dataset(tmp_path),
        val=coco_dataset(tmp_path, "val"),
        test=coco_dataset(tmp_path / "missing"),
    )
    check_dataset_paths(cfg, ("train", "val"), "det")
    with pytest.raises(PreflightError, match="test_dataloader"):
        check_dataset_paths(cfg, ("test",), "det")


def test_voc_aug_masks_missing_inside_wrapped_datasets(tmp_path) -> None:
    root = tmp_path / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    (root / "ImageSets/Segmentation/train.txt").write_text("a\n")
    aug = voc_dataset(root, "aug", masks="SegmentationClassAug")
    cfg = loaders(
        train=dict(
            type="RepeatDataset",
            times=2,
            dataset=dict(type="ConcatDataset", datasets=[voc_dataset(root), aug]),
        )
    )
    with pytest.raises(PreflightError) as err:
        check_dataset_paths(cfg, ("train",), "seg")
    message = str(err.value)
    assert str(root / "SegmentationClassAug") in message
    assert str(root / "ImageSets/Segmentation/aug.txt") in message
    assert "voc_aug.py" in message and "JPEGImages/" in message


def test_generated_shapes_root_gets_its_own_command(tmp_path) -> None:
    root = tmp_path / "shapes_voc" / "VOC2012"
    with pytest.raises(PreflightError) as err:
        check_dataset_paths(loaders(val=voc_dataset(root, "val")), ("val",), "seg")
    # the generator writes OUT_DIR/VOC2012, so the command names the parent
    assert f"make_shapes_dataset.py seg {tmp_path / 'shapes_voc'}\n" in str(err.value) + "\n"


def test_remote_paths_are_not_checked() -> None:
    cfg = loaders(train=dict(type="CocoDataset", data_root="s3://bucket/coco/", ann_file="a.json"))
    check_dataset_paths(cfg, ("train",), "det")


# --------------------------------------------------------------------------- checkpoints


def test_missing_pretrained_checkpoint_message(tmp_path) -> None:
    path = str(tmp_path / "checkpoints" / "edgenext_small.pth")
    cfg = Config(dict(model=dict(backbone=dict(init_cfg=dict(type="Pretrained", checkpoint=path)))))
    with pytest.raises(PreflightError) as err:
        check_pretrained_checkpoints(cfg)
    message = str(err.value)
    assert f"{path} does not exist (model.backbone.init_cfg)" in message
    assert "README 'Pretrained weights'" in message  # where to get it
    assert "--cfg-options model.backbone.init_cfg=None to train from scratch" in message
    Path(path).parent.mkdir()
    Path(path).write_bytes(b"x")
    check_pretrained_checkpoints(cfg)


def test_missing_shapes_checkpoint_names_the_command_that_makes_it(tmp_path: Path) -> None:
    # the shapes demo configs say how their backbone file is made
    cfg = Config.fromfile(
        str(
            Path(__file__).resolve().parents[2]
            / "configs/seg/deeplabv3_edgenext-xxs_1xb8-1k_shapesvoc-192.py"
        )
    )
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / "none.pth")
    with pytest.raises(
        PreflightError,
        match=r"none\.pth does not exist \(model\.backbone\.init_cfg\); "
        r"make it with: python tools/pretrain_shapes\.py --out ",
    ):
        check_pretrained_checkpoints(cfg)


def test_pretrained_in_init_cfg_list_and_urls() -> None:
    cfg = Config(
        dict(
            model=dict(
                neck=dict(
                    init_cfg=[dict(type="Normal"), dict(type="Pretrained", checkpoint="no.pth")]
                ),
                backbone=dict(init_cfg=dict(type="Pretrained", checkpoint="https://x/y.pth")),
            )
        )
    )
    with pytest.raises(PreflightError, match=r"no\.pth does not exist \(model\.neck\.init_cfg\)"):
        check_pretrained_checkpoints(cfg)


DET_MODEL = Config(
    dict(
        model=dict(
            type="SingleStageDetector",
            backbone=dict(type="X"),
            neck=dict(type="N"),
            bbox_head=dict(type="H"),
        )
    )
)
SEG_MODEL = Config(
    dict(
        model=dict(
            type="EncoderDecoder",
            backbone=dict(type="X"),
            decode_head=dict(type="H"),
            auxiliary_head=dict(type="A"),
        )
    )
)


def save(path: Path, state: dict, wrap: str = "state_dict") -> str:
    torch.save({wrap: {k: torch.zeros(1) for k in state}}, path)
    return str(path)


def test_classification_checkpoint_refused_for_detector(tmp_path) -> None:
    path = save(tmp_path / "cls.pth", {"stages.0.0.dwconv.weight", "head.fc.weight"}, "model")
    with pytest.raises(PreflightError) as err:
        check_checkpoint_task(path, DET_MODEL, "det")
    message = str(err.value)
    assert message.startswith(f"the checkpoint {path} is not a detector for this config")
    assert "image-classification checkpoint" in message
    assert "stages (1)" in message and "head (1)" in message
    assert "'backbone.', 'bbox_head.'" in message  # what was expected (the neck is optional)


def test_detector_checkpoint_refused_for_segmentor_and_vice_versa(tmp_path) -> None:
    det = save(tmp_path / "det.pth", {"backbone.a", "neck.b", "bbox_head.c"})
    seg = save(tmp_path / "seg.pth", {"module.backbone.a", "module.decode_head.c"})
    with pytest.raises(PreflightError, match="not a segmentor.*looks like a detection model"):
        check_checkpoint_task(det, SEG_MODEL, "seg")
    with pytest.raises(PreflightError, match="looks like a segmentation model"):
        check_checkpoint_task(seg, DET_MODEL, "det")
    check_checkpoint_task(det, DET_MODEL, "det")
    check_checkpoint_task(seg, SEG_MODEL, "seg")  # DDP's module. prefix; no auxiliary head


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


def test_unreadable_or_missing_checkpoint(tmp_path) -> None:
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(PreflightError, match=f"could not read the checkpoint {broken}"):
        check_checkpoint_task(str(broken), DET_MODEL, "det")
    torch.save({"state_dict": {"backbone.a": _RunsCode()}}, broken)
    with pytest.raises(PreflightError, match=r"refused global `\w+\.system`") as err:
        check_checkpoint_task(str(broken), DET_MODEL, "det")
    assert "weights_only" not in str(err.value)  # no advice to load it unsafely
    with pytest.raises(PreflightError, match="does not exist"):
        check_checkpoint_task(str(tmp_path / "nope.pth"), DET_MODEL, "det")


def test_describe_backbone_only_checkpoint() -> None:
    assert describe_checkpoint(["backbone.a", "backbone.b"]).startswith(
        "a backbone-only checkpoint (top-level keys: backbone (2))"
    )


# --------------------------------------------------------------------------- runner helpers


def test_cpu_distributed_setup(monkeypatch) -> None:
    if torch.cuda.is_available():
        pytest.skip("the gloo fallback is for machines without CUDA")
    cfg = Config(
        dict(
            launcher="pytorch",
            env_cfg=dict(dist_cfg=dict(backend="nccl", timeout=60)),
            sync_bn="torch",
            model=dict(
                backbone=dict(norm_cfg=dict(type="SyncBN", requires_grad=True)),
                heads=[dict(norm_cfg=dict(type="MMSyncBN"))],
            ),
        )
    )
    started = []
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda **kw: started.append(kw))
    assert setup_cpu_distributed(cfg) is True
    assert started and started[0]["backend"] == "gloo"
    assert started[0]["timeout"].total_seconds() == 60
    assert cfg.env_cfg.dist_cfg.backend == "gloo"
    assert cfg.model_wrapper_cfg.device_ids is None
    assert cfg.model.backbone.norm_cfg.type == "BN" and cfg.model.heads[0].norm_cfg.type == "BN"
    assert cfg.sync_bn is None
    assert setup_cpu_distributed(Config(dict(launcher="none"))) is False


# --------------------------------------------------------------------------- curves hook


def fake_runner(tmp_path: Path, name: str, it: int = 0) -> SimpleNamespace:
    return SimpleNamespace(
        message_hub=MessageHub.get_instance(name),
        iter=it,
        epoch=0,
        work_dir=str(tmp_path),
        cfg=SimpleNamespace(filename="configs/det/my_config.py"),
        logger=MMLogger.get_instance("test_engine"),
        experiment_name="exp",
    )


def test_collect_curves_aligns_iterations_and_picks_losses() -> None:
    hub = MessageHub.get_instance("test_collect_curves")
    for value in (3.0, 2.0, 1.0):
        hub.update_scalar("train/loss", value)
        hub.update_scalar("train/decode.loss_ce", value / 2)
        hub.update_scalar("train/decode.acc_seg", 50.0)
        hub.update_scalar("train/lr", 0.1)
    hub.update_info(VAL_HISTORY_KEY, [dict(iter=6, epoch=1, metrics=dict(mIoU=40.0))])
    curves = collect_curves(hub, current_iter=7)  # e.g. resumed: history of iterations 5-7
    assert sorted(curves["train"]) == ["decode.loss_ce", "loss"]
    assert curves["train"]["loss"] == ([5, 6, 7], [3.0, 2.0, 1.0])
    assert curves["val"] == {"mIoU": ([6], [40.0])}


def test_plot_curves_writes_png_with_both_panels(tmp_path) -> None:
    curves = {
        "train": {"loss": ([1, 2, 3], [3.0, 2.0, 1.0]), "loss_cls": ([1, 2, 3], [2.0, 1.5, 1.0])},
        "val": {"coco/bbox_mAP": ([3], [0.2])},
    }
    out = tmp_path / "curves.png"
    labels = plot_curves(curves, str(out), title="t")
    assert labels == ["train: loss", "train: loss_cls", "val: coco/bbox_mAP"]
    with Image.open(out) as image:
        assert image.size == (800, 640)  # two panels
        pixels = np.asarray(image.convert("RGB"))
    assert (pixels != 255).any(axis=-1).mean() > 0.02  # something was drawn
    only_train = plot_curves({"train": curves["train"], "val": {}}, str(out))
    assert only_train == ["train: loss", "train: loss_cls"]
    with Image.open(out) as image:
        assert image.size == (800, 320)


def test_hook_records_validations_and_survives_resume(tmp_path) -> None:
    hook = TrainingCurvesHook()
    runner = fake_runner(tmp_path, "test_hook_run1")
    for it in (1, 2):
        runner.iter = it
        runner.message_hub.update_scalar("train/loss", 5.0 - it)
    metrics = {"coco/bbox_mAP": 0.25, "coco/bbox_mAP_l": -1.0, "coco/classwise": "table"}
    hook.after_val_epoch(runner, metrics)
    assert (tmp_path / "curves.png").is_file()
    saved = json.loads((tmp_path / "curves.json").read_text())
    assert saved["train"]["loss"] == [[1, 2], [4.0, 3.0]]
    assert saved["val"] == {"coco/bbox_mAP": [[2], [0.25]]}  # no -1 ("n/a"), no tables

    # A checkpoint saved at iteration 2 before that validation, then a resumed run: the
    # message hub lacks the validation, curves.json has it.
    resumed = fake_runner(tmp_path, "test_hook_run2", it=2)
    resumed.message_hub.update_scalar("train/loss", 4.0)
    resumed.message_hub.update_scalar("train/loss", 3.0)
    hook.before_train(resumed)
    resumed.iter = 3
    resumed.message_hub.update_scalar("train/loss", 2.0)
    hook.after_val_epoch(resumed, {"coco/bbox_mAP": 0.5})
    hook.after_train(resumed)
    saved = json.loads((tmp_path / "curves.json").read_text())
    assert saved["train"]["loss"] == [[1, 2, 3], [4.0, 3.0, 2.0]]
    assert saved["val"] == {"coco/bbox_mAP": [[2, 3], [0.25, 0.5]]}


def test_hook_is_buildable_from_mmdet_and_mmseg_scopes() -> None:
    from mmdet.registry import HOOKS as DET_HOOKS
    from mmseg.registry import HOOKS as SEG_HOOKS

    for registry in (DET_HOOKS, SEG_HOOKS):
        hook = registry.build(dict(type="edgenext_dense.TrainingCurvesHook", out_file="c.png"))
        assert isinstance(hook, TrainingCurvesHook) and hook.out_file == "c.png"


# --------------------------------------------------------------------------- train / evaluate


class _Model(nn.Module):
    """Stands for a detector (``backbone``, ``bbox_head``) or segmentor (``decode_head``)."""

    def __init__(self, head: str, width: int = 2) -> None:
        super().__init__()
        self.backbone = nn.Linear(width, width)
        setattr(self, head, nn.Linear(width, 1))


@pytest.fixture
def built(monkeypatch) -> list:
    """The Runners train()/evaluate() build, each with its ``cfg``; they only pretend to run."""
    runners = []

    def build(cfg):
        head = "bbox_head" if cfg.default_scope == "mmdet" else "decode_head"
        runners.append(SimpleNamespace(
            cfg=cfg,
            model=_Model(head),
            train=lambda: None,
            test=lambda: {"coco/bbox_mAP": 0.279, "coco/bbox_mAP_l": -1.0, "table": "x"},
            test_evaluator=SimpleNamespace(metrics=[]),
            rank=0,
        ))  # fmt: skip
        return runners[-1]

    monkeypatch.setattr(runner_module, "build_runner", build)
    return runners


def write_config(path: Path, scope: str = "mmdet", **fields) -> str:
    """A config of the scope's model kind (no data), plus ``fields``."""
    head = "bbox_head" if scope == "mmdet" else "decode_head"
    model = {"type": "M", "backbone": dict(type="B"), head: dict(type="H")}
    fields = dict(default_scope=scope, model=model, **fields)
    path.write_text("".join(f"{key} = {value!r}\n" for key, value in fields.items()))
    return str(path)


def test_train_work_dir_defaults_and_curves_hook_added_once(tmp_path, monkeypatch, built):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path / "my_det.py", custom_hooks=[dict(type="EMAHook")])
    train(config, cfg_options={"model.type": "Y"})
    cfg = built[-1].cfg
    assert cfg.work_dir == os.path.join("./work_dirs", "my_det") and cfg.model.type == "Y"
    assert cfg.launcher == "none"
    assert [h["type"] for h in cfg.custom_hooks] == ["EMAHook", "edgenext_dense.TrainingCurvesHook"]
    listed = [dict(type="edgenext_dense.TrainingCurvesHook", out_file="c.png")]
    train(write_config(tmp_path / "c.py", custom_hooks=listed), work_dir="w")
    assert built[-1].cfg.work_dir == "w" and built[-1].cfg.custom_hooks == listed
    with pytest.raises(PreflightError, match="nope.py does not exist"):
        train(str(tmp_path / "nope.py"))
    with pytest.raises(PreflightError, match="default_scope='mmpretrain'"):
        train(write_config(tmp_path / "cls.py", scope="mmpretrain"))


def test_amp_sets_dynamic_loss_scale_or_explains_cpu(tmp_path, monkeypatch, built):
    config = write_config(tmp_path / "c.py", optim_wrapper=dict(type="OptimWrapper"))
    monkeypatch.setattr("mmengine.device.get_device", lambda: "cpu")
    with pytest.raises(PreflightError, match="--amp needs a GPU"):
        train(config, work_dir=str(tmp_path / "w"), amp=True)
    monkeypatch.setattr("mmengine.device.get_device", lambda: "cuda")
    train(config, work_dir=str(tmp_path / "w"), amp=True)
    assert built[-1].cfg.optim_wrapper == dict(type="AmpOptimWrapper", loss_scale="dynamic")


def test_train_stops_on_missing_resume_checkpoint_or_auto_scale_lr(tmp_path, built) -> None:
    config = write_config(tmp_path / "c.py", scope="mmseg")
    with pytest.raises(PreflightError, match=r"resume from .*nope\.pth: the file does not exist"):
        train(config, work_dir=str(tmp_path / "w"), resume=str(tmp_path / "nope.pth"))
    with pytest.raises(PreflightError, match="--auto-scale-lr needs auto_scale_lr"):
        train(config, work_dir=str(tmp_path / "w"), auto_scale_lr=True)
    assert not built


def test_evaluate_out_options_and_printed_metrics(tmp_path, built, capsys) -> None:
    ckpt = tmp_path / "det.pth"
    torch.save({"state_dict": _Model("bbox_head").state_dict()}, ckpt)
    evaluators = [dict(type="CocoMetric"), dict(type="Other")]
    det = write_config(tmp_path / "det.py", test_evaluator=evaluators)
    evaluate(det, str(ckpt), work_dir=str(tmp_path), out="res/dets.json")
    assert built[-1].cfg.test_evaluator[0]["outfile_prefix"] == "res/dets"
    assert "outfile_prefix" not in built[-1].cfg.test_evaluator[1]
    printed = capsys.readouterr().out
    assert re.search(r"coco/bbox_mAP\s+0\.2790", printed) and "table" not in printed
    assert re.search(r"coco/bbox_mAP_l\s+n/a", printed)
    assert "Predictions written to res/dets.bbox.json" in printed
    evaluate(det, str(ckpt), work_dir=str(tmp_path), out="r.pkl")
    assert [type(m).__name__ for m in built[-1].test_evaluator.metrics] == ["DumpDetResults"]
    with pytest.raises(PreflightError, match=r"\.pkl or \.json"):
        evaluate(det, str(ckpt), work_dir=str(tmp_path), out="r.txt")
    voc = write_config(tmp_path / "voc.py", test_evaluator=dict(type="VOCMetric"))
    with pytest.raises(PreflightError, match="CocoMetric"):
        evaluate(voc, str(ckpt), work_dir=str(tmp_path), out="r.json")

    seg_ckpt = tmp_path / "seg.pth"
    torch.save({"state_dict": _Model("decode_head").state_dict()}, seg_ckpt)
    seg = write_config(tmp_path / "seg.py", scope="mmseg", test_evaluator=dict(type="IoUMetric"))
    evaluate(seg, str(seg_ckpt), work_dir=str(tmp_path), out="preds")
    assert built[-1].cfg.test_evaluator.output_dir == "preds"
    evaluate(seg, str(seg_ckpt), work_dir=str(tmp_path), out="r.pkl")
    assert [type(m).__name__ for m in built[-1].test_evaluator.metrics] == ["DumpResults"]
    with pytest.raises(PreflightError, match="does not fit"):  # another width
        torch.save({"state_dict": _Model("decode_head", width=3).state_dict()}, seg_ckpt)
        evaluate(seg, str(seg_ckpt), work_dir=str(tmp_path))
