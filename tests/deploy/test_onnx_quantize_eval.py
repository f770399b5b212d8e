"""Int8 quantisation and scoring of exported models (``export_onnx.py --int8``, onnx_eval)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from deploy_common import DET_CONFIG, SEG_CONFIG, scene_image

from edgenext_dense.deploy.export import export_onnx
from edgenext_dense.deploy.graphs import load_deploy_model
from edgenext_dense.deploy.ort import OnnxModel, preprocess_image, read_metadata


def test_int8_quantisation_keeps_the_metadata_and_the_predictions(
    synthetic_checkpoints, tmp_path
) -> None:
    from edgenext_dense.deploy.quantize import quantize_dynamic_int8

    ckpt, _ = synthetic_checkpoints("xx_small", "official")
    fp32 = export_onnx(load_deploy_model("classifier", str(ckpt)), tmp_path / "cls.onnx")
    int8 = quantize_dynamic_int8(fp32, tmp_path / "cls_int8.onnx")
    assert Path(int8).stat().st_size < 0.5 * Path(fp32).stat().st_size
    assert read_metadata(int8) == dict(read_metadata(fp32), quantization="dynamic")

    batch, _ = preprocess_image(scene_image(256, 256, 6), read_metadata(fp32))
    (ref,) = OnnxModel(fp32).forward(batch)
    (got,) = OnnxModel(int8).forward(batch)
    cosine = float((ref * got).sum() / np.linalg.norm(ref) / np.linalg.norm(got))
    assert cosine > 0.99


def test_int8_quantisation_of_the_detector_keeps_nms_and_the_detections(det_onnx, tmp_path):
    from edgenext_dense.deploy.quantize import quantize_dynamic_int8

    int8 = quantize_dynamic_int8(det_onnx, tmp_path / "det_int8.onnx")
    assert read_metadata(int8) == dict(read_metadata(str(det_onnx)), quantization="dynamic")
    img = scene_image(180, 240, 7)
    ref, got = OnnxModel(str(det_onnx)).predict(img), OnnxModel(int8).predict(img)
    assert len(got["scores"]) > 20 and got["bboxes"].shape == (len(got["scores"]), 4)
    np.testing.assert_allclose(got["scores"][:20], ref["scores"][:20], rtol=0, atol=1e-2)


def test_pointwise_convs_become_matmuls_with_the_same_outputs(tmp_path) -> None:
    """Only plain 1x1 convolutions are rewritten (not 3x3, grouped or strided ones)."""
    import onnx
    import onnxruntime as ort

    from edgenext_dense.deploy.quantize import pointwise_convs_to_matmuls

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(8, 16, 1),  # rewritten
        torch.nn.Conv2d(16, 16, 3, padding=1, groups=16),  # depth-wise: kept
        torch.nn.Conv2d(16, 8, 1, bias=False),  # rewritten, no bias
        torch.nn.Conv2d(8, 8, 1, groups=2),  # grouped: kept
        torch.nn.Conv2d(8, 4, 1, stride=2),  # strided: kept
    ).eval()
    path = tmp_path / "net.onnx"
    x = torch.randn(2, 8, 12, 10)
    torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["x"])
    rewritten = pointwise_convs_to_matmuls(onnx.load(str(path)))
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops.count("Conv") == 3 and ops.count("MatMul") == 2 and ops.count("Add") == 1
    session = ort.InferenceSession(
        rewritten.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (got,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- scoring on a set
@pytest.fixture(scope="module")
def shapes_coco(tmp_path_factory) -> Path:
    from edgenext_dense.datasets.synthetic import make_coco_shapes

    root = tmp_path_factory.mktemp("coco") / "shapes_coco"
    make_coco_shapes(root, num_train=1, num_val=3, img_size=(120, 160), seed=3)
    return root


def _coco_options(root: Path) -> dict:
    return {
        "test_dataloader.dataset.data_root": f"{root}/",
        "test_evaluator.ann_file": f"{root}/annotations/instances_val2017.json",
    }


def test_scoring_ground_truth_as_predictions_gives_a_perfect_score(
    shapes_coco, det_onnx, monkeypatch
) -> None:
    """The wiring (original-image pixels, image ids, label order) as CocoMetric reads it."""
    from edgenext_dense.deploy import evaluate

    coco = json.loads((shapes_coco / "annotations/instances_val2017.json").read_text())
    label_of = {c["id"]: i for i, c in enumerate(sorted(coco["categories"], key=lambda c: c["id"]))}
    truth = {}
    for image in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)])
        truth[str(shapes_coco / "val2017" / image["file_name"])] = dict(
            bboxes=boxes.astype(np.float32).reshape(-1, 4),
            scores=np.ones(len(anns), np.float32),
            labels=np.array([label_of[a["category_id"]] for a in anns], np.int64),
            ori_shape=(image["height"], image["width"]),
        )
    monkeypatch.setattr(evaluate, "read_image", lambda path: path)
    monkeypatch.setattr(OnnxModel, "predict", lambda self, path: truth[path])
    result = evaluate.evaluate_onnx(
        str(DET_CONFIG), str(det_onnx), cfg_options=_coco_options(shapes_coco)
    )
    assert result["images"] == 3 and sum(len(t["labels"]) for t in truth.values()) > 3
    assert result["metrics"]["coco/bbox_mAP"] == pytest.approx(1.0)
    assert result["metrics"]["coco/bbox_mAP_50"] == pytest.approx(1.0)


def test_onnx_eval_scores_exported_models_with_the_configs_metric(
    shapes_coco, det_onnx, seg_export, tmp_path, capsys
) -> None:
    from edgenext_dense.deploy.evaluate import main as eval_main

    out = tmp_path / "scores.json"
    options = [f"{k}={v}" for k, v in _coco_options(shapes_coco).items()]
    code = eval_main(
        [str(DET_CONFIG), str(det_onnx), "--json", str(out), "--cfg-options", *options]
    )
    assert code == 0
    (result,) = json.loads(out.read_text()).values()
    assert result["images"] == 3 and result["seconds"] > 0
    # random weights: a real but poor score, in CocoMetric's range and keys
    assert set(result["metrics"]) >= {"coco/bbox_mAP", "coco/bbox_mAP_50", "coco/bbox_mAP_l"}
    assert 0.0 <= result["metrics"]["coco/bbox_mAP_50"] < 0.5
    assert "coco/bbox_mAP:" in capsys.readouterr().out

    # a segmentation model with a detection config, and a bad --limit, are refused
    _, seg_onnx = seg_export
    code = eval_main([str(DET_CONFIG), str(seg_onnx), "--cfg-options", *options])
    assert code == 1
    assert "is a 'seg' model but" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        eval_main([str(DET_CONFIG), str(det_onnx), "--limit", "0"])


def test_scoring_segmentation_ground_truth_gives_100_miou(seg_export, tmp_path, monkeypatch):
    from PIL import Image

    from edgenext_dense.datasets.synthetic import make_voc_shapes
    from edgenext_dense.deploy import evaluate

    info = make_voc_shapes(tmp_path / "voc", num_train=1, num_val=2, img_size=96, seed=0)
    root = Path(info["data_root"])
    truth = {}  # what OnnxModel.predict returns for a segmentor
    for mask in (root / "SegmentationClass").glob("*.png"):
        labels = np.array(Image.open(mask))
        truth[str(root / "JPEGImages" / f"{mask.stem}.jpg")] = dict(
            labels=labels, ori_shape=labels.shape
        )
    monkeypatch.setattr(evaluate, "read_image", lambda path: path)
    monkeypatch.setattr(OnnxModel, "predict", lambda self, path: truth[path])
    _, seg_onnx = seg_export
    result = evaluate.evaluate_onnx(
        str(SEG_CONFIG), str(seg_onnx), cfg_options={"test_dataloader.dataset.data_root": str(root)}
    )
    assert result["images"] == 2
    assert result["metrics"]["mIoU"] == pytest.approx(100.0)
