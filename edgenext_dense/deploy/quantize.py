"""Int8 quantisation of an exported model: static (NNCF) or dynamic (ONNX Runtime).

Static: NNCF's post-training quantisation calibrates activation ranges on images of the
config's validation set, preprocessed as the runtime does, and writes a QDQ graph that ONNX
Runtime and OpenVINO both run (OpenVINO with int8 kernels). Dynamic: ``MatMul``/``Gemm`` only,
weights stored as int8, inputs quantised per call, the other convolutions left in float32; the
float graph computes EdgeNeXt's point-wise linears as 1x1 convolutions, so they are first
rewritten as ``Transpose -> MatMul -> Transpose`` (:func:`pointwise_convs_to_matmuls`). Both
keep the ``edgenext_dense`` metadata and record ``quantization`` in it.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from typing import Any, Iterable, List, Optional, Union

import numpy as np

QUANTIZED_OPS = ("MatMul", "Gemm")


def _is_pointwise_conv(node: Any, weights: dict) -> bool:
    """A plain 1x1 ``Conv`` (stride 1, no padding, one group) with a constant weight."""
    from edgenext_dense.deploy.ort.backends import node_attribute

    weight = weights.get(node.input[1]) if node.op_type == "Conv" else None
    if node.domain not in ("", "ai.onnx") or weight is None or list(weight.dims[2:]) != [1, 1]:
        return False
    return (
        node_attribute(node, "group", 1) == 1
        and set(node_attribute(node, "strides", [1])) == {1}
        and set(node_attribute(node, "pads", [0])) == {0}
        and node_attribute(node, "auto_pad", b"NOTSET") == b"NOTSET"
    )


def pointwise_convs_to_matmuls(model: Any) -> Any:
    """Rewrite every 1x1 convolution as ``Transpose -> MatMul (-> Add) -> Transpose``.

    A pure function of the graph: the result computes the same values (the same sums of
    products), with the weight as a ``(in, out)`` MatMul constant that dynamic quantisation
    stores as int8. ONNX Runtime's transpose optimiser cancels the transposes between
    consecutive rewritten layers.

    Args:
        model (onnx.ModelProto): A model whose convolutions' weights are initializers.

    Returns:
        onnx.ModelProto: A rewritten copy (``model`` is not modified).
    """
    import onnx
    from onnx import helper, numpy_helper

    from edgenext_dense.deploy.ort.backends import set_graph_nodes

    model = copy.deepcopy(model)
    graph = model.graph
    weights = {init.name: init for init in graph.initializer}
    nodes: List[Any] = []
    for index, node in enumerate(graph.node):
        if not _is_pointwise_conv(node, weights):
            nodes.append(node)
            continue
        name = node.name or f"conv_{index}"
        kernel = numpy_helper.to_array(weights[node.input[1]])
        matrix = numpy_helper.from_array(kernel[:, :, 0, 0].T.copy(), name=f"{name}_matmul_weight")
        graph.initializer.append(matrix)
        nhwc = f"{name}_nhwc"
        nodes.append(helper.make_node("Transpose", [node.input[0]], [nhwc], perm=[0, 2, 3, 1]))
        product = f"{name}_matmul"
        nodes.append(helper.make_node("MatMul", [nhwc, matrix.name], [product], name=product))
        if len(node.input) > 2 and node.input[2]:
            biased = f"{name}_bias_add"
            nodes.append(helper.make_node("Add", [product, node.input[2]], [biased]))
            product = biased
        nodes.append(helper.make_node("Transpose", [product], node.output, perm=[0, 3, 1, 2]))
    set_graph_nodes(graph, nodes)
    onnx.checker.check_model(model)
    return model


def quantize_dynamic_int8(src: Union[str, os.PathLike], dst: Union[str, os.PathLike]) -> str:
    """Write an int8 (dynamic) copy of an exported model.

    Args:
        src (str | os.PathLike): The float32 ``.onnx`` written by :func:`export_onnx`.
        dst (str | os.PathLike): The quantised file to write (may equal ``src``).

    Returns:
        str: ``dst``.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = os.fspath(src), os.fspath(dst)
    source = onnx.load(src)
    metadata = {p.key: p.value for p in source.metadata_props}
    with tempfile.TemporaryDirectory(prefix="quant_") as tmp:
        rewritten = os.path.join(tmp, "matmuls.onnx")
        onnx.save(pointwise_convs_to_matmuls(source), rewritten)
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(rewritten, prepared)
        quantize_dynamic(
            prepared, dst, weight_type=QuantType.QInt8, op_types_to_quantize=list(QUANTIZED_OPS)
        )
    proto = onnx.load(dst)
    onnx.helper.set_model_props(proto, _marked(metadata, "dynamic"))
    onnx.save(proto, dst)
    return dst


def _marked(metadata: dict, quantization: str) -> dict:
    """The file's metadata props with ``quantization`` recorded (the runtime's int8 check)."""
    from edgenext_dense.deploy.ort.metadata import METADATA_KEY

    meta = json.loads(metadata[METADATA_KEY])
    meta["quantization"] = quantization
    return dict(metadata, **{METADATA_KEY: json.dumps(meta)})


def calibration_batches(
    config: str, model_path: str, count: int, cfg_options: Optional[dict] = None
) -> List[np.ndarray]:
    """Up to ``count`` images of ``config``'s validation set, preprocessed for ``model_path``.

    Raises:
        ValueError: When the validation set has no readable image.
    """
    from mmengine.registry import DATASETS, init_default_scope

    from edgenext_dense.deploy.ort import read_image, read_metadata
    from edgenext_dense.deploy.ort.preprocess import preprocess_image
    from edgenext_dense.engine.config import load_config
    from edgenext_dense.image_files import process_each

    cfg = load_config(config, cfg_options)
    init_default_scope(cfg.default_scope)
    dataset = DATASETS.build(dict(cfg.val_dataloader.dataset, pipeline=[]))
    meta = read_metadata(model_path)
    # spread over the set: consecutive images of one scene type would calibrate a narrow range
    picks = np.linspace(0, len(dataset) - 1, num=min(count, len(dataset))).round().astype(int)
    path_of = lambda index: dataset.get_data_info(index)["img_path"]  # noqa: E731
    done = process_each(
        sorted(set(picks.tolist())),
        lambda index: preprocess_image(read_image(path_of(index)), meta)[0],
        skipped=[],
        name=path_of,
    )
    batches = [batch for _, batch in done]  # a broken image is reported and skipped
    if not batches:
        raise ValueError(f"no readable validation image in {config} to calibrate int8 with")
    return batches


def quantize_static_int8(
    src: Union[str, os.PathLike],
    dst: Union[str, os.PathLike],
    batches: Iterable[np.ndarray],
    subset_size: int,
) -> str:
    """Write a static int8 (QDQ) copy of an exported model, calibrated by NNCF.

    Args:
        src (str | os.PathLike): The float32 ``.onnx`` written by :func:`export_onnx`.
        dst (str | os.PathLike): The quantised file to write (may equal ``src``).
        batches (Iterable[np.ndarray]): Preprocessed ``(1, 3, H, W)`` float32 inputs.
        subset_size (int): How many of them calibrate.

    Returns:
        str: ``dst``.
    """
    import nncf
    import onnx

    from edgenext_dense.deploy.ort.backends import channel_layernorms_to_nchw
    from edgenext_dense.deploy.ort.metadata import METADATA_KEY

    src, dst = os.fspath(src), os.fspath(dst)
    source = onnx.load(src)
    metadata = {p.key: p.value for p in source.metadata_props}
    input_name = json.loads(metadata[METADATA_KEY])["input_name"]
    dataset = nncf.Dataset(list(batches), lambda batch: {input_name: batch})
    # NOTE: quantised with the channel LayerNorms in NCHW, as OpenVINO reads them: quantisers
    # between the NHWC transposes cost OpenVINO 5.8 mAP on the shapes demo (docs/benchmarks.md).
    # NNCF's default (CNN) scheme: its TRANSFORMER scheme quantises the LayerNorm outputs of the
    # SDTA blocks, a graph OpenVINO 2026.4's CPU plugin fails to run ("zero dim" memory desc).
    # XCA's two small MatMuls stay in float: their quantisers cost more than they save.
    quantized = nncf.quantize(
        channel_layernorms_to_nchw(source),
        dataset,
        subset_size=subset_size,
        ignored_scope=nncf.IgnoredScope(types=["MatMul"], validate=False),
    )
    del quantized.metadata_props[:]
    onnx.helper.set_model_props(quantized, _marked(metadata, f"static ({subset_size} images)"))
    onnx.save(quantized, dst)
    return dst
