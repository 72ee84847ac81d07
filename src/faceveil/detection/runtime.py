"""onnxruntime sessions: provider choice (GPU when present) with nothing that reaches a network."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from faceveil.errors import ConfigError, ModelError

# Only local execution providers, best first. Remote ones (e.g. "AzureExecutionProvider") are
# never used: nothing a user gives faceveil may leave the machine.
_GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
CPU_PROVIDER = "CPUExecutionProvider"


def _trt_options() -> dict[str, Any]:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "faceveil" / "trt"
    return {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
        "trt_fp16_enable": True,
    }


def choose_providers(device: str) -> list[Any]:
    """Execution providers for ``device`` (``auto``, ``cpu`` or ``cuda``)."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    if device == "cpu":
        return [CPU_PROVIDER]
    gpu = [p for p in _GPU_PROVIDERS if p in available]
    if device == "cuda" and not gpu:
        raise ConfigError(
            "device 'cuda' asked for, but onnxruntime has no CUDA provider here; "
            "install onnxruntime-gpu or choose one of: auto, cpu"
        )
    providers: list[Any] = []
    for name in gpu:
        providers.append((name, _trt_options()) if name.startswith("Tensorrt") else name)
    return [*providers, CPU_PROVIDER]


def create_session(model: bytes, device: str, threads: int = 0) -> Any:
    """An optimised `onnxruntime.InferenceSession` for ``model`` (serialised ONNX)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    # idle worker threads sleep instead of spinning: they would steal the CPU from decoding,
    # encoding and other sessions on a small machine
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    ort.set_default_logger_severity(3)
    try:
        return ort.InferenceSession(model, sess_options=options, providers=choose_providers(device))
    except ConfigError:
        raise
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"cannot load the ONNX model: {exc}") from exc
