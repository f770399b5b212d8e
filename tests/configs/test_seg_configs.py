"""Every segmentation config builds, trains and predicts, says what its name says, and keeps the
paper's recipe; the pipelines stop on bad masks with the file's name."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmengine.utils import import_modules_from_strings
from mmseg.registry import DATASETS, MODELS
from mmseg.structures import SegDataSample
from PIL import Image

from edgenext_dense.datasets.seg_transforms import SegMaskError
from edgenext_dense.datasets.synthetic import make_voc_shapes

REPO = Path(__file__).resolve().parents[2]
SEG_CONFIGS = sorted((REPO / "configs" / "seg").glob("*.py"))
PAPER_CONFIG = REPO / "configs/seg/deeplabv3_edgenext-s_4xb32-50e_voc12aug-coco-512.py"
VOC_ONLY_CONFIG = REPO / "configs/seg/deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py"
SHORT_CONFIG = REPO / "configs/seg/deeplabv3_edgenext_voc.py"
SHAPES_CONFIG = REPO / "configs/seg/deeplabv3_edgenext-xxs_1xb8-1k_shapesvoc-192.py"
ARCH_OF_NAME = {"xxs": "xx_small", "xs": "x_small", "s": "small", "b": "base"}
CHANNELS_OF_ARCH = {"xx_small": 168, "x_small": 192, "small": 304, "base": 584}
NAME_RE = re.compile(
    r"deeplabv3(?P<variant>-[a-z0-9]+)?_edgenext-(?P<arch>xxs|xs|s|b)(?P<os>-d8)?_"
    r"(?P<gpus>\d+)xb(?P<batch>\d+)-(?P<sched>\d+(e|k|it))_(?P<data>[a-z0-9-]+?)-(?P<size>\d+)$"
)


@pytest.fixture(autouse=True)
def _mmseg_scope() -> None:
    """mmseg's registries for every test here, whatever scope the tests before it left."""
    init_default_scope("mmseg")


def _load(path: Path) -> Config:
    cfg = Config.fromfile(str(path))
    import_modules_from_strings(**cfg.custom_imports)
    return cfg


def _build(cfg: Config) -> torch.nn.Module:
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.init_cfg = None
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.init_weights()
    return model


def _samples(n: int, h: int, w: int, with_gt: bool):
    out = []
    for i in range(n):
        s = SegDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w), scale_factor=1.0)
        )
        if with_gt:
            gt = torch.randint(0, 21, (1, h, w), generator=torch.Generator().manual_seed(i))
            s.gt_sem_seg = PixelData(data=gt)
        out.append(s)
    return out


def test_the_expected_configs_exist():
    names = {p.stem for p in SEG_CONFIGS}
    for arch in ("xxs", "xs", "s", "b"):
        assert f"deeplabv3_edgenext-{arch}_4xb32-50e_voc12aug-512" in names
    for variant in (
        "deeplabv3-c256_edgenext-s_4xb32-50e_voc12aug-512",  # MobileViT's head width
        "deeplabv3_edgenext-s-d8_4xb32-50e_voc12aug-512",  # output stride 8
        "deeplabv3-aux_edgenext-s_4xb32-50e_voc12aug-512",  # FCN head on stage 3
        "deeplabv3_edgenext-s_4xb32-50e_voc12aug-coco-512",  # + COCO
        "deeplabv3_edgenext_voc",  # the README's short name
        SHAPES_CONFIG.stem,
    ):
        assert variant in names


@pytest.mark.parametrize("path", SEG_CONFIGS, ids=lambda p: p.stem)
def test_config_builds_trains_and_predicts_at_input_size(path):
    cfg = _load(path)
    model = _build(cfg)
    model.train()
    losses = model.loss(torch.randn(2, 3, 64, 64), _samples(2, 64, 64, True))
    assert torch.isfinite(losses["decode.loss_ce"])
    if cfg.model.get("auxiliary_head"):
        assert torch.isfinite(losses["aux.loss_ce"])
    sum(v for k, v in losses.items() if "loss" in k).backward()
    model.eval()
    with torch.no_grad():
        results = model.predict(torch.randn(1, 3, 97, 131), _samples(1, 97, 131, False))
    assert results[0].pred_sem_seg.data.shape == (1, 97, 131)
    assert results[0].seg_logits.data.shape[0] == 21


@pytest.mark.parametrize(
    "path", [p for p in SEG_CONFIGS if NAME_RE.match(p.stem)], ids=lambda p: p.stem
)
def test_config_is_what_its_name_says(path):
    cfg = _load(path)
    m = NAME_RE.match(path.stem)
    arch = ARCH_OF_NAME[m["arch"]]
    backbone, head = cfg.model.backbone, cfg.model.decode_head
    assert backbone.type == "edgenext_dense.EdgeNeXt" and backbone.arch == arch
    assert head.type == "CvnetsASPPHead" and head.in_channels == CHANNELS_OF_ARCH[arch]
    assert backbone.output_stride == (8 if m["os"] else 16)
    assert head.channels == (256 if m["variant"] == "-c256" else 128)
    assert (cfg.model.get("auxiliary_head") is not None) == (m["variant"] == "-aux")
    assert cfg.train_dataloader.batch_size == int(m["batch"])
    assert tuple(cfg.model.data_preprocessor.size) == (int(m["size"]),) * 2
    if "voc12aug" in m["data"]:
        # cvnets' rates at stride 16 (the head's defaults), doubled at stride 8
        assert MODELS.build(head).dilations == ((1, 12, 24, 36) if m["os"] else (1, 6, 12, 18))
        init = backbone.init_cfg
        # the checkpoint variable feeds the backbone init and names the right arch
        assert init.type == "Pretrained" and init.checkpoint == cfg.checkpoint
        zoo_arch = {"xx_small": "xxsmall", "x_small": "xsmall"}.get(arch, arch)
        assert Path(init.checkpoint).name == f"edgenext_{zoo_arch}.pth"
        assert cfg.train_cfg.max_epochs == int(m["sched"][:-1])


def test_aux_head_reads_stage_3():
    cfg = _load(REPO / "configs/seg/deeplabv3-aux_edgenext-s_4xb32-50e_voc12aug-512.py")
    assert tuple(cfg.model.backbone.out_indices) == (2, 3)
    aux = cfg.model.auxiliary_head
    assert aux.type == "FCNHead" and aux.in_index == 0 and aux.in_channels == 160
    assert aux.channels == 256 and aux.loss_decode.loss_weight == 0.4


def test_short_name_is_the_paper_config():
    short, full = _load(SHORT_CONFIG), _load(PAPER_CONFIG)
    for key in ("model", "train_dataloader", "val_dataloader", "optim_wrapper", "param_scheduler"):
        assert short[key] == full[key], key
    assert full.model.decode_head.channels == 128


def test_paper_recipe():
    """cvnets-v0.1's deeplabv3_mobilevit_small.yaml, setting by setting (docs/protocol.md)."""
    cfg = _load(PAPER_CONFIG)
    assert cfg.model.decode_head.norm_cfg.type == "SyncBN"
    pre = cfg.model.data_preprocessor
    assert pre.mean == [123.675, 116.28, 103.53] and pre.std == [58.395, 57.12, 57.375]
    assert pre.bgr_to_rgb and MODELS.build(pre).seg_pad_val == 255
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == "AdamW" and opt.optimizer.weight_decay == 0.01
    assert opt.paramwise_cfg.custom_keys["decode_head"].lr_mult == 10
    assert cfg.train_dataloader.batch_size * 4 == cfg.auto_scale_lr.base_batch_size == 128
    assert cfg.auto_scale_lr.enable
    # VOC + SBD, then the COCO images relabelled by coco_to_voc_seg.py, one pipeline for both
    voc, coco = cfg.train_dataloader.dataset.datasets
    assert voc.ann_file.endswith("aug.txt") and voc.data_prefix.seg_map_path.endswith("Aug")
    assert voc.data_root == cfg.val_dataloader.dataset.data_root == "data/VOCdevkit/VOC2012"
    assert coco.data_root == "data/coco" and coco.ann_file == "voc_seg/train2017.txt"
    assert coco.data_prefix.seg_map_path == "voc_seg/train2017"
    assert voc.pipeline == coco.pipeline == cfg.train_pipeline
    steps = [t.type for t in cfg.train_pipeline]
    assert steps == [
        "LoadImageFromFile",
        "LoadCheckedAnnotations",
        "CvnetsRandomResizeCrop",
        "RandomFlip",
        "PackSegInputs",
    ]  # fmt: skip  (no photometric distortion, no padding, no class-ratio check)
    crop = cfg.train_pipeline[2]
    assert (tuple(crop.crop_size), crop.min_size, crop.max_size) == ((512, 512), 256, 1024)
    # evaluation: 512x512 whatever the aspect, one scale, no flip, scored at the original size
    test_steps = [t.type for t in cfg.test_pipeline]
    assert test_steps == ["LoadImageFromFile", "Resize", "LoadCheckedAnnotations", "PackSegInputs"]
    assert tuple(cfg.test_pipeline[1].scale) == (512, 512)
    assert cfg.test_pipeline[1].keep_ratio is False
    assert cfg.model.test_cfg.mode == "whole"
    # EMA 0.0005 of weights and BN statistics; the raw weights are scored too
    (ema,) = cfg.custom_hooks
    assert ema.type.endswith("RawAndEMAEvalHook") and ema.update_buffers is True
    assert ema.momentum == 0.0005


def test_voc_only_variant_differs_in_data_and_ema_only():
    paper, voc_only = _load(PAPER_CONFIG), _load(VOC_ONLY_CONFIG)
    for key in ("model", "optim_wrapper", "param_scheduler", "train_pipeline", "test_pipeline"):
        assert paper[key] == voc_only[key], key
    assert voc_only.train_dataloader.dataset.type == "PascalVOCDataset"
    assert voc_only.train_dataloader.dataset == paper.train_dataloader.dataset.datasets[0]
    (ema,) = voc_only.custom_hooks
    # about 4,100 iterations: the average spans the last 10% and forgets the ImageNet start
    iters = 10582 // 128 * 50
    assert 1 / ema.momentum == pytest.approx(iters / 10, rel=0.05)
    assert (1 - ema.momentum) ** iters < 1e-4 < (1 - paper.custom_hooks[0].momentum) ** iters


def _cvnets_lr(epoch: int, it: int, max_epochs: int, lr_mult: float = 1.0) -> float:
    """cvnets-v0.1 optim/scheduler/cosine.py get_lr (is_iteration_based: false), x lr_mult."""
    min_lr, max_lr, warmup_init, warmup_iters = 1e-6, 9e-4, 9e-5, 500
    if it < warmup_iters:
        lr = warmup_init + it * (max_lr - warmup_init) / warmup_iters
    else:
        lr = min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * epoch / max_epochs))
    return lr * lr_mult


def _lr_trace(cfg: Config, epoch_len: int, epochs: int, head_mult: float):
    """The lr of (backbone, head) at each iteration, stepped as mmengine's ParamSchedulerHook."""
    from mmengine.registry import PARAM_SCHEDULERS

    weights = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    lr = cfg.optim_wrapper.optimizer.lr
    optimizer = torch.optim.AdamW([{"params": [weights[0]], "lr": lr},
                                   {"params": [weights[1]], "lr": lr * head_mult}])  # fmt: skip
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=optimizer))
        for s in copy.deepcopy(cfg.param_scheduler)
    ]
    trace = []
    for epoch in range(epochs):
        for it in range(epoch * epoch_len, (epoch + 1) * epoch_len):
            trace.append((epoch, it, *(g["lr"] for g in optimizer.param_groups)))
            optimizer.step()
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
        for s in schedulers:
            if s.by_epoch:
                s.step()
    return trace


# (epoch length, tolerance during warm-up, after it): VOC + COCO and COCO detection have epochs
# longer than the warm-up; VOC + SBD alone has 82 iterations per epoch.
LR_CASES = {
    "seg": (PAPER_CONFIG, 10.0, [(600, 1e-9, 1e-9), (10582 // 128, 0.036, 1e-4)]),
    "det": (REPO / "configs/det/ssdlite_edgenext_coco.py", 1.0, [(501, 1e-9, 1e-9)]),
}


@pytest.mark.parametrize("task", sorted(LR_CASES))
def test_learning_rate_is_cvnets_cosine_stepped_per_epoch(task):
    """Warm-up per iteration, then the cosine by epoch (constant within an epoch), head x10.

    When an epoch is longer than the 500 warm-up iterations every iteration's rate is cvnets'.
    (With VOC + SBD alone, mmengine's chained schedulers also apply the cosine's first epochs
    during warm-up: at most 3.5% lower there, within 0.01% from iteration 500 on.)
    """
    path, head_mult, cases = LR_CASES[task]
    cfg = Config.fromfile(str(path))
    epochs = cfg.train_cfg.max_epochs
    for epoch_len, warmup_tol, tol_after in cases:
        for epoch, it, backbone, head in _lr_trace(cfg, epoch_len, epochs, head_mult):
            want = _cvnets_lr(epoch, it, epochs)
            tol = warmup_tol if it < 500 else tol_after
            assert backbone == pytest.approx(want, rel=tol), (epoch_len, epoch, it)
            assert head == pytest.approx(head_mult * backbone, rel=1e-9)


# ----------------------------------------------------------------------- data and bad masks


@pytest.fixture(scope="module")
def shapes_voc(tmp_path_factory):
    info = make_voc_shapes(tmp_path_factory.mktemp("voc") / "shapes_voc", 2, 1, 64, seed=0)
    return Path(info["data_root"])


def test_shapes_config_reads_the_generated_dataset(shapes_voc):
    cfg = _load(SHAPES_CONFIG)
    # the generator's default output directory is the config's data root
    assert cfg.train_dataloader.dataset.data_root == "data/shapes_voc/VOC2012"
    # nothing to download: the backbone starts from tools/pretrain_shapes.py's default file
    assert cfg.model.backbone.init_cfg == dict(type="Pretrained", checkpoint=cfg.checkpoint)
    assert cfg.pretrain_command == f"python tools/pretrain_shapes.py --out {cfg.checkpoint}"
    # whole images at one scale in training and test (random colours: only outlines tell)
    test_resize = next(t for t in cfg.test_pipeline if t.type == "Resize")
    assert tuple(test_resize.scale) == tuple(cfg.crop_size)
    for loader in ("train_dataloader", "val_dataloader"):
        ds_cfg = copy.deepcopy(cfg[loader].dataset)
        ds_cfg.data_root = str(shapes_voc)
        sample = DATASETS.build(ds_cfg)[0]
        labels = set(sample["data_samples"].gt_sem_seg.data.unique().tolist())
        assert labels <= {0, 1, 2, 20, 255}
        if loader == "train_dataloader":
            assert sample["inputs"].shape == (3, *cfg.crop_size)


def _pipeline(cfg: Config) -> Compose:
    return Compose(cfg.train_pipeline)


def _item(root: Path, name: str) -> dict:
    return dict(
        img_path=str(root / "JPEGImages" / f"{name}.jpg"),
        seg_map_path=str(root / "SegmentationClass" / f"{name}.png"),
        reduce_zero_label=False,
        seg_fields=[],
    )


def test_pipeline_accepts_a_voc_mask_with_ignore_borders(shapes_voc):
    np.random.seed(0)
    out = _pipeline(_load(PAPER_CONFIG))(_item(shapes_voc, "train_000000"))
    assert out["inputs"].shape == (3, 512, 512)
    labels = set(out["data_samples"].gt_sem_seg.data.unique().tolist())
    assert labels <= {0, 1, 2, 20, 255} and len(labels) > 1


@pytest.mark.parametrize(
    "mask, message",
    [
        (np.full((64, 64), 23, np.uint8), r"label values 23 outside 0\.\.20 and 255"),
        (np.zeros((64, 64, 3), np.uint8), r"has shape \(64, 64, 3\): expected one channel"),
        (np.zeros((32, 64), np.uint8), r"is 64x32 \(WxH\) but its image .* is 64x64"),
        (b"not a png", r"could not decode segmentation mask"),
    ],
    ids=["label-23", "rgb", "size", "corrupt"],
)
def test_bad_masks_stop_with_the_file_name(shapes_voc, tmp_path, mask, message):
    bad = tmp_path / "bad.png"
    if isinstance(mask, bytes):
        bad.write_bytes(mask)
    else:
        Image.fromarray(mask).save(bad)
    item = dict(_item(shapes_voc, "train_000000"), seg_map_path=str(bad))
    with pytest.raises(SegMaskError, match=message) as err:
        _pipeline(_load(PAPER_CONFIG))(item)
    assert str(bad) in str(err.value)


def test_missing_mask_names_the_mask_and_the_image(shapes_voc, tmp_path):
    item = dict(_item(shapes_voc, "train_000000"), seg_map_path=str(tmp_path / "gone.png"))
    with pytest.raises(FileNotFoundError, match=r"gone\.png \(for image .*train_000000\.jpg\)"):
        _pipeline(_load(PAPER_CONFIG))(item)
