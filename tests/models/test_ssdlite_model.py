"""The SSDLite neck, head and priors: the paper's wiring, cvnets' priors, mmdet's three modes.

The detector is built from the xx_small COCO config (backbone init off) and run as the Runner
runs it, through ``DetDataPreprocessor``: training losses, predictions (in original-image
pixels), raw tensors; on 320x320 inputs, an odd 257x311 image and a padded mixed batch.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

REPO = Path(__file__).resolve().parents[2]
XXS_CONFIG = REPO / "configs/det/ssdlite_edgenext-xxs_4xb32-200e_coco-320.py"
MAPS_320 = [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]


@pytest.fixture(scope="module")
def cfg() -> Config:
    cfg = Config.fromfile(str(XXS_CONFIG))
    cfg.model.backbone.init_cfg = None
    return cfg


def build_detector(cfg: Config) -> torch.nn.Module:
    init_default_scope("mmdet")
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    return model


def make_batch(shapes, rng: np.random.Generator, with_boxes: bool = True) -> dict:
    """A raw (uint8, unnormalised) batch as the dataloader yields it, one box per image."""
    inputs, samples = [], []
    for h, w in shapes:
        inputs.append(torch.from_numpy(rng.integers(0, 255, (3, h, w), dtype=np.uint8)))
        sample = DetDataSample()
        sample.set_metainfo(
            dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0), img_id=0)
        )
        if with_boxes:
            gt = InstanceData()
            gt.bboxes = torch.tensor([[0.2 * w, 0.25 * h, 0.7 * w, 0.8 * h]])
            gt.labels = torch.tensor([3])
            sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


# --------------------------------------------------------------------------- the paper's wiring
def test_neck_levels_at_320(cfg) -> None:
    """Backbone stages 3-4 and extra levels give 20, 10, 5, 3, 2, 1 maps of the paper widths."""
    model = build_detector(cfg).eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.zeros(1, 3, 320, 320))
    assert [tuple(f.shape[-2:]) for f in feats] == MAPS_320
    assert [f.shape[1] for f in feats] == [88, 168, 256, 128, 128, 64]


def test_head_projects_only_where_widths_differ(cfg) -> None:
    head = build_detector(cfg).bbox_head
    projected = [not isinstance(p, torch.nn.Identity) for p in head.proj_layers]
    # 88 -> 512 and 168 -> 256 are projected; 256, 128, 128 match; the 1x1 level never is.
    assert projected == [True, True, False, False, False, False]
    assert [p.conv.out_channels for p in head.proj_layers[:2]] == [512, 256]
    # one separable 3x3 conv (depth-wise + BN, then 1x1) per level, a 1x1 conv on the last
    first = head.pred_layers[0]
    assert first[0].conv.groups == 512 and first[0].conv.kernel_size == (3, 3)
    assert first[0].with_norm and not first[0].with_activation
    assert first[1].kernel_size == (1, 1) and first[1].out_channels == 6 * (4 + 81)
    last = head.pred_layers[-1]
    assert isinstance(last, torch.nn.Conv2d) and last.kernel_size == (1, 1)
    assert last.out_channels == 4 * (4 + 81)


def test_unmatched_neck_and_backbone_widths_fail_clearly(cfg) -> None:
    bad = copy.deepcopy(cfg)
    bad.model.neck.in_channels = (160, 304)  # EdgeNeXt-S widths on an xx_small backbone
    model = build_detector(bad)
    with pytest.raises(ValueError, match="88 channels but in_channels says 160"):
        model.extract_feat(torch.zeros(1, 3, 64, 64))


def test_head_config_length_mismatch_is_reported() -> None:
    init_default_scope("mmdet")
    with pytest.raises(ValueError, match="proj_channels"):
        MODELS.build(dict(type="SSDLiteHead", in_channels=(88, 168), proj_channels=(512, 256, 256)))


# --------------------------------------------------------------------------- cvnets' priors
def test_prior_count_per_level_at_320() -> None:
    gen = TASK_UTILS.build(dict(type="SSDLiteAnchorGenerator"))
    assert gen.num_base_priors == [6, 6, 6, 6, 6, 4]
    priors = gen.grid_priors(MAPS_320, device="cpu")
    counts = [len(p) for p in priors]
    assert counts == [20 * 20 * 6, 10 * 10 * 6, 5 * 5 * 6, 3 * 3 * 6, 2 * 2 * 6, 1 * 1 * 4]
    assert sum(counts) == 3232


def test_priors_match_cvnets_centres_and_sizes() -> None:
    gen = TASK_UTILS.build(dict(type="SSDLiteAnchorGenerator"))
    priors = gen.grid_priors(MAPS_320, device="cpu")
    scales = np.linspace(0.1, 1.05, 7)
    for level, ((h, w), p) in enumerate(zip(MAPS_320, priors)):
        boxes = p.view(h, w, -1, 4)
        centres = (boxes[..., :2] + boxes[..., 2:]) / 2
        # cvnets: location (i, j) centred at ((j + 0.5) / w, (i + 0.5) / h) of the input
        expect_x = (torch.arange(w) + 0.5) * 320 / w
        torch.testing.assert_close(centres[0, :, 0, 0], expect_x)
        sides = boxes[0, 0, :2, 2:] - boxes[0, 0, :2, :2]
        small, big = scales[level], math.sqrt(scales[level] * scales[level + 1])
        expected = torch.tensor([[small, small], [big, big]], dtype=torch.float32) * 320
        torch.testing.assert_close(sides, expected.clamp(max=320))
    # 3x3 map: centres at 1/6, 1/2, 5/6 of 320 (not integer strides)
    third = priors[3].view(3, 3, 6, 4)
    torch.testing.assert_close(
        (third[:, 0, 0, 1] + third[:, 0, 0, 3]) / 2, torch.tensor([160 / 3, 160.0, 800 / 3])
    )
    # cvnets clips widths/heights to the input: on the last level 0.94 * sqrt(2) > 1
    last = priors[-1]
    assert float((last[:, 2] - last[:, 0]).max()) == pytest.approx(320.0)


def test_priors_follow_the_input_size() -> None:
    gen = TASK_UTILS.build(dict(type="SSDLiteAnchorGenerator"))
    with gen.input_shape((160, 240)):
        (p,) = gen.grid_priors([(5, 5)] * 1 + [(1, 1)] * 5, device="cpu")[:1]
    sides = p[0, 2:] - p[0, :2]
    torch.testing.assert_close(sides, torch.tensor([0.1 * 240, 0.1 * 160]))
    assert gen.grid_priors(MAPS_320, device="cpu")[0].shape == (2400, 4)  # restored


# --------------------------------------------------------------------------- the three modes
@pytest.mark.parametrize(
    "shapes",
    [[(320, 320), (320, 320)], [(257, 311)], [(320, 320), (257, 311)]],
    ids=["2x320", "odd-257x311", "padded-mixed"],
)
@pytest.mark.parametrize(
    "head",
    [{}, dict(dw_act=True), dict(separate_branches=True, dw_act=True)],
    ids=["cvnets", "dw-act", "separate"],
)
def test_loss_predict_tensor(cfg, shapes, head) -> None:
    cfg = copy.deepcopy(cfg)
    cfg.model.bbox_head.update(head)
    cfg.model.test_cfg.score_thr = 0.01  # an untrained head scores every class about 1/81
    model = build_detector(cfg)
    rng = np.random.default_rng(0)
    batch = make_batch(shapes, rng)

    model.train()
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    losses = model(**data, mode="loss")
    assert set(losses) == {"loss_cls", "loss_bbox"}
    total = sum(sum(v) for v in losses.values())
    assert torch.isfinite(total) and total > 0
    total.backward()
    assert model.bbox_head.pred_layers[0][1].weight.grad.abs().sum() > 0
    if head.get("separate_branches"):  # the box branches learn (the levels holding positives)
        grads = [p.grad for p in model.bbox_head.reg_layers.parameters() if p.grad is not None]
        assert sum(g.abs().sum() for g in grads) > 0
    assert model.bbox_head.pred_layers[0][0].with_activation == bool(head.get("dw_act"))

    model.eval()
    data = model.data_preprocessor(copy.deepcopy(batch), False)
    with torch.no_grad():
        results = model(**data, mode="predict")
        cls_scores, bbox_preds = model(**data, mode="tensor")
    assert len(results) == len(shapes)
    for result, (h, w) in zip(results, shapes):
        pred = result.pred_instances
        assert 0 < len(pred)
        assert pred.bboxes.shape[1:] == (4,) and pred.scores.min() >= 0.01
        assert (pred.bboxes[:, 0::2] <= w + 1e-3).all() and (pred.bboxes[:, 1::2] <= h + 1e-3).all()
    assert len(cls_scores) == len(bbox_preds) == 6
    assert cls_scores[0].shape[1] == 6 * 81 and bbox_preds[-1].shape[1] == 4 * 4


def _fake_forward(head, fire):
    """A head forward predicting background everywhere and zero deltas; ``fire(logits)`` edits
    the ``(n, priors, classes + 1, h, w)`` logits of level 0."""

    def forward(feats):
        cls_scores, bbox_preds = [], []
        for level, feat in enumerate(feats):
            n, _, h, w = feat.shape
            a = head.num_base_priors[level]
            logits = torch.zeros(n, a, head.cls_out_channels, h, w)
            logits[:, :, -1] = 10.0
            if level == 0:
                fire(logits)
            cls_scores.append(logits.view(n, -1, h, w))
            bbox_preds.append(torch.zeros(n, a * 4, h, w))
        return cls_scores, bbox_preds

    return forward


def test_predictions_are_in_original_image_pixels(cfg, monkeypatch) -> None:
    """A 480x640 image resized to 320x320: boxes come back in the 480x640 frame."""
    from mmcv.transforms import Compose

    model = build_detector(cfg).eval()
    steps = [t for t in cfg.test_pipeline[1:] if t.type != "LoadAnnotations"]
    pipeline = Compose([dict(type="mmdet.LoadImageFromNDArray"), *steps])
    image = np.zeros((480, 640, 3), dtype=np.uint8)
    packed = pipeline(dict(img=image, img_id=0, img_path="synthetic.jpg"))
    assert packed["data_samples"].img_shape == (320, 320)

    # Fire one prior of class 7 with zero deltas: the box must be that prior, scaled back.
    # (level 0, row 3, column 5: a 32x32 square centred at (88, 56) in 320x320)
    def fire(logits):
        logits[:, 0, 7, 3, 5] = 20.0

    monkeypatch.setattr(model.bbox_head, "forward", _fake_forward(model.bbox_head, fire))
    with torch.no_grad():
        batch = dict(inputs=[packed["inputs"]], data_samples=[packed["data_samples"]])
        (result,) = model.test_step(batch)
    pred = result.pred_instances
    assert pred.labels.tolist() == [7]
    # prior (72, 40, 104, 72) in the 320x320 input; x * 640/320, y * 480/320
    torch.testing.assert_close(pred.bboxes[0], torch.tensor([144.0, 60.0, 208.0, 108.0]))


def test_mixed_precision_test_step_decodes_in_float32(cfg) -> None:
    """``test_cfg.fp16=True`` (mmengine's autocast: bfloat16 on CPU) gives float32 detections
    close to the float32 run's (mmcv's CPU NMS refused bfloat16 before)."""
    from mmengine.runner.amp import autocast

    cfg = copy.deepcopy(cfg)
    cfg.model.test_cfg.score_thr = 0.01  # an untrained head scores every class about 1/81
    model = build_detector(cfg).eval()
    batch = make_batch([(240, 320)], np.random.default_rng(0), with_boxes=False)
    with torch.no_grad():
        (full,) = model.test_step(copy.deepcopy(batch))
        with autocast(enabled=True):
            (mixed,) = model.test_step(copy.deepcopy(batch))
            # the head really ran in bfloat16
            cls_scores, _ = model.bbox_head(model.extract_feat(torch.zeros(1, 3, 320, 320)))
    assert cls_scores[0].dtype == torch.bfloat16
    full, mixed = full.pred_instances, mixed.pred_instances
    assert mixed.bboxes.dtype == mixed.scores.dtype == torch.float32
    assert 0 < len(mixed)
    x, y = mixed.bboxes[:, 0::2], mixed.bboxes[:, 1::2]
    assert (x <= 320 + 1e-3).all() and (y <= 240 + 1e-3).all()
    # the best-scoring detection is found in both runs, at about the same place
    best = full.bboxes[full.scores.argmax()]
    ious = _iou(best, mixed.bboxes)
    assert ious.max() > 0.9


def _iou(box: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU of one (x1, y1, x2, y2) box with each of ``boxes``."""
    lt = torch.maximum(box[:2], boxes[:, :2])
    rb = torch.minimum(box[2:], boxes[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


def test_paper_post_processing_keeps_the_best_200_of_each_class(cfg, monkeypatch) -> None:
    """cvnets' top-k is per class: 400 separated class-7 boxes give 200, class 2 keeps its 3."""
    model = build_detector(cfg).eval()
    assert model.bbox_head.test_cfg.max_per_class == 200

    def fire(logits):  # neighbouring priors overlap at IoU 1/3: all survive NMS
        h, w = logits.shape[-2:]
        logits[:, 0, 7] = 12.0 + torch.linspace(0, 2, h * w).view(h, w)
        logits[:, 0, 2, :1, :3] = 13.0

    monkeypatch.setattr(model.bbox_head, "forward", _fake_forward(model.bbox_head, fire))
    batch = make_batch([(320, 320)], np.random.default_rng(0), with_boxes=False)
    with torch.no_grad():
        (result,) = model.test_step(batch)
    labels, scores = result.pred_instances.labels, result.pred_instances.scores
    assert int((labels == 2).sum()) == 3
    assert int((labels == 7).sum()) == 200
    # the 200 kept are the class's best
    kept_min = scores[labels == 7].min()
    assert kept_min > 0.05 and (scores[labels == 7] >= kept_min).all()
