#!/usr/bin/env python3
"""Markdown before/after tables from two or more measure.py --json files (oldest first); each
cell reads "first -> ... -> last", for the layers and models the last file has and every
earlier file measured.

    python3 benchmarks/arm/compare.py benchmarks/arm/results/before.json benchmarks/arm/results/after.json
    python3 benchmarks/arm/compare.py results/before.json results/after.json results/klanes.json
"""
from __future__ import annotations

import json
import sys

N1, A55 = "neoverse-n1", "cortex-a55"


def main(paths: list[str]) -> None:
    runs = [json.load(open(p)) for p in paths]
    last = runs[-1]
    key = lambda r: (r["layer"], r["mode"])  # noqa: E731
    by_key = [{key(r): r for r in run["layers"]} for run in runs]
    print("| layer | out | MMACs | insns/call | N1 cycles/call | N1 MACs/cycle (% peak) | A55 cycles/call "
          "| A55 MACs/cycle (% peak) | inner loop % peak N1 / A55 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in last["layers"]:
        chain = [m.get(key(r)) for m in by_key]
        if any(x is None for x in chain):
            continue

        def seq(f) -> str:
            return " -> ".join(f(x) for x in chain)

        def il(x: dict) -> str:
            if "inner_loop" not in x:
                return "-"
            p = x["inner_loop"]["pct_peak"]
            return f"{p[N1]:.0f} / {p[A55]:.0f}"

        insns = seq(lambda x: f"{x['insns'] / 1e6:.2f} M")
        n1c = seq(lambda x: f"{x['cycles'][N1] / 1e6:.2f} M")
        n1r = seq(lambda x: f"{x['macs_per_cycle'][N1]:.1f} ({x['pct_peak'][N1]:.0f}%)")
        a5c = seq(lambda x: f"{x['cycles'][A55] / 1e6:.2f} M")
        a5r = seq(lambda x: f"{x['macs_per_cycle'][A55]:.1f} ({x['pct_peak'][A55]:.0f}%)")
        print(f"| {r['layer']} | {r['mode']} | {r['macs'] / 1e6:.1f} | {insns} | {n1c} | {n1r} | {a5c} | {a5r} "
              f"| {seq(il)} |")
    models = [{m["model"]: m for m in run["models"]} for run in runs]
    if last["models"]:
        print("\n| model (batch 1, 1 thread) | insns/run | N1 cycles/run | A55 cycles/run |")
        print("|---|---:|---:|---:|")
        for m in last["models"]:
            chain = [ms.get(m["model"]) for ms in models]
            if any(x is None for x in chain):
                continue
            cell = lambda f: " -> ".join(f"{f(x) / 1e6:.1f} M" for x in chain)  # noqa: E731
            print(f"| {m['model']} | {cell(lambda x: x['insns'])} | {cell(lambda x: x['cycles'][N1])} "
                  f"| {cell(lambda x: x['cycles'][A55])} |")
    pk = lambda run, k, c: run["peaks"][k][c]  # noqa: E731
    print(f"\nPeaks per modelled cycle: binary N1 {pk(last, 'binary_macs_per_cycle', N1):.1f}, "
          f"A55 {pk(last, 'binary_macs_per_cycle', A55):.1f} MACs; fp32 FMA loop N1 "
          + " -> ".join(f"{pk(r, 'fma_macs_per_cycle', N1):.2f}" for r in runs) + ", A55 "
          + " -> ".join(f"{pk(r, 'fma_macs_per_cycle', A55):.2f}" for r in runs) + " MACs")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: compare.py OLDEST.json [...] NEWEST.json")
    main(sys.argv[1:])
