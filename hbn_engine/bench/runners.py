"""One callable per runtime for the same PyTorch network, so they are timed identically.

Each ``make_*`` returns a zero-argument callable doing one batch of inference, already set to the
requested thread count. torch and onnxruntime are imported here only (bench extras).
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, Optional

import numpy as np

Runner = Callable[[], object]


def make_torch(model, x: np.ndarray, threads: int) -> Runner:
    import torch

    torch.set_num_threads(threads)
    model = model.eval()
    xt = torch.from_numpy(x)

    def run() -> object:
        with torch.inference_mode():
            return model(xt)

    return run


def export_onnx(model, x: np.ndarray, path: str) -> None:
    import torch

    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript and is much slower to run; for plain CNNs both produce the same graph.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), (torch.from_numpy(x),), path, dynamo=False, opset_version=17,
            input_names=["x"], output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )


def _model_path(model, workdir: str, name: Optional[str], suffix: str) -> tuple[str, bool]:
    """Where the exported file goes, and whether it is already there. A named export is reused
    (both formats are batch-size agnostic); an unnamed one is always written afresh."""
    path = os.path.join(workdir, f"{name or f'model_{id(model)}'}{suffix}")
    return path, name is not None and os.path.exists(path)


def make_onnxruntime(model, x: np.ndarray, threads: int, workdir: str,
                     name: Optional[str] = None) -> Runner:
    import onnxruntime as ort

    path, cached = _model_path(model, workdir, name, ".onnx")
    if not cached:
        export_onnx(model, x, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feed = {"x": x}
    return lambda: sess.run(None, feed)


def export_engine(model, x: np.ndarray, path: str) -> None:
    import torch

    import hbn_engine

    hbn_engine.export(model.eval(), torch.from_numpy(x), path)


def make_engine(model, x: np.ndarray, threads: int, workdir: str,
                name: Optional[str] = None) -> Runner:
    import hbn_engine

    path, cached = _model_path(model, workdir, name, ".hbn")
    if not cached:
        export_engine(model, x, path)
    m = hbn_engine.load(path)
    m.num_threads = threads
    return lambda: m.run(x)
