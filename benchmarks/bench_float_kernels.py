"""Float-input kernels, one thread, per compiled path: the SGEMM behind Conv2dF32 (FPrec layers,
first conv) and the binary-weight kernel (WeightBinConv / WeightBin Linear, both sign-decoding
strategies), at layer shapes, as MACs/s and as a percentage of the register-resident fp32 FMA
peak measured in the same run (``_core.peak_fma_macs``). PyTorch's float conv / linear on the
same shape and thread count is the sanity ratio.

    pytest benchmarks/bench_float_kernels.py --benchmark-group-by=group \
        --benchmark-columns=min,median,rounds
The figures (GMAC/s, % of peak, ratio to torch) are in each result's extra_info
(``--benchmark-json``) and printed at the end of the session (run with ``-s`` to see them).

Rates use the calling thread's CPU time (``time.thread_time``; with one thread the kernel runs
on the calling thread), best of several runs: on a shared machine a 10 ms run is often
preempted, and wall time then measures the scheduler, not the kernel. pytest-benchmark's own
table is wall time.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import hbn_engine
from hbn_engine import _core

# name -> (batch, in_h, in_w, in_channels, out_channels, kernel, stride, padding)
SHAPES: dict[str, tuple[int, int, int, int, int, int, int, int]] = {
    "xnor_256x256_3x3_14x14": (1, 14, 14, 256, 256, 3, 1, 1),
    "alexnet_conv2_96x256_5x5_27x27": (1, 27, 27, 96, 256, 5, 1, 2),
    "alexnet_conv3_256x384_3x3_13x13": (1, 13, 13, 256, 384, 3, 1, 1),
    "resnet_conv1_3x64_7x7s2_224x224": (1, 224, 224, 3, 64, 7, 2, 3),
    "squeeze_fire2_96x16_1x1_54x54": (1, 54, 54, 96, 16, 1, 1, 0),
    "fc_9216x4096_batch1": (1, 1, 1, 9216, 4096, 1, 1, 0),
    "fc_9216x4096_batch16": (16, 1, 1, 9216, 4096, 1, 1, 0),
}

# The supported rows of the micro-kernel tables (hbn_engine.kernel_tables()): the "sgemm" rows
# are named after the ISA paths that select them, and "lut" runs on every row of "wbconv_lut".
TABLES = hbn_engine.kernel_tables()
ISAS = [r["name"] for r in TABLES["sgemm"] if r["supported"]]
LUT_ROWS = {r["name"] for r in TABLES["wbconv_lut"] if r["supported"]}
RESULTS: list[str] = []


def macs(shape: tuple[int, ...]) -> int:
    n, h, w, ic, oc, k, s, p = shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return n * oh * ow * oc * ic * k * k


def pack_weight_bits(w: np.ndarray) -> np.ndarray:
    """Canonical [OC][KH][KW][words] uint64 layout (bit 1 = -1, channels LSB first)."""
    oc, ic, kh, kw = w.shape
    words = (ic + 63) // 64
    neg = np.zeros((oc, kh, kw, words * 64), dtype=np.uint8)
    neg[..., :ic] = (w < 0).transpose(0, 2, 3, 1)
    return np.packbits(neg, axis=-1, bitorder="little").reshape(oc, kh, kw, words * 8).view("<u8").astype(np.uint64)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = hbn_engine.get_num_threads()
    hbn_engine.set_num_threads(1)
    try:
        yield
    finally:
        hbn_engine.set_num_threads(before)
        hbn_engine.reset_isa()


@pytest.fixture(scope="session", autouse=True)
def print_summary() -> Iterator[None]:
    yield
    if RESULTS:
        print("\nfloat kernels, 1 thread (GMAC/s, % of fp32 FMA peak measured in the same run):")
        for line in RESULTS:
            print("  " + line)
        print("  (scalar: the portable C++ path, which the compiler vectorises for the baseline ISA;")
        print("   its peak loop is scalar multiply + add, so it can exceed 100%)")


def cpu_seconds(fn: Callable[[], object], rounds: int = 9) -> float:
    """Best-of-rounds CPU time of fn on the calling thread."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.thread_time()
        fn()
        best = min(best, time.thread_time() - t0)
    return best


_TORCH_TIMES: dict[str, float] = {}


def torch_seconds(name: str) -> float | None:
    """Best CPU time of torch's float conv (or linear) on the same shape, one thread."""
    if name in _TORCH_TIMES:
        return _TORCH_TIMES[name]
    try:
        import torch
    except ImportError:
        return None

    n, h, w, ic, oc, k, s, p = SHAPES[name]
    torch.set_num_threads(1)
    x = torch.randn(n, ic, h, w)
    conv = torch.nn.Conv2d(ic, oc, k, s, p, bias=False).eval()
    if k == 1 and h == 1 and w == 1:
        xf, wf = x.reshape(n, ic), conv.weight.reshape(oc, ic)
        f: Callable[[], object] = lambda: torch.nn.functional.linear(xf, wf)
    else:
        f = lambda: conv(x)
    with torch.no_grad():
        f()
        _TORCH_TIMES[name] = cpu_seconds(f)
    return _TORCH_TIMES[name]


def record(benchmark, kind: str, name: str, isa: str, peak: float, seconds: float) -> None:
    rate = macs(SHAPES[name]) / seconds
    pct = 100.0 * rate / peak
    t = torch_seconds(name)
    benchmark.extra_info.update({"isa": isa, "gmacs": rate / 1e9, "peak_gmacs": peak / 1e9, "pct_of_fma_peak": pct})
    ratio = ""
    if t is not None:
        benchmark.extra_info["torch_seconds"] = t
        ratio = f", {t / seconds:.2f}x torch"
    RESULTS.append(f"{kind:14s} {isa:7s} {name:34s} {rate / 1e9:6.1f} GMAC/s {pct:5.1f}% of {peak / 1e9:.1f}{ratio}")


def run_bench(benchmark, fn: Callable[[], object], kind: str, name: str, isa: str) -> None:
    hbn_engine.set_isa(isa)
    fn()  # warm up (packing caches, page faults)
    peak = _core.peak_fma_macs(isa, 0.2)
    benchmark.group = f"{kind} {name}"
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
    record(benchmark, kind, name, isa, peak, cpu_seconds(fn))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(SHAPES))
def test_sgemm_conv(benchmark, name: str, isa: str) -> None:
    """Conv2dF32 = im2col blocks + packed SGEMM (1x1 / linear shapes read the input in place)."""
    n, h, w, ic, oc, k, s, p = SHAPES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, h, w, ic), dtype=np.float32)
    layer = _core.Conv2dF32(rng.standard_normal((oc, ic, k, k), dtype=np.float32), (s, s), (p, p))
    run_bench(benchmark, lambda: layer.run(x), "sgemm", name, isa)


@pytest.mark.parametrize("strategy", ["direct", "unpack", "lut"])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("name", list(SHAPES))
def test_wbconv(benchmark, name: str, isa: str, strategy: str) -> None:
    """Binary-weight kernel: weights 1 bit each in memory, signs decoded in registers ("direct"),
    unpacked to a +-1 float panel in cache ("unpack"), or table lookups of 4-input signed sums
    ("lut", every row of the wbconv_lut table); "auto" picks per ISA. Rates above 100% of the FMA peak are possible
    for "lut": it does not spend one FMA per MAC."""
    if isa == "scalar" and strategy == "direct":
        pytest.skip("no in-register sign decoder on this path (it always unpacks)")
    if strategy == "lut" and isa not in LUT_ROWS:
        pytest.skip("no table-lookup kernel on this path")
    n, h, w, ic, oc, k, s, p = SHAPES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, h, w, ic), dtype=np.float32)
    bits = pack_weight_bits(rng.standard_normal((oc, ic, k, k), dtype=np.float32))
    layer = _core.WBConv2d(bits, ic, (s, s), (p, p), strategy)
    run_bench(benchmark, lambda: layer.run(x), f"wb-{strategy}", name, isa)
