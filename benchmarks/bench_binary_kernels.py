"""Binary kernel throughput vs the register-resident xor+popcount+add peak, per kernel path,
one thread. Binary MACs = N*OH*OW*OC*C*KH*KW (one MAC = one +-1 multiply-add).

    pytest benchmarks/bench_binary_kernels.py --benchmark-group-by=group -s
    pytest benchmarks/bench_binary_kernels.py -k model_layer -s     # ResNet-18 / AlexNet / XNOR-Net / SqueezeNet layers

The kernels benchmarked are the supported rows of the "bconv" kernel table
(hbn_engine.kernel_tables(), each forced in turn), so every micro-kernel the engine can dispatch
is measured, AVX2 in both of its formulations (nibble-LUT vpshufb and scalar popcnt). Each row is
compared with the peak of the row of the "peak_binary" table of the same name (or, where none
is, the peak of the ISA path of its required features), measured in the same session. The kernel
rate is the best C++-timed run (BConv2d.time_run: no Python call overhead); its share of the
peak goes into benchmark.extra_info and is printed. pytest-benchmark's own timing of the Python
call (validation, output allocation included) is kept alongside.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import pytest

import hbn_engine
from hbn_engine import _core


class Shape(NamedTuple):
    name: str
    c: int
    oc: int
    hw: int
    k: int
    pad: int
    n: int = 1


SHAPES = [
    Shape("xnor-net 256->256 14x14 3x3 (K=2304)", 256, 256, 14, 3, 1),
    Shape("alexnet conv4 384->384 13x13 3x3 (K=3456)", 384, 384, 13, 3, 1),
    Shape("512->512 7x7 3x3 (K=4608)", 512, 512, 7, 3, 1),
    Shape("128->128 28x28 3x3 (K=1152)", 128, 128, 28, 3, 1),
    Shape("bgemm M=64 K=4096 N=4096 (fc, batch 64)", 4096, 4096, 1, 1, 0, 64),
    # Model shapes at batch 1: large maps with few channels, compact receptive fields
    # (channels not a multiple of 64), and fc layers as one row (GEMV-like).
    Shape("resnet18 layer1 64->64 56x56 3x3 (K=576)", 64, 64, 56, 3, 1),
    Shape("alexnet conv2 96->256 27x27 5x5 (K=2400, compact)", 96, 256, 27, 5, 2),
    Shape("squeezenet fire2 expand3x3 16->64 54x54 (K=144, compact)", 16, 64, 54, 3, 1),
    Shape("squeezenet fire4 expand3x3 32->128 54x54 (K=288, compact)", 32, 128, 54, 3, 1),
    Shape("alexnet fc6 M=1 K=9216 N=4096 (batch 1)", 9216, 4096, 1, 1, 0, 1),
    Shape("alexnet fc7 M=1 K=4096 N=4096 (batch 1)", 4096, 4096, 1, 1, 0, 1),
]

TABLES = hbn_engine.kernel_tables()
PATHS = [r["name"] for r in TABLES["bconv"] if r["supported"]]


@pytest.fixture(scope="module")
def peaks() -> dict[str, float]:
    """Binary peak per path and per row of the peak_binary table, measured once per session
    (best ~1 ms window over 0.5 s)."""
    out = {isa: _core.peak_binary_macs(isa, 0.5) for isa in hbn_engine.supported_isas()}
    for r in TABLES["peak_binary"]:
        if r["supported"] and r["name"] not in out:
            out[r["name"]] = _core.peak_binary_variant(r["name"], 0.3)
    print("\nbinary peaks (MAC/s, one thread): " + ", ".join(f"{k} {v:.3g}" for k, v in out.items()))
    return out


def peak_for(peaks: dict[str, float], row: str) -> float:
    """The peak a bconv row is judged against: the peak loop of the same name, else that of the
    ISA path its required features make up."""
    if row in peaks:
        return peaks[row]
    requires = next(r["requires"] for r in TABLES["bconv"] if r["name"] == row)
    return peaks[requires[-1] if requires else "scalar"]


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    _core.force_kernel("bconv", name)
    try:
        yield name
    finally:
        _core.force_kernel("bconv", None)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name.split(" (")[0].replace(" ", "_"))
def test_bconv_throughput(benchmark, peaks: dict[str, float], path: str, shape: Shape) -> None:
    rng = np.random.default_rng(0)
    x = _core.pack_rows(rng.standard_normal((shape.n, shape.hw, shape.hw, shape.c), dtype=np.float32))
    w = _core.pack_weights_oihw(rng.standard_normal((shape.oc, shape.c, shape.k, shape.k), dtype=np.float32))
    conv = _core.BConv2d(w, shape.c, 1, shape.pad)
    scale = np.full(shape.oc, 0.01, np.float32)
    bias = np.zeros(shape.oc, np.float32)
    oh = shape.hw + 2 * shape.pad - shape.k + 1
    macs = shape.n * oh * oh * shape.oc * shape.c * shape.k * shape.k

    # Kernel rate: best C++-timed run, interleaved with nothing else.
    best_s = min(conv.time_run(x, iters=max(3, int(2e8 // macs) + 3)) for _ in range(5))
    rate = macs / best_s
    # The path's peak (the best of its loops) and the row's own loop.
    requires = next(r["requires"] for r in TABLES["bconv"] if r["name"] == path)
    peak = peaks[requires[-1] if requires else "scalar"]
    benchmark.group = shape.name
    benchmark.extra_info.update(
        path=path,
        binary_macs=macs,
        kernel_macs_per_s=rate,
        peak_macs_per_s=peak,
        pct_of_peak=100.0 * rate / peak,
        pct_of_own_loop=100.0 * rate / peak_for(peaks, path),
    )
    benchmark(conv.run, x, scale=scale, bias=bias, relu=True)
    # benchmark.stats is None under --benchmark-disable (the call then runs once, untimed).
    py = f"{macs / benchmark.stats.stats.min:.3g}" if benchmark.stats else "not timed"
    benchmark.extra_info["python_call_macs_per_s"] = py
    print(
        f"\n[{path:12s}] {shape.name:45s} kernel {rate:9.3g} MAC/s = {100 * rate / peak:5.1f}% of peak "
        f"{peak:.3g}  (python call {py})"
    )


class Layer(NamedTuple):
    name: str
    c: int
    oc: int
    hw: int
    k: int
    stride: int
    pad: int


# Binary layers of ResNet-18 (224x224 input; activations stay float between convs because of the
# residual adds, so each conv packs its float input and writes floats), AlexNet (conv2-5 of the
# FBin variant), XNOR-Net's 256->256 layer and SqueezeNet 1.0 (bits pass between fire modules,
# so convs read bits and write bits). Both output kinds and both input kinds run for every
# layer. Bit outputs take the integer-threshold epilogue from 256 output pixels on the avx512
# row (ResNet-18 layers 1-2, AlexNet conv2, SqueezeNet's 55x55 and 27x27 layers), from 160 on
# the others; the float rule below.
MODEL_LAYERS = [
    Layer("resnet18 layer1 64->64 3x3 56x56", 64, 64, 56, 3, 1, 1),
    Layer("resnet18 layer2.0 64->128 3x3 s2 56x56", 64, 128, 56, 3, 2, 1),
    Layer("resnet18 layer2 downsample 64->128 1x1 s2", 64, 128, 56, 1, 2, 0),
    Layer("resnet18 layer2 128->128 3x3 28x28", 128, 128, 28, 3, 1, 1),
    Layer("resnet18 layer3.0 128->256 3x3 s2 28x28", 128, 256, 28, 3, 2, 1),
    Layer("resnet18 layer3 downsample 128->256 1x1 s2", 128, 256, 28, 1, 2, 0),
    Layer("resnet18 layer3 256->256 3x3 14x14", 256, 256, 14, 3, 1, 1),
    Layer("resnet18 layer4.0 256->512 3x3 s2 14x14", 256, 512, 14, 3, 2, 1),
    Layer("resnet18 layer4 downsample 256->512 1x1 s2", 256, 512, 14, 1, 2, 0),
    Layer("resnet18 layer4 512->512 3x3 7x7", 512, 512, 7, 3, 1, 1),
    Layer("alexnet conv2 96->256 5x5 27x27", 96, 256, 27, 5, 1, 2),
    Layer("alexnet conv3 256->384 3x3 13x13", 256, 384, 13, 3, 1, 1),
    Layer("alexnet conv4 384->384 3x3 13x13", 384, 384, 13, 3, 1, 1),
    Layer("alexnet conv5 384->256 3x3 13x13", 384, 256, 13, 3, 1, 1),
    Layer("xnor-net 256->256 3x3 14x14", 256, 256, 14, 3, 1, 1),
    Layer("squeezenet fire2.squeeze 96->16 1x1 55x55", 96, 16, 55, 1, 1, 0),
    Layer("squeezenet fire2.expand1x1 16->64 55x55", 16, 64, 55, 1, 1, 0),
    Layer("squeezenet fire2.expand3x3 16->64 55x55", 16, 64, 55, 3, 1, 1),
    Layer("squeezenet fire3.squeeze 128->16 1x1 55x55", 128, 16, 55, 1, 1, 0),
    Layer("squeezenet fire4.squeeze 128->32 1x1 55x55", 128, 32, 55, 1, 1, 0),
    Layer("squeezenet fire4.expand1x1 32->128 55x55", 32, 128, 55, 1, 1, 0),
    Layer("squeezenet fire4.expand3x3 32->128 55x55", 32, 128, 55, 3, 1, 1),
    Layer("squeezenet fire6.squeeze 256->48 1x1 27x27", 256, 48, 27, 1, 1, 0),
    Layer("squeezenet fire6.expand1x1 48->192 27x27", 48, 192, 27, 1, 1, 0),
    Layer("squeezenet fire6.expand3x3 48->192 27x27", 48, 192, 27, 3, 1, 1),
    Layer("squeezenet fire8.squeeze 384->64 1x1 27x27", 384, 64, 27, 1, 1, 0),
    Layer("squeezenet fire8.expand1x1 64->256 27x27", 64, 256, 27, 1, 1, 0),
    Layer("squeezenet fire8.expand3x3 64->256 27x27", 64, 256, 27, 3, 1, 1),
    Layer("squeezenet fire9.expand3x3 64->256 13x13", 64, 256, 13, 3, 1, 1),
]


def _median_seconds(fn, calls: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@pytest.mark.parametrize("out_kind", ["float", "bits"])
@pytest.mark.parametrize("layer", MODEL_LAYERS, ids=lambda s: s.name.replace(" ", "_"))
def test_model_layer_rates(benchmark, peaks: dict[str, float], layer: Layer, out_kind: str) -> None:
    """One model layer on the best path, one thread: median time of the conv alone (bits in)
    and of pack + conv (float in, the layer's own BatchNorm-folded thresholds with flips), each
    as a share of the same session's peak. Timed per Python call (about 2 us of call overhead
    included; it matters only for the smallest layers)."""
    isa = hbn_engine.supported_isas()[-1]
    hbn_engine.set_isa(isa)
    try:
        rng = np.random.default_rng(0)
        xf = rng.standard_normal((1, layer.hw, layer.hw, layer.c), dtype=np.float32)
        in_thr = (rng.standard_normal(layer.c) * 0.1).astype(np.float32)
        in_flip = (rng.random(layer.c) < 0.3).astype(np.uint8)
        w = _core.pack_weights_oihw(
            rng.standard_normal((layer.oc, layer.c, layer.k, layer.k), dtype=np.float32)
        )
        conv = _core.BConv2d(w, layer.c, layer.stride, layer.pad)
        scale = (rng.uniform(0.5, 1.5, layer.oc) * np.where(rng.random(layer.oc) < 0.2, -1, 1)).astype(np.float32)
        bias = rng.standard_normal(layer.oc).astype(np.float32)
        kw: dict = dict(scale=scale, bias=bias, relu=True, threads=1)
        if out_kind == "bits":
            kw.update(out_threshold=(rng.standard_normal(layer.oc) * 0.5).astype(np.float32),
                      out_flip=(rng.random(layer.oc) < 0.3).astype(np.uint8))
        xb = _core.pack_rows(xf, in_thr, in_flip, threads=1)
        oh = (layer.hw + 2 * layer.pad - layer.k) // layer.stride + 1
        macs = oh * oh * layer.oc * layer.c * layer.k * layer.k
        calls = max(20, min(400, int(4e9 // macs)))
        t_conv = _median_seconds(lambda: conv.run(xb, **kw), calls)
        t_pack = _median_seconds(lambda: _core.pack_rows(xf, in_thr, in_flip, threads=1), calls)
        peak = peaks[isa]
        benchmark.group = f"model layers ({out_kind} out)"
        benchmark.extra_info.update(
            path=isa, layer=layer.name, out=out_kind, binary_macs=macs, conv_s=t_conv, pack_s=t_pack,
            pct_of_peak_bits_in=100.0 * macs / t_conv / peak,
            pct_of_peak_float_in=100.0 * macs / (t_conv + t_pack) / peak,
        )
        benchmark(conv.run, xb, **kw)
        print(
            f"\n[{isa}] {layer.name:46s} {out_kind:5s} out: conv {t_conv * 1e6:7.1f} us "
            f"= {100 * macs / t_conv / peak:5.1f}% of peak; + pack {t_pack * 1e6:6.1f} us "
            f"= {100 * macs / (t_conv + t_pack) / peak:5.1f}%"
        )
    finally:
        hbn_engine.reset_isa()


@pytest.mark.parametrize("isa", [r["name"] for r in TABLES["bitpack"] if r["supported"]])
def test_pack_rows_throughput(benchmark, isa: str) -> None:
    """Bit-packing of a 56x56x256 activation (floats per second), every row of the bitpack table."""
    _core.force_kernel("bitpack", isa)
    try:
        x = np.random.default_rng(1).standard_normal((56 * 56, 256), dtype=np.float32)
        thr = np.zeros(256, np.float32)
        benchmark.group = "pack_rows 3136x256 (thresholds)"
        benchmark.extra_info["path"] = isa
        benchmark(_core.pack_rows, x, thr)
        if benchmark.stats:
            benchmark.extra_info["floats_per_s"] = x.size / benchmark.stats.stats.min
    finally:
        _core.force_kernel("bitpack", None)
