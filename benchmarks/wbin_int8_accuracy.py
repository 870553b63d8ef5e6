"""Top-1 of the demo's trained models with WeightBin layers on 8-bit input (export wbin="int8").

    HBN_DEV_BUILD_DIR=build/dev PYTHONPATH=. python benchmarks/wbin_int8_accuracy.py DEMO_OUT

DEMO_OUT is the output directory of `hbn demo` (seed*/<variant>.pt and results.json, or one
seed's files directly). Per seed and per variant with WeightBin layers, the engine's top-1 on
the test images (the demo's split) for: fp32 edges (exact), int8 edges (edges="int8"), int8
edges + wbin="int8" (WeightBin convolutions on 8-bit input), and int8 edges + every WeightBin
layer named in int8_layers (convolutions and linear layers). Calibration: the first 512
training images, as the demo's int8 check. The issue's rule: within 0.5 points of fp32 edges.
Writes wbin_int8_accuracy.json in the working directory.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import tempfile

import numpy as np


def _seed_dirs(root: str) -> list[str]:
    dirs = sorted(glob.glob(os.path.join(root, "seed*")))
    return [d for d in dirs if os.path.isfile(os.path.join(d, "results.json"))] or [root]


def main() -> None:
    import torch

    import hbn_engine
    from hbn_engine.datasets import load_dataset
    from hbn_engine.demo import INT8_CALIBRATION_IMAGES, mini_sketchanet

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("demo_out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out: dict = {}
    for d in _seed_dirs(args.demo_out):
        res = json.load(open(os.path.join(d, "results.json")))
        data = load_dataset(res["dataset"], seed=res["split_seed"])
        x_te, y_te = data.x_test, data.y_test
        cal = torch.from_numpy(np.ascontiguousarray(data.x_train[:INT8_CALIBRATION_IMAGES]))
        seed_out = out.setdefault(f"seed{res['seed']}", {})
        for variant, entry in res["variants"].items():
            layers = entry["layers"]
            wbin = [n for n, k in layers.items() if k == "wbin"]
            pt = os.path.join(d, f"{variant}.pt")
            if not wbin or not os.path.isfile(pt):
                continue
            torch.manual_seed(0)
            model = mini_sketchanet("fbin", data.num_classes, layers, data.input_shape,
                                    res["width"])
            model.load_state_dict(torch.load(pt, weights_only=True))
            model.eval()
            row = {"wbin_layers": wbin}
            with tempfile.TemporaryDirectory() as work:
                for tag, kw in (("fp32", {}),
                                ("int8_edges", {"edges": "int8", "calibration": cal}),
                                ("int8_edges_wbin_convs", {"edges": "int8", "wbin": "int8",
                                                           "calibration": cal}),
                                ("int8_edges_all_wbin", {"edges": "int8", "int8_layers": wbin,
                                                         "calibration": cal})):
                    path = os.path.join(work, f"{tag}.hbn")
                    rep = hbn_engine.export(model, torch.from_numpy(x_te[:1]), path, **kw)
                    m = hbn_engine.load(path)
                    pred = np.concatenate([m.run(np.ascontiguousarray(x_te[i:i + 250])).argmax(1)
                                           for i in range(0, len(x_te), 250)])
                    row[tag] = {"accuracy": float((pred == y_te).mean()),
                                "file_bytes": os.path.getsize(path),
                                "wbin_int8": [n for n, k in rep.kinds().items()
                                              if k == "wbin_int8"]}
            seed_out[variant] = row
            base = row["fp32"]["accuracy"]
            print(f"{os.path.basename(d)} {variant}: fp32 {base:.4f}, "
                  + ", ".join(f"{t} {row[t]['accuracy']:.4f} ({100 * (row[t]['accuracy'] - base):+.2f} pt)"
                              for t in ("int8_edges", "int8_edges_wbin_convs", "int8_edges_all_wbin")),
                  flush=True)
    with open(os.path.join(os.getcwd(), "wbin_int8_accuracy.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
