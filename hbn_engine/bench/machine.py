"""What the report says about the machine: CPU, kernel path, threads, and the physical ratio of
binary to float multiply-accumulate throughput measured by register-resident peak loops."""
from __future__ import annotations

import os
import platform

import hbn_engine
from hbn_engine import _core


def peak_ratio(seconds: float = 0.2) -> dict[str, float]:
    """Binary MACs/s (xor+popcount+add), fp32 MACs/s (FMA) and u8 x s8 MACs/s (the 8-bit dot
    product of the active qgemm row) of one core on the active path."""
    isa = hbn_engine.active_isa()
    binary = _core.peak_binary_macs(isa, seconds)
    fma = _core.peak_fma_macs(isa, seconds)
    return {"binary_macs_per_s": binary, "fma_macs_per_s": fma, "ratio": binary / fma,
            "int8_macs_per_s": _core.peak_int8_macs(isa, seconds)}


def machine_info(measure_peaks: bool = True) -> dict[str, object]:
    info: dict[str, object] = {
        "cpu": _core.cpu_model_name(),
        "cores": os.cpu_count(),
        "isa": hbn_engine.active_isa(),
        "supported_isas": hbn_engine.supported_isas(),
        "python": platform.python_version(),
        "hbn_engine": hbn_engine.__version__,
    }
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if measure_peaks:
        info["peak"] = peak_ratio()
    return info
