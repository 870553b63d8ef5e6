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


def _ort_session(path: str, x: np.ndarray, threads: int) -> Runner:
    """One sequential ONNX Runtime CPU session on ``threads`` threads, all graph optimizations."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feed = {"x": x}
    return lambda: sess.run(None, feed)


def make_onnxruntime(model, x: np.ndarray, threads: int, workdir: str,
                     name: Optional[str] = None) -> Runner:
    path, cached = _model_path(model, workdir, name, ".onnx")
    if not cached:
        export_onnx(model, x, path)
    return _ort_session(path, x, threads)


class _Calibration:
    """onnxruntime.quantization's CalibrationDataReader protocol over a numpy batch."""

    def __init__(self, images: np.ndarray) -> None:
        self._it = iter([{"x": images[i:i + 1]} for i in range(len(images))])

    def get_next(self) -> Optional[dict]:
        return next(self._it, None)


def quantize_onnx(fp32_path: str, out_path: str, calibration: np.ndarray) -> None:
    """ONNX Runtime's own int8 pipeline: quant_pre_process (shape inference and the graph
    optimizer, which folds BatchNorm into the convs), then static quantization in QDQ format
    with per-channel int8 weights and uint8 activations calibrated (min/max) on the batch."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = out_path + ".pre.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant_pre_process(fp32_path, pre)
        quantize_static(pre, out_path, _Calibration(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    os.remove(pre)


def make_onnxruntime_int8(model, x: np.ndarray, threads: int, workdir: str, name: str,
                          calibration: np.ndarray) -> Runner:
    fp32, cached = _model_path(model, workdir, name, ".onnx")
    if not cached:
        export_onnx(model, x, fp32)
    path, cached = _model_path(model, workdir, name, ".int8.onnx")
    if not cached:
        quantize_onnx(fp32, path, calibration)
    return _ort_session(path, x, threads)


def export_engine(model, x: np.ndarray, path: str, **export_kwargs) -> None:
    import torch

    import hbn_engine

    hbn_engine.export(model.eval(), torch.from_numpy(x), path, **export_kwargs)


def make_engine(model, x: np.ndarray, threads: int, workdir: str,
                name: Optional[str] = None, export_kwargs: Optional[dict] = None) -> Runner:
    import hbn_engine

    path, cached = _model_path(model, workdir, name, ".hbn")
    if not cached:
        export_engine(model, x, path, **(export_kwargs or {}))
    m = hbn_engine.load(path)
    m.num_threads = threads
    return lambda: m.run(x)
