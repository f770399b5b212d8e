"""Every detection config builds (backbone init off) and runs loss, predict and tensor modes.

Plus the recipe of the paper config, checked value by value (what a user reproducing the
paper's 27.9 mAP relies on), and the one-variable checkpoint path of each config.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

REPO = Path(__file__).resolve().parents[2]
DET_CONFIGS = sorted((REPO / "configs/det").glob("*.py"))
PAPER_CONFIG = REPO / "configs/det/ssdlite_edgenext-s_4xb32-200e_coco-320.py"
# arch and stage 3-4 widths named by each config's backbone token
ARCH_OF_TOKEN = {
    "edgenext-xxs": ("xx_small", (88, 168)),
    "edgenext-xs": ("x_small", (100, 192)),
    "edgenext-s": ("small", (160, 304)),
    "edgenext-b": ("base", (288, 584)),
    "edgenext": ("small", (160, 304)),  # the short name ssdlite_edgenext_coco.py
}


def load(path: Path) -> Config:
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.init_cfg = None
    return cfg


def test_all_expected_configs_exist() -> None:
    names = {p.name for p in DET_CONFIGS}
    for arch in ("xxs", "xs", "s", "b"):
        assert f"ssdlite_edgenext-{arch}_4xb32-200e_coco-320.py" in names
    assert "ssdlite_edgenext_coco.py" in names
    assert any("shapes" in n for n in names), "the no-download demo config is missing"


@pytest.mark.parametrize("path", DET_CONFIGS, ids=lambda p: p.stem)
def test_config_builds_and_runs_three_modes(path: Path) -> None:
    cfg = Config.fromfile(str(path))
    # the classification checkpoint path is one variable, used by the backbone's init
    if cfg.model.backbone.init_cfg is not None:
        assert cfg.model.backbone.init_cfg.checkpoint == cfg.checkpoint
    token = path.stem.split("_")[1]
    arch, widths = ARCH_OF_TOKEN[token]
    assert cfg.model.backbone.arch == arch

    cfg.model.backbone.init_cfg = None
    init_default_scope("mmdet")
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    # the neck and head read the backbone's stage 3-4 widths
    assert tuple(model.neck.in_channels) == widths
    assert tuple(model.bbox_head.in_channels[:2]) == widths
    num_classes = model.bbox_head.num_classes

    # small inputs of odd sizes, one box each; the data preprocessor pads the batch
    rng = np.random.default_rng(0)
    inputs, samples = [], []
    for h, w in [(96, 128), (71, 93)]:
        inputs.append(torch.from_numpy(rng.integers(0, 255, (3, h, w), dtype=np.uint8)))
        sample = DetDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0))
        )
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[0.1 * w, 0.2 * h, 0.6 * w, 0.9 * h]]),
            labels=torch.tensor([num_classes - 1]),
        )
        samples.append(sample)
    batch = dict(inputs=inputs, data_samples=samples)

    model.train()
    losses = model(**model.data_preprocessor(copy.deepcopy(batch), True), mode="loss")
    total = sum(sum(v) for v in losses.values())
    assert torch.isfinite(total) and total > 0

    model.eval()
    data = model.data_preprocessor(copy.deepcopy(batch), False)
    with torch.no_grad():
        results = model(**data, mode="predict")
        cls_scores, bbox_preds = model(**data, mode="tensor")
    assert len(results) == 2
    for result in results:
        labels = result.pred_instances.labels
        assert labels.numel() == 0 or int(labels.max()) < num_classes
    assert len(cls_scores) == len(bbox_preds) == 6
    assert cls_scores[0].shape[1] == 6 * (num_classes + 1)


def test_paper_recipe() -> None:
    """The cvnets-v0.1 MobileViT/EdgeNeXt SSDLite recipe, as section 2 of the issue states it."""
    cfg = Config.fromfile(str(PAPER_CONFIG))
    assert Config.fromfile(str(REPO / "configs/det/ssdlite_edgenext_coco.py")).to_dict() == (
        cfg.to_dict()
    )
    assert cfg.checkpoint == "checkpoints/edgenext_small.pth"
    # data: COCO 2017 under data/coco/, 320x320
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.data_root == "data/coco/"
    assert cfg.val_evaluator.ann_file == "data/coco/annotations/instances_val2017.json"
    steps = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert steps == [
        "LoadImageFromFile",
        "LoadAnnotations",
        "CvnetsSSDRandomCrop",
        "CvnetsPhotoMetricDistortion",
        "RandomFlip",
        "Resize",
        "PackDetInputs",
    ]  # cvnets' order; no Expand (zoom-out)
    assert cfg.train_dataloader.dataset.filter_cfg.min_size == 0
    resize = cfg.train_dataloader.dataset.pipeline[5]
    assert tuple(resize.scale) == (320, 320) and resize.keep_ratio is False
    assert cfg.train_dataloader.dataset.type == "CocoDataset"  # no RepeatDataset
    # ImageNet normalisation in RGB
    pre = cfg.model.data_preprocessor
    assert pre.mean == [123.675, 116.28, 103.53] and pre.std == [58.395, 57.12, 57.375]
    assert pre.bgr_to_rgb is True
    # optimiser and schedule: AdamW 9e-4 (wd 0.01), 500 warm-up iters from 9e-5, cosine to 1e-6
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ("AdamW", 9e-4, 0.01)
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == "LinearLR" and warmup.by_epoch is False and warmup.end == 501
    assert opt.lr * warmup.start_factor == pytest.approx(9e-5)
    assert cosine.type == "CosineAnnealingLR" and cosine.eta_min == 1e-6
    assert cosine.T_max == cosine.end == cfg.train_cfg.max_epochs == 200
    # batch 4 x 32 = 128, scaled for other totals
    assert cfg.train_dataloader.batch_size == 32
    assert cfg.auto_scale_lr.base_batch_size == 128 and cfg.auto_scale_lr.enable
    # EMA 0.0005 of weights and BN statistics, raw weights scored too; SyncBN when distributed
    (ema,) = [h for h in cfg.custom_hooks if h.type.endswith("RawAndEMAEvalHook")]
    assert ema.momentum == 0.0005 and ema.update_buffers is True
    assert cfg.sync_bn == "torch"
    # matching, loss and post-processing
    assigner = cfg.model.train_cfg.assigner
    assert (assigner.pos_iou_thr, assigner.neg_iou_thr, assigner.min_pos_iou) == (0.5, 0.5, 0.0)
    assert cfg.model.train_cfg.neg_pos_ratio == 3
    init_default_scope("mmdet")
    head = MODELS.build(cfg.model.bbox_head)
    assert list(head.bbox_coder.stds) == [0.1, 0.1, 0.2, 0.2]
    test = cfg.model.test_cfg
    assert (test.nms.iou_threshold, test.score_thr, test.max_per_class) == (0.5, 0.05, 200)
    # COCO's maxDets (1, 10, 100), not mmdet's (100, 300, 1000)
    assert tuple(cfg.val_evaluator.proposal_nums) == (1, 10, 100)
