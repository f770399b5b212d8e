"""ONNX export and the torch-free runtime: the same predictions as PyTorch, from the file alone.

Models have random weights (saved as ``tools/train.py`` saves them), the small EdgeNeXt-XXS
configs and small images. Parity is checked through the public paths a user takes:
``load_trained_model`` + ``inference_detector`` against :class:`OnnxModel.predict` (resize, graph
with NMS, rescale), mmseg's ``test_step`` against the runtime's logits, and the classifier's
``preprocess`` + forward against the runtime.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from deploy_common import DET_CONFIG, REPO, SEG_CONFIG, rel_err, scene_image
from mmengine.config import Config

from edgenext_dense.datasets.synthetic import SHAPE_CLASSES
from edgenext_dense.deploy.export import export_onnx, main
from edgenext_dense.deploy.graph_modules import ExportError, multiclass_nms
from edgenext_dense.deploy.graphs import deploy_from_config, load_deploy_model
from edgenext_dense.deploy.ort import (
    MetadataError,
    OnnxModel,
    preprocess_image,
    read_metadata,
    resize_bilinear,
)
from edgenext_dense.deploy.ort.metadata import check_metadata

FORBIDDEN_IMPORTS = ("torch", "mmdet", "mmseg", "mmengine", "mmcv", "edgenext_dense")


def test_detector_metadata_carries_the_test_pipeline_and_the_graph_the_test_cfg(det_onnx) -> None:
    import onnx

    meta = read_metadata(str(det_onnx))
    assert meta["task"] == "det"
    assert meta["classes"] == list(SHAPE_CLASSES)
    assert meta["input_size"] == [256, 256] and meta["dynamic_batch"] is True
    assert meta["preprocess"]["resize"] == dict(
        type="stretch", size=[256, 256], interpolation="bilinear"
    )
    assert meta["preprocess"]["mean"] == [123.675, 116.28, 103.53]
    assert meta["preprocess"]["to_rgb"] is True
    assert meta["output_names"] == ["boxes", "scores", "labels"] and "postprocess" not in meta
    # the graph runs ONNX NMS with the config's settings
    nodes = onnx.load(str(det_onnx)).graph.node
    (nms,) = [node for node in nodes if node.op_type == "NonMaxSuppression"]
    constants = {n.output[0]: n.attribute[0].t for n in nodes if n.op_type == "Constant"}
    max_boxes, iou, score_thr = (
        float(onnx.numpy_helper.to_array(constants[name])[0]) for name in nms.input[2:]
    )
    test_cfg = Config.fromfile(str(DET_CONFIG)).model.test_cfg
    assert (max_boxes, iou) == (test_cfg.max_per_img, 0.5)
    assert score_thr == pytest.approx(test_cfg.score_thr)
    with pytest.raises(MetadataError, match="re-export"):  # a file from before NMS in the graph
        check_metadata(dict(meta, format_version=1), "old.onnx")


@pytest.mark.parametrize("nms_pre", [None, 300], ids=["cap_never_binds", "cap_binds"])
def test_detections_match_pytorch_box_for_box(det_checkpoint, det_onnx, nms_pre, tmp_path) -> None:
    from mmdet.apis import inference_detector
    from mmdet.structures.bbox import bbox_overlaps

    from edgenext_dense.apis.loading import load_trained_model

    onnx_file, options = det_onnx, None
    if nms_pre is not None:  # mmdet's nms_pre as a per-level TopK in the graph
        options = {"model.test_cfg.nms_pre": nms_pre}
        onnx_file = tmp_path / "capped.onnx"
        cli = [str(DET_CONFIG), str(det_checkpoint), "--out", str(onnx_file), "--cfg-options"]
        assert main(cli + [f"model.test_cfg.nms_pre={nms_pre}"]) == 0
    # NMS sorts with two TopKs; the config's cap cannot bind (<= 5 classes pass 0.05 per
    # prior) and adds none, 300 adds one per level of over 60 priors (1536, 384, 96)
    top_ks = [n for n in onnx.load(str(onnx_file)).graph.node if n.op_type == "TopK"]
    assert len(top_ks) == (2 if nms_pre is None else 5)

    img = scene_image(180, 240)  # not square: exercises the stretch resize and the rescale
    detector = load_trained_model(str(DET_CONFIG), str(det_checkpoint), "det", cfg_options=options)
    exp = inference_detector(detector, img).pred_instances.cpu()
    got = OnnxModel(str(onnx_file)).predict(img)

    assert len(exp) > 20, "random weights should still give many detections"
    assert len(got["scores"]) == len(exp)
    labels, scores = exp.labels.numpy(), exp.scores.numpy()
    same = (labels[:, None] == got["labels"][None]) & (
        np.abs(scores[:, None] - got["scores"][None]) <= 1e-4
    )
    boxed = same & (bbox_overlaps(exp.bboxes, torch.from_numpy(got["bboxes"])).numpy() > 0.99)
    # two priors of the very same score: NMS may keep either box (rare)
    tied = same & (np.abs(scores[:, None] - got["scores"][None]) < 1e-6)
    # scores tied within float noise at a class's top-k cut may be kept by one runtime only
    cap = Config.fromfile(str(DET_CONFIG)).model.test_cfg.max_per_class
    floor = np.array([scores[labels == label].min() for label in labels])
    kept = ~((np.bincount(labels)[labels] == cap) & (scores - floor < 1e-4))
    assert (boxed | tied)[kept].any(1).all(), "a PyTorch detection has no ONNX twin"
    assert (boxed | tied)[kept].any(0).sum() >= kept.sum()  # twins are distinct detections
    assert (~boxed[kept].any(1)).sum() <= len(exp) // 100
    # boxes are in the original image's pixels
    assert got["bboxes"][:, 2].max() <= 240 and got["bboxes"][:, 3].max() <= 180


def _assert_same_detections(got, expected) -> None:
    """One image's ``(boxes, scores, labels)`` rows equal, up to the order of near-tied scores."""
    (boxes, scores, labels), (exp_boxes, exp_scores, exp_labels) = got, expected
    assert labels.shape == exp_labels.shape
    np.testing.assert_allclose(scores, exp_scores, rtol=0, atol=1e-5)  # both best first
    twins = (labels[:, None] == exp_labels[None]) & (
        np.abs(boxes[:, None] - exp_boxes[None]).max(-1) < 1e-3
    )
    assert twins.any(1).all() and twins.any(0).all()


def test_dynamic_batch_runs_two_images_as_pytorch(det_checkpoint, det_onnx) -> None:
    deploy = load_deploy_model(str(DET_CONFIG), str(det_checkpoint))
    model = OnnxModel(str(det_onnx))
    batch = np.concatenate(
        [preprocess_image(scene_image(256, 256, seed), model.meta)[0] for seed in (1, 2)]
    )
    got = model.forward(batch)
    with torch.no_grad():
        expected = [t.numpy() for t in deploy.graph(torch.from_numpy(batch))]
    assert got[0].shape[:2] == expected[0].shape[:2] and got[0].shape[0] == 2
    for image in (0, 1):
        _assert_same_detections([g[image] for g in got], [e[image] for e in expected])
    # each image of the batch equals that image alone: its detections, then padding
    single = [s[0] for s in model.forward(batch[1:])]
    count = len(single[2])
    assert count > 20 and (got[2][1, count:] == -1).all() and (got[1][1, count:] == 0).all()
    _assert_same_detections([g[1, :count] for g in got], single)


def test_segmentation_logits_match_mmseg_at_the_original_size(seg_checkpoint, seg_export) -> None:
    from edgenext_dense.apis.loading import load_trained_model
    from edgenext_dense.apis.seg_demo import build_demo_pipeline

    deploy, path = seg_export
    model = OnnxModel(path)
    meta = model.meta
    assert meta["dynamic_hw"] is True
    assert meta["preprocess"]["resize"] == dict(
        type="stretch", size=[512, 512], interpolation="bilinear"
    )

    img = scene_image(60, 84)  # stretched to 512x512 by the test pipeline (cvnets' evaluation)
    segmentor = load_trained_model(str(SEG_CONFIG), str(seg_checkpoint), "seg")
    data = build_demo_pipeline(segmentor.cfg)(dict(img=img))
    packed = dict(inputs=[data["inputs"]], data_samples=[data["data_samples"]])
    with torch.no_grad():
        sample = segmentor.test_step(packed)[0]
    expected = sample.seg_logits.data.numpy()

    batch, info = preprocess_image(img, meta)
    assert batch.shape == (1, 3, 512, 512)
    # the same pixels as mmcv's resize + the data preprocessor
    np.testing.assert_array_equal(batch, segmentor.data_preprocessor(packed)["inputs"].numpy())
    (logits,) = model.forward(batch)
    at_input = deploy.graph(torch.from_numpy(batch)).detach().numpy()
    assert rel_err(logits, at_input) < 1e-4
    resized = resize_bilinear(logits[0], info["ori_shape"], align_corners=False)
    assert resized.shape == expected.shape == (21, 60, 84)
    assert rel_err(resized, expected) < 1e-4
    labels = model.predict(img)["labels"]
    np.testing.assert_array_equal(labels, sample.pred_sem_seg.data[0].numpy())


def test_classifier_logits_and_top5_match_pytorch(synthetic_checkpoints, tmp_path) -> None:
    from edgenext_dense.apis.classification import inference_classifier, preprocess

    ckpt, _ = synthetic_checkpoints("xx_small", "official")
    deploy = load_deploy_model("classifier", str(ckpt))
    path = export_onnx(deploy, tmp_path / "cls.onnx")
    model = OnnxModel(path)
    img = scene_image(200, 300)

    expected_input = preprocess(img, deploy.model.resize_short, deploy.model.crop_size).numpy()
    batch, _ = preprocess_image(img, model.meta)
    np.testing.assert_array_equal(batch, expected_input)
    (logits,) = model.forward(batch)
    with torch.no_grad():
        expected = deploy.model(torch.from_numpy(expected_input)).numpy()
    assert rel_err(logits, expected) < 1e-4

    got = model.predict(img)
    ref = inference_classifier(deploy.model, img)
    assert [t["label"] for t in got["topk"]] == [t["label"] for t in ref["topk"]]
    assert got["pred_class"] == ref["pred_class"] and len(got["topk"]) == 5
    np.testing.assert_allclose(
        [t["score"] for t in got["topk"]], [t["score"] for t in ref["topk"]], rtol=1e-4
    )


@pytest.mark.slow
def test_onnx_infer_runs_a_folder_without_torch_and_skips_broken_images(det_onnx, tmp_path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), scene_image(150, 200, 3))
    cv2.imwrite(str(folder / "b.png"), scene_image(120, 90, 4))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    tool = [sys.executable, "-X", "importtime", str(REPO / "tools/deploy/onnx_infer.py")]
    args = [str(folder), "--model", str(det_onnx), "--out-dir", str(out), "--score-thr", "0.05"]
    proc = subprocess.run([*tool, *args], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    heavy = sorted(m for m in imported if m.split(".")[0] in FORBIDDEN_IMPORTS)
    assert not heavy, f"onnx_infer imported {heavy[:10]}"
    assert "onnxruntime" in imported

    assert "skipped" in proc.stderr and "broken.jpg" in proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [Path(r["image"]).name for r in records] == ["a.jpg", "b.png"]
    for record, (h, w) in zip(records, [(150, 200), (120, 90)]):
        assert (record["height"], record["width"]) == (h, w)
        assert record["detections"] and all(d["score"] >= 0.05 for d in record["detections"])
        assert all(d["class"] in SHAPE_CLASSES for d in record["detections"])
        name = Path(record["image"]).name
        drawn = cv2.imread(str(out / "vis" / name))
        assert drawn is not None and drawn.shape == (h, w, 3)
        saved = json.loads((out / "preds" / (name + ".json")).read_text())
        assert saved["detections"] == record["detections"]
    assert not (out / "vis" / "broken.jpg").exists()


def test_segmentation_folder_writes_blended_masks(seg_export, tmp_path) -> None:
    from edgenext_dense.deploy.ort import run_inference

    _, path = seg_export
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "scene.png"), scene_image(40, 56, 5))
    lines = []
    summary = run_inference(
        OnnxModel(path), [str(folder / "scene.png")], out_dir=str(tmp_path / "o"), log=lines.append
    )
    (record,) = summary.results
    drawn = cv2.imread(record["out_file"])
    assert drawn.shape[0] >= 40 and drawn.shape[1] > 56  # the image plus the legend
    assert record["labels"].shape == (40, 56)
    assert "scene.png ->" in lines[0]


def test_wrong_task_checkpoints_are_refused_with_a_clear_error(
    det_checkpoint, synthetic_checkpoints, tmp_path, capsys
) -> None:
    cls_ckpt, _ = synthetic_checkpoints("xx_small", "official")
    code = main([str(DET_CONFIG), str(cls_ckpt), "--out", str(tmp_path / "x.onnx")])
    err = capsys.readouterr().err
    assert code == 1
    assert "not a detector" in err and "classification" in err
    assert not (tmp_path / "x.onnx").exists()

    code = main(["classifier", str(det_checkpoint), "--out", str(tmp_path / "y.onnx")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"cannot export {det_checkpoint} as a classifier" in err
    assert "configs/det" in err


def test_unsupported_pipelines_and_foreign_onnx_files_are_explained(tmp_path) -> None:
    cfg = Config.fromfile(str(DET_CONFIG))
    cfg.test_dataloader.dataset.pipeline.insert(2, dict(type="RandomFlip", prob=1.0))
    with pytest.raises(ExportError, match="RandomFlip step"):
        deploy_from_config(cfg)
    cfg = Config.fromfile(str(DET_CONFIG))
    cfg.model.test_cfg.min_bbox_size = 4  # original-image pixels: unknown to the graph
    with pytest.raises(ExportError, match="min_bbox_size=4.0 is in original-image pixels"):
        deploy_from_config(cfg)

    plain = tmp_path / "plain.onnx"
    torch.onnx.export(
        torch.nn.Conv2d(3, 4, 1), (torch.zeros(1, 3, 8, 8),), str(plain), dynamo=False
    )
    with pytest.raises(MetadataError, match="export it with tools/deploy/export_onnx.py"):
        OnnxModel(str(plain))


class _MulticlassNMS(torch.nn.Module):
    def __init__(self, **settings) -> None:
        super().__init__()
        self.settings = settings

    def forward(self, boxes: torch.Tensor, scores: torch.Tensor):
        return multiclass_nms(boxes, scores, **self.settings)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the eager NMS, traced
@pytest.mark.parametrize("runtime", ["pytorch", "onnxruntime"])
def test_multiclass_nms_follows_mmdet_per_class_andscene_image(runtime, tmp_path) -> None:
    import onnxruntime as ort

    boxes = torch.tensor(
        [[0, 0, 10, 10], [0, 0, 10, 9.5], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 4.0]]
    ).repeat(2, 1, 1)
    scores = torch.zeros(2, 2, 5)
    scores[0, 0] = torch.tensor([0.9, 0.85, 0.0, 0.8, 0.5])
    scores[0, 1, 2] = 0.7
    scores[1, 0, 0], scores[1, 1, 2] = 0.9, 0.85  # the second image: one box per class

    def run(**settings):
        module = _MulticlassNMS(score_thr=0.05, iou_threshold=0.5, **settings)
        if runtime == "pytorch":
            return [t.numpy() for t in module(boxes, scores)]
        path = tmp_path / "nms.onnx"
        names = ["boxes", "scores", "labels"]
        torch.onnx.export(
            module, (boxes, scores), str(path), dynamo=False, opset_version=17,
            input_names=["in_boxes", "in_scores"], output_names=names,
            dynamic_axes={name: {1: "detections"} for name in names},
        )  # fmt: skip
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(names, {"in_boxes": boxes.numpy(), "in_scores": scores.numpy()})

    got_boxes, got_scores, labels = run(max_per_img=100)
    # box 1 overlaps box 0 (IoU 0.95, same class): gone; box 2 is another class: kept;
    # box 4 has IoU 0.4 with box 0: kept
    np.testing.assert_array_equal(got_boxes[0], boxes[0, [0, 3, 2, 4]].numpy())
    np.testing.assert_allclose(got_scores[0], [0.9, 0.8, 0.7, 0.5])
    assert labels.tolist() == [[0, 0, 1, 0], [0, 1, -1, -1]]  # padding after image 2's two
    assert not got_boxes[1, 2:].any() and not got_scores[1, 2:].any()
    # mmdet's order: each image's best 2 (image 1: both class 0), then 1 per class
    got_boxes, got_scores, labels = run(max_per_img=2, max_per_class=1)
    assert labels.tolist() == [[0, -1], [0, 1]]
    np.testing.assert_allclose(got_scores, [[0.9, 0], [0.9, 0.85]])
