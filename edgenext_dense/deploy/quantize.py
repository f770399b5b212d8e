"""Int8 quantisation of an exported model with ``onnxruntime.quantization``.

Dynamic quantisation of the matrix multiplications only: the weights of ``MatMul``/``Gemm``
(EdgeNeXt's point-wise linears and attention projections, over half of its time) are stored
as int8 and their inputs quantised per call; convolutions stay float32. ``ConvInteger``, what
quantising the convolutions too gives, made the models 2x slower than float32 on the AVX-512
CPUs we measured, and static QDQ quantisation (which needs calibration images) gained less
than the dynamic MatMul quantisation. The ``edgenext_dense`` metadata is kept, so
``tools/deploy/onnx_infer.py`` runs the quantised file unchanged.
"""

from __future__ import annotations

import os
import tempfile
from typing import Sequence, Union

QUANTIZED_OPS = ("MatMul", "Gemm")


def quantize_dynamic_int8(
    src: Union[str, os.PathLike],
    dst: Union[str, os.PathLike],
    op_types: Sequence[str] = QUANTIZED_OPS,
) -> str:
    """Write an int8 (dynamic) copy of an exported model.

    Args:
        src (str | os.PathLike): The float32 ``.onnx`` written by :func:`export_onnx`.
        dst (str | os.PathLike): The quantised file to write (may equal ``src``).
        op_types (Sequence[str]): Operators to quantise. Defaults to ``('MatMul', 'Gemm')``.

    Returns:
        str: ``dst``.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = os.fspath(src), os.fspath(dst)
    metadata = [(p.key, p.value) for p in onnx.load(src, load_external_data=False).metadata_props]
    with tempfile.TemporaryDirectory(prefix="quant_") as tmp:
        prepared = os.path.join(tmp, "prepared.onnx")
        quant_pre_process(src, prepared)
        quantize_dynamic(
            prepared, dst, weight_type=QuantType.QInt8, op_types_to_quantize=list(op_types)
        )
    proto = onnx.load(dst)
    del proto.metadata_props[:]
    for key, value in metadata:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, dst)
    return dst
