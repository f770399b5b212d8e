"""Every segmentation config builds, trains and predicts, says what its name says, and keeps the
paper's recipe; the pipelines stop on bad masks with the file's name."""

from __future__ import annotations

import copy
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
from mmseg.registry import DATASETS, MODELS, TRANSFORMS
from mmseg.structures import SegDataSample
from PIL import Image

from edgenext_dense.datasets.seg_transforms import SegMaskError
from edgenext_dense.datasets.synthetic import make_voc_shapes

REPO = Path(__file__).resolve().parents[1]
SEG_CONFIGS = sorted((REPO / "configs" / "seg").glob("*.py"))
PAPER_CONFIG = REPO / "configs/seg/deeplabv3_edgenext-s_4xb32-50e_voc12aug-512.py"
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
        # cvnets' rates at stride 16, doubled at stride 8
        assert head.dilations == ((1, 12, 24, 36) if m["os"] else (1, 6, 12, 18))
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
    cfg = _load(PAPER_CONFIG)
    assert cfg.model.decode_head.norm_cfg.type == "SyncBN"
    pre = cfg.model.data_preprocessor
    assert pre.mean == [123.675, 116.28, 103.53] and pre.std == [58.395, 57.12, 57.375]
    assert pre.bgr_to_rgb and pre.seg_pad_val == 255
    opt = cfg.optim_wrapper
    assert opt.optimizer.type == "AdamW" and opt.optimizer.weight_decay == 0.01
    assert opt.paramwise_cfg.custom_keys["decode_head"].lr_mult == 10
    assert cfg.train_dataloader.batch_size * 4 == cfg.auto_scale_lr.base_batch_size == 128
    ds = cfg.train_dataloader.dataset
    assert ds.ann_file.endswith("aug.txt") and ds.data_prefix.seg_map_path.endswith("Aug")
    assert ds.data_root == cfg.val_dataloader.dataset.data_root == "data/VOCdevkit/VOC2012"
    steps = [t.type for t in cfg.train_pipeline]
    assert steps == [
        "LoadImageFromFile", "LoadCheckedAnnotations", "RandomResize", "RandomCrop",
        "RandomFlip", "PhotoMetricDistortion", "Pad", "PackSegInputs",
    ]  # fmt: skip
    crop = next(t for t in cfg.train_pipeline if t.type == "RandomCrop")
    assert tuple(crop.crop_size) == (512, 512)


def test_random_resize_spans_short_side_256_to_1024():
    cfg = _load(PAPER_CONFIG)
    resize = TRANSFORMS.build(next(t for t in cfg.train_pipeline if t.type == "RandomResize"))
    img = np.zeros((375, 500, 3), np.uint8)  # a typical VOC image
    shorts = []
    np.random.seed(0)
    for _ in range(300):
        out = resize(dict(img=img.copy(), img_shape=img.shape[:2], seg_fields=[]))
        shorts.append(min(out["img_shape"]))
    assert 256 <= min(shorts) < 300 and 980 < max(shorts) <= 1024


def test_learning_rate_follows_the_cvnets_schedule():
    """500 warm-up iterations from 9e-5 to 9e-4, cosine to 1e-6 at epoch 50, head x10."""
    from mmengine.registry import PARAM_SCHEDULERS

    cfg = _load(PAPER_CONFIG)
    epoch_len = 10582 // 128  # iterations per epoch on VOC aug
    weights = [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))]
    lr = cfg.optim_wrapper.optimizer.lr
    optimizer = torch.optim.AdamW([{"params": [weights[0]], "lr": lr},
                                   {"params": [weights[1]], "lr": lr * 10}])  # fmt: skip
    schedulers = []
    for sched in copy.deepcopy(cfg.param_scheduler):
        if sched.pop("convert_to_iter_based", False):
            cls = PARAM_SCHEDULERS.get(sched.pop("type"))
            schedulers.append(cls.build_iter_from_epoch(optimizer, epoch_length=epoch_len, **sched))
        else:
            schedulers.append(PARAM_SCHEDULERS.build(dict(sched, optimizer=optimizer)))
    history = []
    for _ in range(epoch_len * 50):
        history.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        for s in schedulers:
            s.step()
    history.append([g["lr"] for g in optimizer.param_groups])
    backbone = np.array([h[0] for h in history])
    head = np.array([h[1] for h in history])
    assert backbone[0] == pytest.approx(9e-5)
    assert backbone.argmax() == pytest.approx(500, abs=2) and backbone.max() < 9e-4
    assert backbone.max() > 0.95 * 9e-4
    assert backbone[-1] == pytest.approx(1e-6, rel=1e-3)
    assert np.all(np.diff(backbone[501:]) <= 1e-12)
    np.testing.assert_allclose(head, 10 * backbone, rtol=1e-9)


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
    return Compose([t for t in cfg.train_pipeline if t.type != "PhotoMetricDistortion"])


def _item(root: Path, name: str) -> dict:
    return dict(
        img_path=str(root / "JPEGImages" / f"{name}.jpg"),
        seg_map_path=str(root / "SegmentationClass" / f"{name}.png"),
        reduce_zero_label=False,
        seg_fields=[],
    )


def test_pipeline_accepts_a_voc_mask_with_ignore_borders(shapes_voc):
    out = _pipeline(_load(PAPER_CONFIG))(_item(shapes_voc, "train_000000"))
    assert out["inputs"].shape == (3, 512, 512)
    assert 255 in out["data_samples"].gt_sem_seg.data  # pad and borders


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
