#!/usr/bin/env python3
"""Markdown before/after tables from two measure.py --json files.

    python3 benchmarks/arm/compare.py benchmarks/arm/results/before.json benchmarks/arm/results/after.json
"""
from __future__ import annotations

import json
import sys

N1, A55 = "neoverse-n1", "cortex-a55"


def main(before_path: str, after_path: str) -> None:
    b, a = json.load(open(before_path)), json.load(open(after_path))
    key = lambda r: (r["layer"], r["mode"])  # noqa: E731
    before = {key(r): r for r in b["layers"]}
    print("| layer | out | MMACs | insns/call | N1 cycles/call | N1 MACs/cycle (% peak) | A55 cycles/call "
          "| A55 MACs/cycle (% peak) | inner loop % peak N1 / A55 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in a["layers"]:
        o = before.get(key(r))
        if not o:
            continue

        def pair(f) -> str:
            return f"{f(o)} -> {f(r)}"

        def il(x: dict) -> str:
            if "inner_loop" not in x:
                return "-"
            p = x["inner_loop"]["pct_peak"]
            return f"{p[N1]:.0f} / {p[A55]:.0f}"

        insns = pair(lambda x: f"{x['insns'] / 1e6:.2f} M")
        n1c = pair(lambda x: f"{x['cycles'][N1] / 1e6:.2f} M")
        n1r = pair(lambda x: f"{x['macs_per_cycle'][N1]:.1f} ({x['pct_peak'][N1]:.0f}%)")
        a5c = pair(lambda x: f"{x['cycles'][A55] / 1e6:.2f} M")
        a5r = pair(lambda x: f"{x['macs_per_cycle'][A55]:.1f} ({x['pct_peak'][A55]:.0f}%)")
        print(f"| {r['layer']} | {r['mode']} | {r['macs'] / 1e6:.1f} | {insns} | {n1c} | {n1r} | {a5c} | {a5r} "
              f"| {pair(il)} |")
    bm = {m["model"]: m for m in b["models"]}
    if a["models"]:
        print("\n| model (batch 1, 1 thread) | insns/run | N1 cycles/run | A55 cycles/run |")
        print("|---|---:|---:|---:|")
        for m in a["models"]:
            o = bm.get(m["model"])
            if o:
                print(f"| {m['model']} | {o['insns'] / 1e6:.1f} M -> {m['insns'] / 1e6:.1f} M "
                      f"| {o['cycles'][N1] / 1e6:.1f} M -> {m['cycles'][N1] / 1e6:.1f} M "
                      f"| {o['cycles'][A55] / 1e6:.1f} M -> {m['cycles'][A55] / 1e6:.1f} M |")
    print(f"\nPeaks per modelled cycle: binary N1 {a['peaks']['binary_macs_per_cycle'][N1]:.1f}, "
          f"A55 {a['peaks']['binary_macs_per_cycle'][A55]:.1f} MACs; fp32 FMA loop N1 "
          f"{b['peaks']['fma_macs_per_cycle'][N1]:.2f} -> {a['peaks']['fma_macs_per_cycle'][N1]:.2f}, A55 "
          f"{b['peaks']['fma_macs_per_cycle'][A55]:.2f} -> {a['peaks']['fma_macs_per_cycle'][A55]:.2f} MACs")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
