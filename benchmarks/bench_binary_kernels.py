"""Binary kernel throughput vs the register-resident xor+popcount+add peak, per kernel path,
one thread. Binary MACs = N*OH*OW*OC*C*KH*KW (one MAC = one +-1 multiply-add).

    pytest benchmarks/bench_binary_kernels.py --benchmark-group-by=group -s

For every path the peak loop (hbn_engine._core.peak_binary_macs) runs in the same session; the
kernel rate is the best C++-timed run (BConv2d.time_run: no Python call overhead), its share of
the peak goes into benchmark.extra_info and is printed. pytest-benchmark's own timing of the
Python call (validation, output allocation included) is kept alongside. AVX2 runs in both of its
formulations (nibble-LUT vpshufb, the default, and scalar popcnt); its peak is the better of the
two loops, each loop's own rate is reported too.
"""
from __future__ import annotations

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

PATHS = [
    p
    for p in ("avx512", "avx2", "avx2_popcnt", "neon", "scalar")
    if hbn_engine.isa_supported(p.split("_")[0])
]


@pytest.fixture(scope="module")
def peaks() -> dict[str, float]:
    """Binary peak per path, measured once per session (best ~1 ms window over 0.5 s)."""
    out = {isa: _core.peak_binary_macs(isa, 0.5) for isa in hbn_engine.supported_isas()}
    if hbn_engine.isa_supported("avx2"):
        for v in ("avx2_lut", "avx2_popcnt"):
            out[v] = _core.peak_binary_variant(v, 0.3)
    print("\nbinary peaks (MAC/s, one thread): " + ", ".join(f"{k} {v:.3g}" for k, v in out.items()))
    return out


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest) -> Iterator[str]:
    name: str = request.param
    hbn_engine.set_isa(name.split("_")[0])
    _core._set_bconv_avx2_variant("popcnt" if name == "avx2_popcnt" else "lut")
    try:
        yield name
    finally:
        _core._set_bconv_avx2_variant("lut")
        hbn_engine.reset_isa()


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
    peak = peaks[path.split("_")[0]]
    benchmark.group = shape.name
    benchmark.extra_info.update(
        path=path,
        binary_macs=macs,
        kernel_macs_per_s=rate,
        peak_macs_per_s=peak,
        pct_of_peak=100.0 * rate / peak,
    )
    if path.startswith("avx2"):
        own = peaks["avx2_lut" if path == "avx2" else "avx2_popcnt"]
        benchmark.extra_info["pct_of_own_loop"] = 100.0 * rate / own
    benchmark(conv.run, x, scale=scale, bias=bias, relu=True)
    py_rate = macs / benchmark.stats.stats.min
    benchmark.extra_info["python_call_macs_per_s"] = py_rate
    print(
        f"\n[{path:12s}] {shape.name:45s} kernel {rate:9.3g} MAC/s = {100 * rate / peak:5.1f}% of peak "
        f"{peak:.3g}  (python call {py_rate:.3g})"
    )


@pytest.mark.parametrize("isa", hbn_engine.supported_isas())
def test_pack_rows_throughput(benchmark, isa: str) -> None:
    """Bit-packing of a 56x56x256 activation (floats per second)."""
    hbn_engine.set_isa(isa)
    try:
        x = np.random.default_rng(1).standard_normal((56 * 56, 256), dtype=np.float32)
        thr = np.zeros(256, np.float32)
        benchmark.group = "pack_rows 3136x256 (thresholds)"
        benchmark.extra_info["path"] = isa
        benchmark(_core.pack_rows, x, thr)
        benchmark.extra_info["floats_per_s"] = x.size / benchmark.stats.stats.min
    finally:
        hbn_engine.reset_isa()
