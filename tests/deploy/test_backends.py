"""The runtime's backends and precisions: ONNX Runtime and OpenVINO on the same exported files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from deploy_common import DET_CONFIG, rel_err, scene_image

from edgenext_dense.deploy.export import main as export_main
from edgenext_dense.deploy.ort import BackendError, OnnxModel, preprocess_image, read_metadata
from edgenext_dense.deploy.ort.infer import main as infer_main

pytest.importorskip("openvino")


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``(x1, y1, x2, y2)`` box with each of ``boxes``."""
    lt, rb = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


def _has_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def test_openvino_fp32_gives_onnx_runtimes_detections(det_onnx) -> None:
    img = scene_image(180, 240, 7)
    ref = OnnxModel(str(det_onnx)).predict(img)
    got = OnnxModel(str(det_onnx), backend="openvino").predict(img)
    assert len(ref["scores"]) > 20
    n = min(len(ref["scores"]), len(got["scores"]), 50)  # the tail may differ by a tied score
    np.testing.assert_allclose(got["scores"][:n], ref["scores"][:n], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["bboxes"][:n], ref["bboxes"][:n], rtol=1e-4, atol=1e-2)
    np.testing.assert_array_equal(got["labels"][:n], ref["labels"][:n])


def test_openvino_runs_the_segmentor_at_fp32_and_bf16(seg_export) -> None:
    _, path = seg_export
    batch, _ = preprocess_image(scene_image(96, 128, 3), read_metadata(path))
    (ref,) = OnnxModel(str(path)).forward(batch)
    (fp32,) = OnnxModel(str(path), backend="openvino", precision="fp32").forward(batch)
    assert fp32.shape == ref.shape and rel_err(fp32, ref) < 1e-4
    if not _has_bf16():
        with pytest.raises(BackendError, match="no bfloat16 units"):
            OnnxModel(str(path), backend="openvino", precision="bf16")
        return
    (bf16,) = OnnxModel(str(path), backend="openvino", precision="bf16").forward(batch)
    # bf16 keeps 8 bits of mantissa: close to float32, and not float32 run under another name
    assert 1e-4 < rel_err(bf16, ref) < 0.1
    assert (bf16.argmax(1) == ref.argmax(1)).mean() > 0.9


def test_openvino_runs_a_file_with_dynamic_axes_at_every_input_size(seg_export, monkeypatch):
    from edgenext_dense.deploy.ort import backends

    _, path = seg_export
    monkeypatch.setattr(backends, "STATIC_SHAPES", 2)  # sizes 1-2 compiled static, 3-4 dynamic
    ours = backends.open_model(str(path), backend="openvino")
    reference = backends.create_session(str(path))
    for i, (h, w) in enumerate([(64, 96), (96, 64), (64, 96), (32, 64), (48, 48)]):
        batch = np.random.default_rng(i).standard_normal((1, 3, h, w), np.float32)
        (ref,) = reference.run(None, {"images": batch})
        (got,) = ours.run(["seg_logits"], {"images": batch})
        assert got.shape == ref.shape and rel_err(got, ref) < 1e-4
    assert ours.static_shapes == [(("images", (1, 3, 64, 96)),), (("images", (1, 3, 96, 64)),)]


def test_openvino_reads_channel_layernorms_in_nchw_with_the_same_outputs(seg_export) -> None:
    import onnx

    from edgenext_dense.deploy.ort.backends import channel_layernorms_to_nchw, create_session

    _, path = seg_export
    source = onnx.load(str(path))
    rewritten = channel_layernorms_to_nchw(source)
    ops = [node.op_type for node in rewritten.graph.node]
    before = [node.op_type for node in source.graph.node]
    # every LayerNorm of the backbone and its two transposes are gone; the file is untouched
    assert "LayerNormalization" in before and "LayerNormalization" not in ops
    assert before.count("Transpose") - ops.count("Transpose") == 2 * before.count(
        "LayerNormalization"
    )
    assert len(onnx.load(str(path)).graph.node) == len(before)
    batch, _ = preprocess_image(scene_image(96, 128, 4), read_metadata(path))
    (ref,) = create_session(str(path)).run(None, {"images": batch})
    rewritten_file = Path(path).with_name("nchw.onnx")
    onnx.save(rewritten, str(rewritten_file))
    (got,) = create_session(str(rewritten_file)).run(None, {"images": batch})
    assert rel_err(got, ref) < 1e-5


def test_precisions_a_file_or_backend_cannot_run_are_refused(det_onnx, tmp_path) -> None:
    with pytest.raises(BackendError, match="no bfloat16 kernels.*--backend openvino"):
        OnnxModel(str(det_onnx), precision="bf16")
    with pytest.raises(BackendError, match="float32 export.*--int8"):
        OnnxModel(str(det_onnx), precision="int8")
    with pytest.raises(BackendError, match="unknown backend"):
        OnnxModel(str(det_onnx), backend="tensorrt")


def test_a_missing_openvino_says_what_to_install(det_onnx, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    with pytest.raises(BackendError, match=r"pip install 'openvino==.*--backend onnxruntime"):
        OnnxModel(str(det_onnx), backend="openvino")
    # the runtime itself still imports and runs on ONNX Runtime
    assert len(OnnxModel(str(det_onnx)).predict(scene_image(120, 160, 1))["scores"]) > 0


def test_onnx_infer_takes_backend_and_precision(det_onnx, tmp_path, capsys) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    import cv2

    cv2.imwrite(str(folder / "a.png"), scene_image(120, 160, 2))
    out = tmp_path / "out"
    argv = [str(folder), "--model", str(det_onnx), "--out-dir", str(out), "--score-thr", "0"]
    assert infer_main([*argv, "--backend", "openvino"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["detections"] and (out / "vis" / "a.png").is_file()
    assert infer_main([str(folder), "--model", str(det_onnx), "--precision", "bf16"]) == 1
    assert "no bfloat16 kernels" in capsys.readouterr().err


# --------------------------------------------------------------------------- static int8 (NNCF)
@pytest.fixture(scope="module")
def shapes_coco(tmp_path_factory) -> Path:
    from edgenext_dense.datasets.synthetic import make_coco_shapes

    root = tmp_path_factory.mktemp("coco") / "shapes_coco"
    make_coco_shapes(root, num_train=1, num_val=6, img_size=(120, 160), seed=5)
    return root


@pytest.mark.slow
def test_static_int8_export_calibrates_on_the_val_set_and_runs_on_both_backends(
    det_checkpoint, shapes_coco, tmp_path, capsys
) -> None:
    out = tmp_path / "det_int8.onnx"
    options = [
        f"val_dataloader.dataset.data_root={shapes_coco}/",
        "val_dataloader.dataset.ann_file=annotations/instances_val2017.json",
    ]
    argv = [str(DET_CONFIG), str(det_checkpoint), "--out", str(out), "--int8", "static"]
    assert export_main([*argv, "--calib-images", "4", "--cfg-options", *options]) == 0
    meta = read_metadata(str(out))
    assert meta["quantization"] == "static (4 images)"
    import onnx

    graph = onnx.load(str(out)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "NonMaxSuppression"} <= ops
    # quantised with the LayerNorms in NCHW, as OpenVINO reads them; XCA's MatMuls in float
    assert "LayerNormalization" not in ops
    produced = {o: n.op_type for n in graph.node for o in n.output}
    matmuls = [n for n in graph.node if n.op_type == "MatMul"]
    assert matmuls and all(produced.get(i) != "DequantizeLinear" for n in matmuls for i in n.input)

    img = scene_image(180, 240, 7)
    on_openvino = OnnxModel(str(out), backend="openvino")
    assert on_openvino.precision == "int8"  # the file's precision by default
    got_ov = on_openvino.predict(img)
    got_ort = OnnxModel(str(out)).predict(img)
    assert len(got_ov["scores"]) > 10 and len(got_ort["scores"]) > 10
    with pytest.raises(BackendError, match="int8-quantised"):
        OnnxModel(str(out), precision="fp32")
    if _has_bf16():  # int8 with what the file leaves in float in bfloat16
        got_bf16 = OnnxModel(str(out), backend="openvino", precision="bf16").predict(img)
        assert len(got_bf16["scores"]) > 10
        # the same detections as with that part in float32, and not float32 under another name
        n = min(len(got_bf16["scores"]), len(got_ov["scores"]), 20)
        assert not np.array_equal(got_bf16["scores"][:n], got_ov["scores"][:n])
        np.testing.assert_allclose(got_bf16["scores"][:n], got_ov["scores"][:n], atol=0.05)
        for box, label in zip(got_bf16["bboxes"][:5], got_bf16["labels"][:5]):
            same_class = got_ov["bboxes"][got_ov["labels"] == label]
            assert len(same_class) and _iou(box, same_class).max() > 0.8

    # a classifier has no validation set to calibrate on
    with pytest.raises(SystemExit):
        export_main(["classifier", "x.pth", "--out", str(tmp_path / "c.onnx"), "--int8", "static"])
