"""The {0, 1}-input FullBin conv (input_domain = 1, sign(relu(x)) inputs) against the plain +-1
FullBin conv: same kernels, so the same speed is expected. Interleaved rounds, medians, one
thread, on the active ISA path (HBN_FORCE_ISA to pick another):

    python benchmarks/bench_zero_one.py [ROUNDS]
    pytest benchmarks/bench_zero_one.py -s          # the same, 5 rounds (prints, asserts no speed)

1. layers: BConv2d(..., input_domain='pm1' | 'zero_one').time_run on ResNet-18 / SqueezeNet
   shapes, alternating which goes first;
2. network: the {0, 1}-activation ResNet-18 layout of hbn_engine.bench.plain_models
   (relusignnet, 224x224, 16 binary convs) exported exactly, against the same file with the
   input_domain attributes removed (identical graph read as +-1 inputs), Model.run alternated.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import numpy as np

import hbn_engine
from hbn_engine import _core

# name, C, OC, H=W, k, stride, pad
LAYERS = [
    ("resnet18.layer1 64->64 56x56 3x3", 64, 64, 56, 3, 1, 1),
    ("resnet18.layer2 128->128 28x28 3x3", 128, 128, 28, 3, 1, 1),
    ("resnet18.layer3 256->256 14x14 3x3", 256, 256, 14, 3, 1, 1),
    ("resnet18.layer4 512->512 7x7 3x3", 512, 512, 7, 3, 1, 1),
    ("squeezenet expand 16->64 55x55 3x3 (compact)", 16, 64, 55, 3, 1, 1),
    ("48->40 27x27 3x3 stride 2 (compact)", 48, 40, 27, 3, 2, 1),
]


def bench_layers(rounds: int) -> None:
    rng = np.random.default_rng(0)
    print(f"layers ({hbn_engine.active_isa() if hasattr(hbn_engine, 'active_isa') else 'active path'}), "
          f"best-of-5 C++-timed runs, median of {rounds} interleaved rounds:")
    print(f"{'layer':48s} {'+-1 us':>9s} {'{0,1} us':>9s} {'ratio':>7s}")
    for name, c, oc, hw, k, s, p in LAYERS:
        w = _core.pack_weights_oihw(rng.standard_normal((oc, c, k, k)).astype(np.float32))
        x = _core.pack_rows((rng.random((1, hw, hw, c)) > 0.4).astype(np.float32),
                            np.full(c, 0.5, np.float32))
        convs = {d: _core.BConv2d(w, c, s, p, input_domain=d) for d in ("pm1", "zero_one")}
        t: dict[str, list[float]] = {"pm1": [], "zero_one": []}
        for r in range(rounds):
            for d in (("pm1", "zero_one") if r % 2 == 0 else ("zero_one", "pm1")):
                t[d].append(convs[d].time_run(x, iters=5, threads=1))
        a, b = statistics.median(t["pm1"]) * 1e6, statistics.median(t["zero_one"]) * 1e6
        print(f"{name:48s} {a:9.1f} {b:9.1f} {b / a:7.3f}")


def bench_network(rounds: int) -> None:
    import torch

    from hbn_engine.bench.plain_models import BENCH_NETWORKS
    from hbn_engine.format import encode_hbn, read_hbn

    build, shape = BENCH_NETWORKS["relusignnet"]
    torch.manual_seed(0)
    model = build().eval()
    x = np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        exact = os.path.join(d, "relusign.hbn")
        hbn_engine.export(model, torch.from_numpy(x), exact)
        f = read_hbn(exact)
        n01 = sum(op.attrs.pop("input_domain", 0) for op in f.ops)
        pm1 = encode_hbn(f.ops, f.tensors, f.metadata, f.input_shape, f.output_value)
        models = {"{0,1}": hbn_engine.load(exact), "+-1": hbn_engine.load(pm1)}
    for m in models.values():
        m.num_threads = 1
        for _ in range(3):
            m.run(x)
    t: dict[str, list[float]] = {k: [] for k in models}
    for r in range(rounds):
        for k in (list(models) if r % 2 == 0 else list(models)[::-1]):
            ts = []
            for _ in range(5):
                t0 = time.perf_counter()
                models[k].run(x)
                ts.append(time.perf_counter() - t0)
            t[k].append(sorted(ts)[2])
    a, b = statistics.median(t["+-1"]) * 1e3, statistics.median(t["{0,1}"]) * 1e3
    print(f"\nnetwork relusignnet 224x224 ({n01} {{0,1}} FullBin convs), Model.run median of 5, "
          f"median of {rounds} interleaved rounds:")
    print(f"  +-1 reading {a:.3f} ms, {{0,1}} (exact) {b:.3f} ms, ratio {b / a:.3f}")


def test_zero_one_vs_pm1_interleaved() -> None:
    bench_layers(5)
    bench_network(5)


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    bench_layers(rounds)
    bench_network(rounds)
