"""Where an exported model runs: ONNX Runtime or OpenVINO, at a precision, behind one ``run``.

Both read the same ``.onnx`` file. No backend wins everywhere (docs/benchmarks.md), so the
choice is the caller's: ``--backend onnxruntime|openvino`` and ``--precision fp32|bf16|int8``.
``int8`` is a property of the file (``export_onnx.py --int8``); ``bf16`` is OpenVINO's
inference precision on CPUs with bf16 units. OpenVINO is optional: asking for it without the
package installed raises :class:`BackendError` saying what to install.
"""

from __future__ import annotations

import os.path as osp
from types import SimpleNamespace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

BACKENDS = ("onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "int8")
OPENVINO_PIN = "openvino==2026.4.1"
# input shapes a file with dynamic axes is compiled static for before one dynamic compilation
STATIC_SHAPES = 4
Shapes = Tuple[Tuple[str, Tuple[int, ...]], ...]


class BackendError(RuntimeError):
    """A backend or precision that cannot run this file here; the message says what to do."""


def create_session(
    path: str,
    threads: Optional[int] = None,
    providers: Optional[Sequence[str]] = None,
    optimize: bool = True,
) -> Any:
    """An ONNX Runtime ``InferenceSession``, sequential, with full graph optimisation.

    Args:
        path (str): The ``.onnx`` file; FileNotFoundError when it does not exist.
        threads (int, optional): ``intra_op_num_threads``; None: one per physical core.
        providers (Sequence[str], optional): Execution providers. Defaults to None (CPU).
        optimize (bool): False skips graph optimisation (to read metadata only).
    """
    import onnxruntime as ort

    if not osp.isfile(path):
        raise FileNotFoundError(f"the ONNX model {path} does not exist")
    options = ort.SessionOptions()
    level = "ORT_ENABLE_ALL" if optimize else "ORT_DISABLE_ALL"
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(
        path, options, providers=list(providers or ["CPUExecutionProvider"])
    )


def import_openvino() -> Any:
    """The ``openvino`` module, or BackendError saying how to install it."""
    try:
        import openvino
    except ImportError as err:
        raise BackendError(
            f"the OpenVINO backend needs the openvino package, which is not installed "
            f"({err}): pip install '{OPENVINO_PIN}' (tools/setup.sh installs it with the "
            "deployment extras), or use --backend onnxruntime"
        ) from err
    return openvino


def node_attribute(node: Any, name: str, default: Any = None) -> Any:
    """The value of the ONNX ``node``'s attribute ``name``, or ``default`` when it has none."""
    from onnx.helper import get_attribute_value

    values = {a.name: get_attribute_value(a) for a in node.attribute}
    return values.get(name, default)


def set_graph_nodes(graph: Any, nodes: Sequence[Any]) -> None:
    """Make ``nodes`` the ONNX ``graph``'s nodes, and drop the initializers none of them reads."""
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def channel_layernorms_to_nchw(model: Any) -> Any:
    """Rewrite every ``Transpose -> LayerNormalization -> Transpose`` over channels in NCHW.

    The exported EdgeNeXt normalises channels as NHWC views (``channel_norm``); OpenVINO keeps
    the two transposes and reorders around every such LayerNorm, while ReduceMean over axis 1
    stays in its blocked layout (docs/benchmarks.md). A pure function of the graph: the result
    computes the same mean, variance and affine, in the same order as PyTorch's layer norm.

    Args:
        model (onnx.ModelProto): An exported model.

    Returns:
        onnx.ModelProto: A rewritten copy (``model`` is not modified).
    """
    import copy

    from onnx import helper, numpy_helper

    model = copy.deepcopy(model)
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: Dict[str, List[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weights = {init.name: init for init in graph.initializer}
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "nchw_channel_axis"))

    def channel_mean(source: str, target: str) -> Any:
        """``ReduceMean`` over axis 1 (its axes became an input in opset 18)."""
        if opset >= 18:
            return helper.make_node("ReduceMean", [source, "nchw_channel_axis"], [target])
        return helper.make_node("ReduceMean", [source], [target], axes=[1], keepdims=1)

    def constant(name: str) -> Optional[np.ndarray]:
        """The value of an initializer, a ``Constant`` or an ``Identity`` of one; else None."""
        node = producer.get(name)
        if name in weights:
            return numpy_helper.to_array(weights[name])
        value = node_attribute(node, "value") if node is not None else None
        if node is not None and node.op_type == "Constant" and value is not None:
            return numpy_helper.to_array(value)
        return constant(node.input[0]) if node is not None and node.op_type == "Identity" else None

    dropped, replaced = set(), {}
    for node in graph.node:
        before = producer.get(node.input[0]) if node.op_type == "LayerNormalization" else None
        after = consumers.get(node.output[0], [])
        if (
            before is None
            or before.op_type != "Transpose"
            or node_attribute(before, "perm") != [0, 2, 3, 1]
            or len(consumers[before.output[0]]) != 1
            or node_attribute(node, "axis", -1) not in (-1, 3)
            or len(after) != 1
            or after[0].op_type != "Transpose"
            or node_attribute(after[0], "perm") != [0, 3, 1, 2]
            or any(constant(name) is None for name in node.input[1:] if name)
        ):
            continue
        x, out, name = before.input[0], after[0].output[0], node.name or node.output[0]
        names = [f"{name}_{step}" for step in ("mean", "centred", "squares", "var", "std")]
        mean, centred, squares, var, std = names
        affine = []  # LayerNormalization's scale and optional bias, as (C, 1, 1) constants
        for i, role in zip(node.input[1:], ("scale", "bias")):
            if i:
                value = constant(i).reshape(-1, 1, 1)
                graph.initializer.append(numpy_helper.from_array(value, f"{name}_{role}_nchw"))
                affine.append(f"{name}_{role}_nchw")
        eps = np.array(node_attribute(node, "epsilon", 1e-5), np.float32)
        graph.initializer.append(numpy_helper.from_array(eps, f"{name}_eps"))
        normed = f"{name}_normed"
        steps = [
            channel_mean(x, mean),
            helper.make_node("Sub", [x, mean], [centred]),
            helper.make_node("Mul", [centred, centred], [squares]),
            channel_mean(squares, var),
            helper.make_node("Add", [var, f"{name}_eps"], [f"{var}_eps"]),
            helper.make_node("Sqrt", [f"{var}_eps"], [std]),
            helper.make_node("Div", [centred, std], [normed]),
            helper.make_node(
                "Mul", [normed, affine[0]], [out if len(affine) == 1 else f"{name}_scaled"]
            ),
        ]
        if len(affine) == 2:
            steps.append(helper.make_node("Add", [f"{name}_scaled", affine[1]], [out]))
        dropped.update(id(n) for n in (before, node))
        replaced[id(after[0])] = steps
    nodes = []
    for node in graph.node:
        if id(node) not in dropped:
            nodes.extend(replaced.get(id(node), [node]))
    set_graph_nodes(graph, nodes)
    return model


class OpenVINOSession:
    """An ONNX file compiled by OpenVINO for the CPU, run like an ORT session.

    The graph is read with its channel LayerNorms in NCHW (:func:`channel_layernorms_to_nchw`).
    A file with dynamic axes (a segmentor's height and width, a dynamic batch) is compiled
    when it first runs, for the shapes it is given (:meth:`_request_for`).

    Args:
        path (str): The ``.onnx`` file.
        threads (int, optional): ``INFERENCE_NUM_THREADS``; None: OpenVINO's choice.
        bf16 (bool): Infer in bfloat16 (``INFERENCE_PRECISION_HINT``). Defaults to False.
    """

    def __init__(self, path: str, threads: Optional[int] = None, bf16: bool = False) -> None:
        ov = import_openvino()
        if not osp.isfile(path):
            raise FileNotFoundError(f"the ONNX model {path} does not exist")
        core = ov.Core()
        if bf16 and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise BackendError(
                "this CPU has no bfloat16 units (OpenVINO's CPU capabilities: "
                f"{core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES')}): use --precision fp32"
            )
        config: Dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
            "PERFORMANCE_HINT": "LATENCY",  # one stream: batch-1 latency, as ORT's sequential
        }
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        import onnx

        source = onnx.load(path)
        self.metadata = {prop.key: prop.value for prop in source.metadata_props}
        self.model = core.read_model(channel_layernorms_to_nchw(source).SerializeToString())
        self._core, self._config = core, config
        # input shapes -> (compiled model, infer request); None: the dynamic compilation
        self._requests: Dict[Optional[Shapes], Tuple[Any, Any]] = {}
        self.dynamic = self.model.is_dynamic()  # NOTE: walks the graph: milliseconds a call
        if not self.dynamic:
            self._requests[None] = self._compiled(self.model)

    def _compiled(self, model: Any) -> Tuple[Any, Any]:
        compiled = self._core.compile_model(model, "CPU", self._config)
        return compiled, compiled.create_infer_request()

    def _request_for(self, feeds: Mapping[str, np.ndarray]) -> Tuple[Any, Any]:
        """The compilation that runs ``feeds``: a file with dynamic axes is compiled static for
        each of its first :data:`STATIC_SHAPES` input shapes (OpenVINO runs a static graph
        faster), then once with its dynamic axes for every other shape."""
        if not self.dynamic:
            return self._requests[None]
        shapes = tuple((name, tuple(np.shape(value))) for name, value in sorted(feeds.items()))
        if shapes not in self._requests:
            if len(self.static_shapes) >= STATIC_SHAPES:
                if None not in self._requests:
                    self._requests[None] = self._compiled(self.model)
                return self._requests[None]
            model = self.model.clone()
            model.reshape({name: list(shape) for name, shape in shapes})
            self._requests[shapes] = self._compiled(model)
        return self._requests[shapes]

    @property
    def static_shapes(self) -> List[Shapes]:
        """The input shapes compiled static so far (``((name, shape), ...)`` each)."""
        return [shapes for shapes in self._requests if shapes is not None]

    def get_modelmeta(self) -> Any:
        """The file's metadata props as ORT's ``get_modelmeta()`` gives them."""
        return SimpleNamespace(custom_metadata_map=self.metadata)

    def run(
        self, output_names: Optional[Sequence[str]], feeds: Mapping[str, np.ndarray]
    ) -> List[np.ndarray]:
        """The outputs named (all when None) for ``feeds``, as ORT's ``InferenceSession.run``."""
        compiled, request = self._request_for(feeds)
        result = request.infer(dict(feeds), share_outputs=False)  # copies: safe to keep
        ports = compiled.outputs
        if output_names is not None:
            ports = [compiled.output(name) for name in output_names]
        return [np.asarray(result[port]) for port in ports]


def open_model(
    path: str,
    backend: str = "onnxruntime",
    precision: str = "fp32",
    threads: Optional[int] = None,
    providers: Optional[Sequence[str]] = None,
) -> Any:
    """A session of ``backend`` for ``path`` with ``run(output_names, feeds)``.

    Args:
        path (str): The ``.onnx`` file.
        backend (str): ``'onnxruntime'`` or ``'openvino'``. Defaults to ``'onnxruntime'``.
        precision (str): ``'fp32'``, ``'bf16'`` (OpenVINO only) or ``'int8'`` (the file was
            quantised; checked by the caller from its metadata). Defaults to ``'fp32'``.
        threads (int, optional): Threads one inference may use. Defaults to None.
        providers (Sequence[str], optional): ONNX Runtime execution providers.

    Raises:
        BackendError: For an unknown backend or precision, bf16 on ONNX Runtime, or OpenVINO
            missing.
    """
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}: choose one of {BACKENDS}")
    if precision not in PRECISIONS:
        raise BackendError(f"unknown precision {precision!r}: choose one of {PRECISIONS}")
    if backend == "onnxruntime":
        if precision == "bf16":
            raise BackendError(
                "ONNX Runtime's CPU provider has no bfloat16 kernels: use --backend openvino "
                "for bf16, or --precision fp32"
            )
        return create_session(path, threads, providers)
    return OpenVINOSession(path, threads, bf16=precision == "bf16")
