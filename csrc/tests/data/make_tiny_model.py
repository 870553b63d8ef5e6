"""Regenerates the C API test data in this folder (needs torch):

    PYTHONPATH=<repo> python csrc/tests/data/make_tiny_model.py

tiny.hbn: a 3x16x16 -> 10 class network a few KB in size with every conv kind (fprec, wbin,
fbin), a residual add, a channel concat, max / avg pooling and flatten, so a C program can run
each kernel family without a zoo model. tiny_pixels.hbn: the same network exported with
input_norm (its first op normalises uint8 pixels: hbn_model_run_u8). tiny_input.raw: a float32 NCHW batch of 2; tiny_ref.raw:
the Python engine's output on it (float32 [2, 10]), which the C tests compare against.
tiny.hbn is format version 1 (canonical weights, repacked at load); tiny_v2.hbn is the same model
in format version 2 (weights in the kernels' layouts, used in place), converted from tiny.hbn.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

import hbn_engine
from hbn_engine import nn as hnn


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.pool1 = nn.MaxPool2d(2)
        self.b1 = hnn.FullBinConv2d(16, 64, 3, padding=1)
        self.b2 = hnn.FullBinConv2d(64, 64, 3, padding=1)
        self.w1 = hnn.WeightBinConv2d(64, 32, 3, padding=1)
        self.pool2 = nn.AvgPool2d(2)
        self.fc = hnn.FullBinLinear(96 * 4 * 4, 10, activation=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(torch.relu(self.bn1(self.conv1(x))))
        y = self.b1(x)
        y = y + self.b2(y)
        x = torch.cat([y, self.w1(y)], dim=1)
        x = torch.flatten(self.pool2(x), 1)
        return self.fc(x)


def write_v2(v1_path: str, v2_path: str) -> None:
    """The same model in format version 2: the v1 file's ops and tensors, re-encoded."""
    from hbn_engine.format import read_hbn, write_hbn

    f = read_hbn(v1_path)
    write_hbn(v2_path, f.ops, f.tensors, f.metadata, f.input_shape, f.output_value)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    torch.manual_seed(0)
    net = Tiny().eval()
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = os.path.join(here, "tiny.hbn")
    hbn_engine.export(net, torch.randn(1, 3, 16, 16), path, model_name="tiny", variant="hybrid",
                      class_names=[f"class{i}" for i in range(10)], format_version=1)
    write_v2(path, os.path.join(here, "tiny_v2.hbn"))
    hbn_engine.export(net, torch.randn(1, 3, 16, 16), os.path.join(here, "tiny_pixels.hbn"),
                      model_name="tiny", variant="hybrid", format_version=1,
                      input_norm=([123.675, 116.28, 103.53], [58.395, 57.12, 57.375]))
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    y = hbn_engine.load(path).run(x)
    x.tofile(os.path.join(here, "tiny_input.raw"))
    np.asarray(y, dtype=np.float32).tofile(os.path.join(here, "tiny_ref.raw"))
    print(f"{path}: {os.path.getsize(path)} bytes, output {y.shape}")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--v2-only"]:  # tiny.hbn as it is, tiny_v2.hbn from it
        here = os.path.dirname(os.path.abspath(__file__))
        write_v2(os.path.join(here, "tiny.hbn"), os.path.join(here, "tiny_v2.hbn"))
    else:
        main()
