"""XNOR-Net's setting: one 3x3 convolution, 256 input and output channels, 14x14 input, batch 1,
one thread; FullBinConv in the engine vs float convs (engine float path, PyTorch, ONNX Runtime).
The measured ratio is what the report prints beside XNOR-Net's 58x.

    pytest benchmarks/bench_xnor_layer.py --benchmark-group-by=group
"""
from __future__ import annotations

import numpy as np
import pytest

from hbn_engine.bench import runners

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def layers():
    from hbn_engine import nn as hnn

    torch.manual_seed(0)
    fbin = torch.nn.Sequential(hnn.FullBinConv2d(256, 256, 3, padding=1, activation=None)).eval()
    fconv = torch.nn.Sequential(torch.nn.Conv2d(256, 256, 3, padding=1)).eval()
    x = np.random.default_rng(0).standard_normal((1, 256, 14, 14), dtype=np.float32)
    return fbin, fconv, x


@pytest.mark.parametrize("which", ["hbn_fbin", "hbn_float", "torch_float", "onnxruntime_float"])
def test_xnor_layer(benchmark, layers, workdir, which):
    fbin, fconv, x = layers
    if which == "hbn_fbin":
        run = runners.make_engine(fbin, x, 1, workdir)
    elif which == "hbn_float":
        run = runners.make_engine(fconv, x, 1, workdir)
    elif which == "torch_float":
        run = runners.make_torch(fconv, x, 1)
    else:
        pytest.importorskip("onnxruntime")
        run = runners.make_onnxruntime(fconv, x, 1, workdir)
    benchmark.group = "xnor-net 256x256 3x3 14x14"
    benchmark.extra_info["macs"] = 256 * 256 * 9 * 14 * 14
    benchmark(run)
