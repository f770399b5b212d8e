"""tools/analysis/prior_coverage.py: which boxes the priors can match, per size and level."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config
from text_tables import table_cells

from edgenext_dense.analysis.prior_coverage import prior_coverage

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "configs/det/ssdlite_edgenext-xxs_1xb16-16e_shapes-256.py"


def _coco(path: Path, boxes) -> Path:
    images = [dict(id=1, file_name="a.jpg", width=256, height=256)]
    anns = [
        dict(id=i + 1, image_id=1, category_id=1, bbox=list(b), area=b[2] * b[3], iscrowd=0)
        for i, b in enumerate(boxes)
    ]
    anns.append(dict(id=99, image_id=1, category_id=1, bbox=[0, 0, 9, 9], area=81, iscrowd=1))
    path.write_text(json.dumps(dict(images=images, annotations=anns, categories=[])))
    return path


def test_coverage_counts_positive_priors_per_size_and_level(tmp_path):
    # 48x48 centred on a 16x16-level prior centre is exactly the demo's smallest prior
    # (0.1875 x 256): its best IoU is 1
    ann = _coco(tmp_path / "a.json", [(32, 32, 48, 48), (10, 10, 200, 200), (0, 0, 3, 3)])
    report = prior_coverage(Config.fromfile(str(DEMO)), str(ann))
    rows = {r.size: r for r in report["rows"]}
    assert set(rows) == {"small", "medium", "large"}  # the crowd box is left out
    assert report["num_priors"] == 2050 and report["map_sizes"] == [16, 8, 4, 2, 1, 1]
    assert rows["medium"].covered == 1 and rows["medium"].best_iou[0] > 0.99
    assert rows["medium"].per_level[0] >= 1  # matched on the 16x16 level
    assert rows["large"].covered == 1 and sum(rows["large"].per_level[2:]) >= 1
    assert rows["small"].covered == 0  # 3x3 px: no prior reaches IoU 0.5


@pytest.mark.slow
def test_tool_prints_the_table_and_reports_a_missing_file(tmp_path):
    _coco(tmp_path / "a.json", [(40, 40, 48, 48)])
    tool = [sys.executable, str(REPO / "tools/analysis/prior_coverage.py"), str(DEMO)]
    opts = ["--cfg-options", f"train_dataloader.dataset.data_root={tmp_path}/",
            "train_dataloader.dataset.ann_file=a.json"]  # fmt: skip
    out = subprocess.run([*tool, *opts], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    header, rows = table_cells(out.stdout, "size")
    assert rows[0][:3] == ["medium", "1", "100.0%"] and "L0 16x16" in header[-1]
    opts[-1] = "train_dataloader.dataset.ann_file=missing.json"
    out = subprocess.run([*tool, *opts], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 1 and "missing.json does not exist" in out.stderr
