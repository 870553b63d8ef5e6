"""End-to-end latency: each zoo model x variant in the engine, beside PyTorch and ONNX Runtime
fp32 running the FPrec network of the same architecture (same batch, same threads).

    pytest benchmarks/bench_models.py --benchmark-group-by=param:arch,param:batch,param:threads

The ``hbn bench`` command runs the same comparisons and writes the report; this file exposes
them to pytest-benchmark's statistics, comparison and JSON storage.
"""
from __future__ import annotations

import os

import pytest

from hbn_engine.bench import runners
from hbn_engine.bench.suite import ARCHS, VARIANTS, _build, _input

pytest.importorskip("torch")

THREADS = sorted({1, os.cpu_count() or 1})


@pytest.fixture(scope="module")
def nets():
    cache: dict = {}

    def get(arch: str, variant: str):
        if (arch, variant) not in cache:
            cache[(arch, variant)] = _build(arch, variant, 1000, 0)
        return cache[(arch, variant)]

    return get


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("arch", ARCHS)
def test_engine(benchmark, nets, workdir, arch, variant, batch, threads):
    model = nets(arch, variant)
    x = _input(model, batch, 0)
    run = runners.make_engine(model, x, threads, workdir)
    benchmark.extra_info.update(runtime="hbn", arch=arch, variant=variant)
    benchmark(run)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
@pytest.mark.parametrize("arch", ARCHS)
def test_fp32_baseline(benchmark, nets, workdir, arch, runtime, batch, threads):
    model = nets(arch, "fprec")
    x = _input(model, batch, 0)
    if runtime == "torch":
        run = runners.make_torch(model, x, threads)
    else:
        pytest.importorskip("onnxruntime")
        run = runners.make_onnxruntime(model, x, threads, workdir)
    benchmark.extra_info.update(runtime=runtime, arch=arch, variant="fprec")
    benchmark(run)
