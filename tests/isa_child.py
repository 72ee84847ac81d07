"""Run an ONNX graph on saved inputs and save its outputs; the int8 tests run it under emulation.

    python isa_child.py MODEL.onnx OUT.npz INPUT.npy [INPUT.npy ...]

Only numpy and onnxruntime are imported, one thread, so that an emulated processor runs it quickly.
"""

from __future__ import annotations

import sys

import numpy as np
import numpy.typing as npt
import onnxruntime as ort


def main(argv: list[str]) -> None:
    """Write every output of the model for every input as ``i{input}o{output}`` into OUT.npz."""
    model, out, *inputs = argv
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    results: dict[str, npt.NDArray[np.float32]] = {}
    for i, path in enumerate(inputs):
        for j, value in enumerate(session.run(None, {name: np.load(path)})):
            results[f"i{i}o{j}"] = value
    np.savez(out, **results)


if __name__ == "__main__":
    main(sys.argv[1:])
