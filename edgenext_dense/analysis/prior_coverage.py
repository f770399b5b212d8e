"""How well a detector config's priors cover a COCO-format dataset's boxes, before training.

Each box is resized as its image is (to the square ``input_size``, as the SSDLite configs do)
and matched against every prior: per COCO size class (in original pixels), how many boxes get
a positive (IoU >= the assigner's ``pos_iou_thr``), how many on each level, their best IoU.
"""

from __future__ import annotations

import json
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np
import torch
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps
from mmengine.config import Config
from mmengine.registry import DefaultScope
from prettytable import PrettyTable, TableStyle

SIZE_CLASSES = (("small", 0.0), ("medium", 32.0**2), ("large", 96.0**2))


@dataclass
class CoverageRow:
    """Coverage of the boxes of one COCO size class."""

    size: str
    boxes: int = 0
    covered: int = 0
    positives: List[int] = field(default_factory=list)
    best_iou: List[float] = field(default_factory=list)
    per_level: List[int] = field(default_factory=list)


def _priors(cfg: Config, input_size: int) -> tuple:
    """All priors at a square input (one map per level: the backbone's and the neck's sizes)."""
    with DefaultScope.overwrite_default_scope("mmdet"):
        # the head's own generator: the config may leave it to the head's default
        generator = MODELS.build(cfg.model.bbox_head).prior_generator
    sizes = [input_size // 16, input_size // 32]
    for _ in range(generator.num_levels - 3):  # stride-2 extra levels, then the pooled 1x1
        sizes.append((sizes[-1] + 1) // 2)
    sizes.append(1)
    with generator.input_shape((input_size, input_size)):
        priors = generator.grid_priors([(s, s) for s in sizes], device="cpu")
    levels = torch.cat([torch.full((len(p),), i) for i, p in enumerate(priors)])
    return torch.cat(priors), levels, sizes


def prior_coverage(cfg: Config, ann_file: str) -> Dict[str, object]:
    """``rows`` (a :class:`CoverageRow` per size class with boxes), ``map_sizes``,
    ``num_priors`` and ``pos_iou_thr``.

    Args:
        cfg (Config): A detection config with ``input_size`` and an SSDLite head.
        ann_file (str): COCO instances json (crowd boxes are left out, as the assigner does).
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f"annotation file {ann_file} does not exist")
    input_size = int(cfg.input_size)
    thr = float(cfg.model.train_cfg.assigner.pos_iou_thr)
    priors, levels, sizes = _priors(cfg, input_size)
    with open(ann_file) as f:
        coco = json.load(f)
    images = {img["id"]: img for img in coco["images"]}
    rows = {name: CoverageRow(name, per_level=[0] * len(sizes)) for name, _ in SIZE_CLASSES}
    for ann in coco["annotations"]:
        if ann.get("iscrowd", 0) or ann["image_id"] not in images:
            continue
        img = images[ann["image_id"]]
        x, y, w, h = ann["bbox"]
        sx, sy = input_size / img["width"], input_size / img["height"]
        box = torch.tensor([[x * sx, y * sy, (x + w) * sx, (y + h) * sy]])
        iou = bbox_overlaps(box, priors)[0]
        positive = iou >= thr
        row = rows[[name for name, low in SIZE_CLASSES if w * h >= low][-1]]
        row.boxes += 1
        row.covered += int(positive.any())
        row.positives.append(int(positive.sum()))
        row.best_iou.append(float(iou.max()))
        for level in levels[positive].tolist():
            row.per_level[level] += 1
    return dict(
        rows=[r for r in rows.values() if r.boxes],
        map_sizes=sizes,
        num_priors=len(priors),
        pos_iou_thr=thr,
    )


def format_coverage(report: Dict[str, object]) -> str:
    """A Markdown table of :func:`prior_coverage`'s report."""
    levels = " / ".join(f"L{i} {s}x{s}" for i, s in enumerate(report["map_sizes"]))
    headers = ["size", "boxes", "with a positive", "positives per box", "best IoU median / p10"]
    table = PrettyTable([*headers, f"positives on {levels}"], align="l")
    for row in report["rows"]:
        best = np.asarray(row.best_iou)
        table.add_row(
            [row.size, row.boxes, f"{row.covered / row.boxes:.1%}", f"{np.mean(row.positives):.1f}"]
            + [f"{np.median(best):.2f} / {np.percentile(best, 10):.2f}"]
            + [" / ".join(map(str, row.per_level))]
        )
    table.set_style(TableStyle.MARKDOWN)
    header = f"{report['num_priors']} priors; positive at IoU >= {report['pos_iou_thr']}"
    return f"{header}\n\n{table.get_string()}"
