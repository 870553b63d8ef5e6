"""Short interleaved timing of the three whole networks written without hbn_engine.nn:
engine vs PyTorch fp32, batch 1, one thread each (not a test; figures for docs/export.md).

    HBN_DEV_BUILD_DIR=build/<name> PYTHONPATH=. python tests/idioms/measure_speed.py
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import copy  # noqa: E402

import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import hbn_engine  # noqa: E402
from conftest import randomize_bn  # noqa: E402
from hbn_engine.frontend import normalize  # noqa: E402
from hbn_engine.frontend.leaves import BinaryConv  # noqa: E402
from idioms import networks  # noqa: E402
from test_export_idioms import ties  # noqa: E402


class _Fp32Conv(nn.Module):
    """A BinaryConv as a plain fp32 conv with its +-alpha weights precomputed: what the network
    costs in PyTorch without re-binarizing weights in every forward."""

    def __init__(self, m: BinaryConv):
        super().__init__()
        self.m = m
        w = torch.where(m.negative, -1.0, 1.0)
        shape = (-1,) + (1,) * (w.dim() - 1)
        self.register_buffer("w", w * m.scale.view(shape))

    def forward(self, x):
        if self.m.kind == "fbin":
            x = self.m.input_signs(x)
        if self.m.linear:
            return F.linear(x, self.w, self.m.bias)
        return F.conv2d(x, self.w, self.m.bias, self.m.stride, self.m.padding)


def fp32_equivalent(model: nn.Module, x: torch.Tensor) -> nn.Module:
    gm, _ = normalize(model, x)
    gm = copy.deepcopy(gm)
    for name, m in list(gm.named_modules()):
        if isinstance(m, BinaryConv):
            parent, _, last = name.rpartition(".")
            setattr(gm.get_submodule(parent) if parent else gm, last, _Fp32Conv(m))
    return gm

NETS = {
    # ResNet-18 layouts at 224 (stem straight to 56x56): 16 binary convs each
    "birealnet": (lambda: networks.birealnet("none", (64, 128, 256, 512), (4, 4, 4, 4),
                                             classes=1000, stem_stride=4), (3, 224, 224)),
    "reactnet": (lambda: networks.reactnet("none", (64, 128, 256, 512), (2, 2, 2, 2),
                                           classes=1000, stem_stride=4), (3, 224, 224)),
    "xnor_nin": (lambda: networks.binop_binarize(networks.xnor_nin((192, 160, 96))),
                 (3, 32, 32)),
}


def _time(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main(rounds: int = 5) -> None:
    torch.set_num_threads(1)
    for name, (build, shape) in NETS.items():
        torch.manual_seed(0)
        model = build()
        x = torch.randn(4, *shape)
        randomize_bn(model, calib=x)
        model.eval()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, f"{name}.hbn")
            report = hbn_engine.export(model, x[:1], path)
            engine = hbn_engine.load(path)
        engine.num_threads = 1
        xb = x[:1]
        xn = xb.numpy()
        eq = fp32_equivalent(model, xb)
        with torch.no_grad():
            ref = model(x).numpy()
            ref64 = copy.deepcopy(model).double()(x.double()).numpy()
            y = engine.run(x.numpy())
            scale = np.abs(ref).max()
            err = float(np.abs(y - ref).max() / scale)
            err64 = float(np.abs(y - ref64).max() / scale)
            err_t = float(np.abs(ref - ref64).max() / scale)
            top1 = int((y.argmax(1) == ref.argmax(1)).sum())
            top1_64 = int((y.argmax(1) == ref64.argmax(1)).sum())
            model(xb)
            eq(xb)
            engine.run(xn)
            n = max(1, int(0.3 / max(_time(lambda: model(xb), 1), 1e-4)))
            te, tt, tq = [], [], []
            for _ in range(rounds):  # interleaved, so a busy core hits both alike
                te.append(_time(lambda: engine.run(xn), n))
                tt.append(_time(lambda: model(xb), n))
                tq.append(_time(lambda: eq(xb), n))
        n_ties, n_bits = ties(model, x)
        kinds = report.kinds().values()
        e, t, q = (statistics.median(v) * 1e3 for v in (te, tt, tq))
        print(f"{name}: {sum(k == 'fbin' for k in kinds)} FullBin / "
              f"{sum(k == 'fprec' for k in kinds)} float layers; {len(ref)} inputs: engine vs "
              f"PyTorch fp32 max rel err {err:.2g} top-1 {top1}/{len(ref)}, vs PyTorch fp64 "
              f"{err64:.2g} top-1 {top1_64}/{len(ref)} (fp32 vs fp64 itself {err_t:.2g}; "
              f"{n_ties} of {n_bits} sign inputs within fp32 round-off of a threshold)")
        print(f"    engine {e:.2f} ms; PyTorch fp32 as written {t:.2f} ms ({t / e:.1f}x); "
              f"same convs with precomputed +-alpha weights {q:.2f} ms ({q / e:.1f}x) "
              f"(median of {rounds} interleaved rounds x {n} runs, batch 1, 1 thread)")


if __name__ == "__main__":
    main()
