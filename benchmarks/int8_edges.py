"""FBin / Hybrid with 8-bit edges vs fp32 edges, ONNX Runtime fp32 and ONNX Runtime int8; Hybrid
also with its WeightBin layers on 8-bit input (export(wbin="int8"), "hybrid_int8_wbin").

    HBN_DEV_BUILD_DIR=build/dev PYTHONPATH=. python benchmarks/int8_edges.py [--rounds 8]

The same runners as `hbn bench` (hbn_engine.bench.runners), 1 thread, batch 1, every runtime of
one architecture interleaved round by round; prints median and minimum ms per runtime and the
ratios of the minimums (on a shared machine the minimum is the quiet machine; docs/benchmarks.md,
"8-bit edges and ONNX Runtime int8"). Writes int8_edges.json in the working directory.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np


def main() -> None:
    import torch

    from hbn_engine.bench import runners
    from hbn_engine.bench.suite import BenchConfig, _build, _calibration

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="alexnet,resnet18,sketchanet,squeezenet")
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--block", type=float, default=0.25, help="seconds per runtime per round")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = {}
    with tempfile.TemporaryDirectory(prefix="hbn_int8_") as work:
        for arch in args.models.split(","):
            fp = _build(arch, "fprec", args.classes, 0)
            cal = _calibration(fp, BenchConfig())
            x = np.random.default_rng(0).standard_normal((1, *fp.input_size), dtype=np.float32)
            point = {"ort_fp32": runners.make_onnxruntime(fp, x, 1, work, name=f"{arch}_fprec"),
                     "ort_int8": runners.make_onnxruntime_int8(fp, x, 1, work, f"{arch}_fprec", cal),
                     "torch_fp32": runners.make_torch(fp, x, 1)}
            for v in ("fbin", "hybrid"):
                net = _build(arch, v, args.classes, 0)
                point[v] = runners.make_engine(net, x, 1, work, name=f"{arch}_{v}")
                point[v + "_int8"] = runners.make_engine(
                    net, x, 1, work, name=f"{arch}_{v}_int8",
                    export_kwargs={"edges": "int8", "calibration": torch.from_numpy(cal)})
            point["hybrid_int8_wbin"] = runners.make_engine(
                net, x, 1, work, name=f"{arch}_hybrid_int8_wbin",
                export_kwargs={"edges": "int8", "wbin": "int8",
                               "calibration": torch.from_numpy(cal)})
            samples: dict[str, list[float]] = {k: [] for k in point}
            for r in range(args.rounds):
                for k, run in point.items():
                    run()
                    end = time.perf_counter() + args.block
                    while True:
                        t = time.perf_counter()
                        run()
                        samples[k].append(time.perf_counter() - t)
                        if time.perf_counter() > end and len(samples[k]) >= 3 * (r + 1):
                            break
            med = {k: float(np.median(v) * 1e3) for k, v in samples.items()}
            mn = {k: float(np.min(v) * 1e3) for k, v in samples.items()}
            fp32 = min(mn["ort_fp32"], mn["torch_fp32"])
            out[arch] = {"median_ms": med, "min_ms": mn}
            print(f"{arch}: " + ", ".join(f"{k} {mn[k]:.2f} / {med[k]:.2f}" for k in point)
                  + " ms (min / median)")
            for v in ("fbin", "hybrid"):
                print(f"  {v} + int8 edges: {fp32 / mn[v + '_int8']:.1f}x fp32, "
                      f"{mn['ort_int8'] / mn[v + '_int8']:.2f}x ORT int8, "
                      f"{mn[v] / mn[v + '_int8']:.2f}x its fp32 edges (minimums)")
            w8 = "hybrid_int8_wbin"
            print(f"  hybrid + int8 edges + int8 WBin: {fp32 / mn[w8]:.1f}x fp32, "
                  f"{mn['ort_int8'] / mn[w8]:.2f}x ORT int8 (min), "
                  f"{med['ort_int8'] / med[w8]:.2f}x (median), "
                  f"{mn['hybrid_int8'] / mn[w8]:.2f}x its exact WBin (minimums)")
    with open(os.path.join(os.getcwd(), "int8_edges.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
