"""Exports the four zoo FBin models (10 classes, seed 0, BatchNorm statistics randomised as in
the zoo hash check) to .hbn files for the aarch64 whole-network counts.

    PYTHONPATH=. python benchmarks/arm/export_fbin.py OUTDIR
"""
from __future__ import annotations

import os
import sys

import torch

import hbn_engine
from hbn_engine import models


def main(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    for arch in ("alexnet", "resnet18", "sketchanet", "squeezenet"):
        torch.manual_seed(0)
        net = getattr(models, arch)(variant="fbin", num_classes=10).eval()
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        c, h, w = net.input_size
        path = os.path.join(out, f"{arch}_fbin.hbn")
        hbn_engine.export(net, torch.randn(1, c, h, w), path)
        print(path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "build/arm-models")
