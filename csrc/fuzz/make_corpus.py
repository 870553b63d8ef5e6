"""Writes the fuzz target's seed corpus: tiny exported models (a few KB each) that together
cover every op type of the .hbn format, every conv kind (float, WeightBin, FullBin with and
without input_scale, linear layers of each), the executor's bit-domain paths (FullBin -> FullBin,
max-pool and concat on bits, packed copies) and padding up to and past the kernel.

    python csrc/fuzz/make_corpus.py [out_dir]      (default: csrc/fuzz/corpus next to this file)

Needs torch (the exporter); deterministic for a given torch version. The corpus is committed, so
CI's fuzz run needs neither torch nor this script; rerun it after a format change.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import hbn_engine
from hbn_engine.nn import FullBinConv2d, FullBinLinear, WeightBinConv2d, WeightBinLinear


def _bn(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BatchNorm statistics (some negative gammas: flipped thresholds)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = m.num_features
                m.weight.copy_(torch.where(torch.rand(n, generator=g) < 0.25, -1.0, 1.0) * (torch.rand(n, generator=g) + 0.5))
                m.bias.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
    return model.eval()


class Residual(nn.Module):
    """Float conv, BN + ReLU, residual add with ReLU, a standalone BN, LRN, softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, 1, 1, bias=False)
        self.lrn = nn.LocalResponseNorm(3, alpha=1e-2, beta=0.75, k=2.0)
        self.bn_free = nn.BatchNorm2d(8)

    def forward(self, x):
        x = F.relu(self.bn1(self.c1(x)))
        y = torch.relu(self.c2(x) + x)
        y = self.bn_free(self.lrn(y))
        return F.softmax(y, dim=1)


class Pools(nn.Module):
    """Every pooling flavour: max (ceil mode, padding), a relu no op absorbs, avg
    (count_include_pad off), adaptive
    with uneven bins, then flatten -> Linear -> FullBinLinear / WeightBinLinear."""

    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(2, 6, 1)
        self.mp = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
        self.ap = nn.AvgPool2d(2, 1, 1, count_include_pad=False)
        self.ada = nn.AdaptiveAvgPool2d((2, 3))
        self.fc = nn.Linear(36, 12)
        self.fbl = FullBinLinear(12, 10)
        self.wbl = WeightBinLinear(10, 4, bn=True, activation=None)

    def forward(self, x):
        x = self.ada(self.ap(F.relu(self.mp(self.c(x)))))  # a standalone relu op
        return self.wbl(self.fbl(self.fc(torch.flatten(x, 1))))


class BinChain(nn.Module):
    """FullBin -> FullBin passing bits, through a max-pool on bits, with input_scale on one."""

    def __init__(self) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(1, 16, 3, padding=1)
        self.f1 = FullBinConv2d(16, 64, 3, 1, 1)
        self.p = nn.MaxPool2d(2, 2)
        self.f2 = FullBinConv2d(64, 32, 3, 1, 1, activation=None)
        self.f3 = FullBinConv2d(32, 8, 1, input_scale=True)

    def forward(self, x):
        return self.f3(self.f2(self.p(self.f1(self.c0(x)))))


class FireConcat(nn.Module):
    """SqueezeNet-style fire module: 1x1 squeeze, 1x1 and 3x3 expands concatenated on bits
    (word-aligned first operand), a FullBin consumer, then a WeightBin conv and global pool."""

    def __init__(self) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(3, 16, 3, padding=1)
        self.sq = FullBinConv2d(16, 8, 1)
        self.e1 = FullBinConv2d(8, 64, 1)
        self.e3 = FullBinConv2d(8, 16, 3, 1, 1)
        self.out = FullBinConv2d(80, 8, 1)
        self.wb = WeightBinConv2d(8, 4, 3, 1, 1)
        self.gap = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        s = self.sq(self.c0(x))
        return self.gap(self.wb(self.out(torch.cat([self.e1(s), self.e3(s)], 1))))


class SidePack(nn.Module):
    """A float value feeding both a float path and FullBin convs (packed copies), strides."""

    def __init__(self) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(2, 8, 3, 2, 1)
        self.fa = FullBinConv2d(8, 8, 3, 1, 1)
        self.fb = FullBinConv2d(8, 8, 1, 2)
        self.wb = WeightBinConv2d(8, 8, 1, 2)

    def forward(self, x):
        x = F.relu(self.c0(x))
        return self.fb(self.fa(x) + x) + self.wb(x)


def _single(layer: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    return lambda: nn.Sequential(layer())


# name -> (builder, input shape [C, H, W])
MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]] = {
    "residual_lrn_softmax": (Residual, (3, 6, 5)),
    "pools_linear": (Pools, (2, 7, 6)),
    "fbin_chain_maxpool_bits": (BinChain, (1, 8, 8)),
    "fire_concat_bits": (FireConcat, (3, 6, 6)),
    "side_packed_copies": (SidePack, (2, 9, 7)),
    # Padding up to and past the kernel, each conv kind (issue 11).
    "fbin_pad_past_kernel": (_single(lambda: FullBinConv2d(5, 7, 1, 1, 3)), (5, 3, 4)),
    "fbin_3x3_pad5_stride2": (_single(lambda: FullBinConv2d(17, 9, 3, 2, (5, 2))), (17, 4, 5)),
    "wbin_pad_past_kernel": (_single(lambda: WeightBinConv2d(3, 5, 3, (1, 2), (4, 1))), (3, 4, 4)),
    "f32_pad_past_kernel": (_single(lambda: nn.Conv2d(3, 4, 2, 1, (3, 5))), (3, 3, 3)),
    "fbin_compact_16ch": (_single(lambda: FullBinConv2d(16, 8, 3, 1, 1)), (16, 5, 5)),
    "fbin_word_channels": (_single(lambda: FullBinConv2d(70, 6, 2, 1, 0)), (70, 3, 3)),
}


def write_q8_seeds(out: Path) -> None:
    """conv_q8 seeds, built by hand (the exporter does not emit conv_q8 on its own): a padded
    stride-2 conv with BN scale, bias and ReLU into a linear conv_q8 on the flattened value, and
    a conv_q8 whose output goes to a FullBin conv as bits."""
    import numpy as np

    from hbn_engine.format import Op, encode_hbn

    rng = np.random.default_rng(20)
    w1 = rng.integers(-127, 128, (6, 3, 3, 3)).astype(np.int8)
    w2 = rng.integers(-127, 128, (5, 6 * 3 * 3, 1, 1)).astype(np.int8)
    v = lambda n: rng.uniform(0.5, 1.5, n).astype(np.float32)  # noqa: E731
    ops = [Op("conv_q8", "q1", [0], [0, 1, 2, 3], {"stride_h": 2, "stride_w": 2, "pad_h": 1, "pad_w": 1,
                                                    "act": 1, "in_scale": 0.03, "in_zero": 120}),
           Op("flatten", "f", [1], []),
           Op("conv_q8", "q2", [2], [4, 5, None, None], {"stride_h": 1, "stride_w": 1, "pad_h": 0, "pad_w": 0,
                                                        "linear": 1, "in_scale": 0.05, "in_zero": 0})]
    seeds = {"q8_conv_linear": (ops, [w1, v(6) * 0.01, v(6), v(6) - 1, w2, v(5) * 0.01], (3, 5, 6))}
    wb = hbn_engine._core.pack_weights_oihw(rng.standard_normal((4, 6, 3, 3)).astype(np.float32))
    ops = [Op("conv_q8", "q", [0], [0, 1, None, 2], {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1,
                                                     "in_scale": 0.02, "in_zero": 128}),
           Op("conv_fbin", "b", [1], [3, None, None, 4], {"stride_h": 1, "stride_w": 1, "pad_h": 1,
                                                          "pad_w": 1, "in_channels": 6})]
    seeds["q8_bits_to_fbin"] = (ops, [w1, v(6) * 0.01, v(6) - 1, wb, v(6) - 1], (3, 4, 4))
    for name, (ops, tensors, shape) in seeds.items():
        path = out / f"{name}.hbn"
        path.write_bytes(encode_hbn(ops, tensors, {}, shape, len(ops)))
        hbn_engine.load(path).run(rng.standard_normal((1, *shape)).astype(np.float32))
        print(f"{path.name}: {path.stat().st_size} bytes")


def write_pixel_seed(out: Path) -> None:
    """A model exported with input_norm (its first op normalises pixels) and edges="int8" (the
    exporter's conv_q8: first conv into a FullBin conv, linear classifier)."""
    torch.manual_seed(30)
    model = _bn(nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(),
                              FullBinConv2d(8, 8, 3, 1, 1), nn.Flatten(), nn.Linear(8 * 5 * 4, 3)),
                seed=30)
    cal = torch.randn(4, 3, 5, 4, generator=torch.Generator().manual_seed(30))
    path = out / "input_norm_int8_edges.hbn"
    hbn_engine.export(model, cal[:1], str(path), input_norm=([120.0, 110.0, 100.0], [60.0, 55.0, 50.0]),
                      edges="int8", calibration=cal)
    hbn_engine.load(path).run(cal.numpy() * 60 + 110)
    print(f"{path.name}: {path.stat().st_size} bytes")


def write_wbin_q8_seed(out: Path) -> None:
    """WeightBin convs on 8-bit input (export wbin="int8": conv_wbin_q8, sign bits): one with a
    channel tail (70 inputs) into a FullBin conv as bits, one strided with a float output."""
    torch.manual_seed(40)
    model = _bn(nn.Sequential(nn.Conv2d(3, 70, 3, 1, 1), nn.BatchNorm2d(70), nn.ReLU(),
                              WeightBinConv2d(70, 16, 3, 1, 1), FullBinConv2d(16, 8, 3, 1, 1),
                              WeightBinConv2d(8, 5, 3, 2, 1)), seed=40)
    cal = torch.randn(4, 3, 5, 4, generator=torch.Generator().manual_seed(40))
    path = out / "wbin_q8_bits_to_fbin.hbn"
    hbn_engine.export(model, cal[:1], str(path), wbin="int8", calibration=cal)
    hbn_engine.load(path).run(cal.numpy())
    print(f"{path.name}: {path.stat().st_size} bytes")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "corpus"
    out.mkdir(parents=True, exist_ok=True)
    write_q8_seeds(out)
    write_pixel_seed(out)
    write_wbin_q8_seed(out)
    for i, (name, (build, shape)) in enumerate(MODELS.items()):
        torch.manual_seed(100 + i)
        model = _bn(build(), seed=i)
        x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(i))
        path = out / f"{name}.hbn"
        hbn_engine.export(model, x, str(path), format_version=1)
        v2 = write_v2(path)
        for p in (path, v2):
            hbn_engine.load(p).run(x.numpy())  # every seed must load and run
            print(f"{p.name}: {p.stat().st_size} bytes")


def write_v2(v1: Path) -> Path:
    """NAME_v2.hbn beside a version-1 seed: the same model with its conv weights in the kernels'
    layouts (format version 2), so the fuzzer mutates layout records and packed weights too."""
    from hbn_engine.format import read_hbn, write_hbn

    f = read_hbn(str(v1))
    v2 = v1.with_name(v1.stem + "_v2.hbn")
    write_hbn(str(v2), f.ops, f.tensors, f.metadata, f.input_shape, f.output_value)
    return v2


if __name__ == "__main__":
    if sys.argv[1:] == ["--v2-only"]:  # the committed v1 seeds as they are, each one's v2 twin
        for seed in sorted((Path(__file__).resolve().parent / "corpus").glob("*.hbn")):
            if not seed.stem.endswith("_v2"):
                print(write_v2(seed).name)
    else:
        main()
