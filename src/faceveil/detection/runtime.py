"""onnxruntime sessions: provider choice (GPU when present) with nothing that reaches a network."""

from __future__ import annotations

import os
from functools import lru_cache
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


# instruction-set features that change which int8 kernels onnxruntime runs
X86_FEATURES = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
ARM_FEATURES = ("asimd", "asimddp", "i8mm", "sve")


def cpu_model() -> str:
    """The processor's model name as the operating system reports it ("unknown" if it does not)."""
    import platform

    for key in ("model name", "Hardware", "CPU part"):
        value = _cpuinfo_field(key)
        if value:
            return value
    return platform.processor() or "unknown"


def cpu_features() -> list[str]:
    """Which of :data:`X86_FEATURES` / :data:`ARM_FEATURES` this processor has (Linux; else empty)."""
    flags = set((_cpuinfo_field("flags") or _cpuinfo_field("Features") or "").split())
    return [name for name in (*X86_FEATURES, *ARM_FEATURES) if name in flags]


@lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""


def _cpuinfo_field(key: str) -> str | None:
    for line in _cpuinfo().splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return None


def machine_report(providers: list[str] | None = None) -> dict[str, Any]:
    """What produced a set of figures: processor, its int8-relevant features, onnxruntime."""
    import platform

    import onnxruntime as ort

    return {
        "cpu": cpu_model(),
        "architecture": platform.machine(),
        "cpu_features": cpu_features(),
        "onnxruntime": ort.__version__,
        "execution_providers": providers if providers is not None else [CPU_PROVIDER],
    }


def format_runtime(described: dict[str, Any]) -> str:
    """Two lines for a report's header: the machine, and each pass with the precision it runs."""
    machine = described["machine"]
    features = " ".join(machine["cpu_features"]) or "none of note"
    passes = ", ".join(
        f"{step.get('pass', step.get('model'))}"
        + (f" x{step['scale']:g}" if "scale" in step else "")
        + (f" {step['precision']}" if "precision" in step else "")
        for step in described["passes"]
    )
    return (
        f"machine  {machine['cpu']} ({machine['architecture']}; {features}); onnxruntime "
        f"{machine['onnxruntime']} on {', '.join(machine['execution_providers'])}\n"
        f"passes   {passes}"
    )
