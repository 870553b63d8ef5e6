"""8-bit conv kernels (qgemm rows behind conv_q8) against the fp32 SGEMM conv of the same shape,
one thread, interleaved rounds, medians; and the register-resident int8 and fp32 peaks of every
path, so the int8/fp32 peak ratio and each row's % of its peak come from the same run.

    PYTHONPATH=. python benchmarks/bench_int8_kernels.py [--rounds 15] [--json out.json]

Each timing is the best of 3 back-to-back calls timed in C++ (time_run); a round times every
(shape, kernel) once, in turn, and the figures are medians over the rounds, so a neighbour's
load on a shared machine hits all kernels alike. "int8 u8" takes a uint8 image (quantized
already: the model-input case); "int8 f32" includes quantizing the float input (the edge-layer
case inside a float network). Both write float outputs through the same transform (scale, bias,
ReLU) as the fp32 conv. Rows with a direct conv tile (qgemm.h QRuns: avx512vnni, avxvnni, scalar)
time both A sources, "direct" (the image read in place) and "im2col" (blocks of copied rows);
the automatic choice is QConv2d::prefers_direct / uses_direct. "int8 u8 bits" is the uint8 input
with a packed-bit output (thresholds after the same transform: a conv_q8 feeding a binary conv),
on the automatic path.
"""
from __future__ import annotations

import argparse
import json
import statistics
from typing import Callable

import numpy as np

import hbn_engine
from hbn_engine import _core

# name -> (batch, in_h, in_w, in_channels, out_channels, kernel, stride, padding)
SHAPES: dict[str, tuple[int, int, int, int, int, int, int, int]] = {
    "alexnet_conv1_3x64_11x11s4_224": (1, 224, 224, 3, 64, 11, 4, 2),
    "resnet18_conv1_3x64_7x7s2_224": (1, 224, 224, 3, 64, 7, 2, 3),
    "squeezenet_conv1_3x96_7x7s2_224": (1, 224, 224, 3, 96, 7, 2, 0),
    "alexnet_fc8_4096x1000_batch1": (1, 1, 1, 4096, 1000, 1, 1, 0),
}


def macs(shape: tuple[int, ...]) -> int:
    n, h, w, ic, oc, k, s, p = shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return n * oh * ow * oc * ic * k * k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--json", help="write the medians here")
    args = ap.parse_args()
    hbn_engine.set_num_threads(1)
    tables = hbn_engine.kernel_tables()
    rows = [r["name"] for r in tables["qgemm"] if r["supported"]]
    sgemm_row = next(r["name"] for r in tables["sgemm"] if r["selected"])
    paths = hbn_engine.supported_isas()
    rng = np.random.default_rng(0)

    # (shape, kernel label, qgemm row or None, timed call)
    cases: list[tuple[str, str, str | None, Callable[[], float]]] = []
    for name, (n, h, w, ic, oc, k, s, p) in SHAPES.items():
        wq = rng.integers(-127, 128, (oc, ic, k, k)).astype(np.int8)
        q8 = _core.QConv2d(wq, s, p, 0.02, 128)
        q = rng.integers(0, 256, (n, h, w, ic)).astype(np.uint8)
        x = rng.standard_normal((n, h, w, ic), dtype=np.float32)
        f32 = _core.Conv2dF32(rng.standard_normal((oc, ic, k, k), dtype=np.float32), (s, s), (p, p))
        for row in rows:
            _core.force_kernel("qgemm", row)
            q8.set_path("direct")
            srcs = ["direct", "im2col"] if q8.uses_direct(w) else ["im2col"]
            for src in srcs:
                tag = f" {src}" if len(srcs) > 1 else ""

                def u8(q8=q8, q=q, src=src) -> float:
                    q8.set_path(src)
                    return q8.time_run(q, 3)

                def f32in(q8=q8, x=x, src=src) -> float:
                    q8.set_path(src)
                    return q8.time_run(x, 3)
                cases.append((name, f"int8 u8 {row}{tag}", row, u8))
                cases.append((name, f"int8 f32 {row}{tag}", row, f32in))
            if name.startswith("alexnet_fc8"):
                continue

            def u8bits(q8=q8, q=q) -> float:
                q8.set_path("automatic")
                return q8.time_run(q, 3, bits=True)
            cases.append((name, f"int8 u8 bits {row}", row, u8bits))
        _core.force_kernel("qgemm", None)
        q8.set_path("automatic")
        cases.append((name, f"fp32 sgemm/{sgemm_row}", None, lambda f32=f32, x=x: f32.time_run(x, 3)))

    times: dict[tuple[str, str], list[float]] = {(c[0], c[1]): [] for c in cases}
    peaks: dict[str, dict[str, list[float]]] = {p: {"int8": [], "fp32": []} for p in paths}
    for _ in range(args.rounds):
        for name, label, row, fn in cases:
            _core.force_kernel("qgemm", row)
            times[(name, label)].append(fn())
        _core.force_kernel("qgemm", None)
        for p in paths:
            peaks[p]["int8"].append(_core.peak_int8_macs(p, 0.05))
            peaks[p]["fp32"].append(_core.peak_fma_macs(p, 0.05))

    peak = {p: {k: statistics.median(v) for k, v in d.items()} for p, d in peaks.items()}
    best = paths[-1]
    print(f"cpu: {hbn_engine.cpu_features()['model']}; 1 thread; medians of {args.rounds} interleaved rounds")
    print("register-resident peaks, G MACs/s (int8 = u8 x s8 -> s32, fp32 = FMA):")
    for p in paths:
        print(f"  {p:11s} int8 {peak[p]['int8'] / 1e9:7.1f}   fp32 {peak[p]['fp32'] / 1e9:6.1f}   "
              f"ratio {peak[p]['int8'] / peak[p]['fp32']:.2f}x")
    out: dict = {"rounds": args.rounds, "peaks": peak, "kernels": {}}
    for name in SHAPES:
        m = macs(SHAPES[name])
        fp32_label = next(lbl for (nm, lbl) in times if nm == name and lbl.startswith("fp32"))
        t32 = statistics.median(times[(name, fp32_label)])
        print(f"{name} ({m / 1e6:.1f} M MACs):")
        for (nm, label), ts in times.items():
            if nm != name:
                continue
            t = statistics.median(ts)
            row = label.split()[-1] if label.startswith("int8 u8 bits") else (
                label.split()[2] if not label.startswith("fp32") else None)
            pk = peak[row]["int8"] if row else peak[best]["fp32"]
            print(f"  {label:31s} {t * 1e3:8.3f} ms {m / t / 1e9:7.1f} G MACs/s {100 * m / t / pk:5.1f}% of peak"
                  f"  {t32 / t:5.2f}x fp32")
            out["kernels"][f"{name} {label}"] = {"ms": t * 1e3, "gmacs": m / t / 1e9, "pct_of_peak": 100 * m / t / pk,
                                                 "vs_fp32": t32 / t}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
