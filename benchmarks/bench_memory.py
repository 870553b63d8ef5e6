"""Memory and time of loading a .hbn model: resident memory after the load and the peak during
it, as ratios to the file size, and the load time with a cold and a warm page cache.

Loaders compared, each in a fresh process per measurement (interleaved rounds, medians quoted):

- ``mmap``: the C API's hbn_model_load_file (memory-mapped file), via ``hbn_benchmark_model
  --report-memory``;
- ``read``: the same tool reading the file into a buffer first (``--load read``);
- ``base`` (optional): another build's hbn_benchmark_model (``--base-tool``), e.g. the commit
  before a change, mmap loader, to give before/after figures in one interleaved run;
- ``old`` (optional): the starting commit's loader, ``_core.Executor.from_file`` of an older
  build directory (``--old-build``), which reads the file into a vector.

A model's resident memory is the growth of the anonymous resident set (RssAnon of
/proc/self/status: heap copies of the weights) plus the resident pages of its file mapping
(/proc/self/smaps; shared between processes and reclaimable). Other growth (code pages a first
load faults in) is left out. The peak is VmHWM, reset through /proc/self/clear_refs just before
the load, minus that other growth. A cold
load is preceded by posix_fadvise(DONTNEED) on the file, which drops its cached pages.

    python benchmarks/bench_memory.py --tool build/dev/hbn_benchmark_model --zoo DIR \
        [--base-tool /path/to/before/hbn_benchmark_model] [--no-read] \
        [--old-build /path/to/old/build] [--rounds 3]

Without --zoo, the 17 zoo models are exported first (needs torch) into a temporary directory.
This is a measurement script, not a pytest benchmark: it prints a table and asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional

ZOO = [(a, v) for a in ("alexnet", "resnet18", "sketchanet", "squeezenet")
       for v in ("fprec", "wbin", "fbin", "hybrid")] + [("alexnet", "hybrid2")]

_OLD_LOADER = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import _core

def status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    return out

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status()
t = time.perf_counter()
e = _core.Executor.from_file(sys.argv[2])
ms = (time.perf_counter() - t) * 1e3
after = status()
# This loader maps nothing: the model's resident memory is its heap growth; file-backed growth is
# code pages, left out of the peak as in hbn_benchmark_model.
anon = after["RssAnon"] - before["RssAnon"]
other = after["VmRSS"] - before["VmRSS"] - anon
print(json.dumps({"load_ms": ms, "rss": anon, "anon": anon,
                  "peak": after["VmHWM"] - before["VmRSS"] - other}))
"""


def export_zoo(out: str, num_classes: int, only: Optional[str] = None) -> List[str]:
    import torch

    import hbn_engine
    from hbn_engine import models

    paths = []
    for arch, variant in ZOO:
        if only and not re.search(only, f"{arch}_{variant}"):
            continue
        torch.manual_seed(0)
        net = getattr(models, arch)(variant=variant, num_classes=num_classes).eval()
        c, h, w = net.input_size
        p = os.path.join(out, f"{arch}_{variant}.hbn")
        hbn_engine.export(net, torch.randn(1, c, h, w), p)
        paths.append(p)
    return paths


def drop_cache(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm_cache(path: str) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def run_tool(tool: str, path: str, mode: str) -> Dict[str, float]:
    out = subprocess.run([tool, "--model", path, "--runs", "0", "--report-memory", "--load", mode],
                         check=True, capture_output=True, text=True).stdout
    load = re.search(r"load \(\w+\): ([\d.]+) ms", out)
    mem = re.search(r"model resident \+([-\d.]+) MB \(anonymous \+([-\d.]+), mapped file ([-\d.]+)\), "
                    r"model peak \+([-\d.]+) MB", out)
    if not load or not mem:
        raise RuntimeError(f"unexpected hbn_benchmark_model output:\n{out}")
    return {"load_ms": float(load.group(1)), "rss": float(mem.group(1)) * 1024,
            "anon": float(mem.group(2)) * 1024, "peak": float(mem.group(4)) * 1024}


def run_old(build: str, path: str) -> Dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _OLD_LOADER, build, path], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(path: str, loaders: Dict[str, object], rounds: int) -> Dict[str, Dict[str, float]]:
    """Medians over `rounds` interleaved rounds of (cold, warm) per loader."""
    samples: Dict[str, Dict[str, List[float]]] = {
        name: {"cold_ms": [], "warm_ms": [], "rss": [], "anon": [], "peak": []} for name in loaders}
    for _ in range(rounds):
        for name, fn in loaders.items():
            drop_cache(path)
            cold = fn(path)
            warm_cache(path)
            warm = fn(path)
            s = samples[name]
            s["cold_ms"].append(cold["load_ms"])
            s["warm_ms"].append(warm["load_ms"])
            for k in ("rss", "anon", "peak"):
                s[k].append(warm[k])
    return {name: {k: statistics.median(v) for k, v in s.items()} for name, s in samples.items()}


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tool", required=True, help="path to hbn_benchmark_model")
    ap.add_argument("--zoo", help="directory of .hbn files (default: export the zoo)")
    ap.add_argument("--num-classes", type=int, default=1000, help="classes when exporting the zoo")
    ap.add_argument("--old-build", help="build directory holding an older _core module to compare")
    ap.add_argument("--base-tool", help="another build's hbn_benchmark_model to compare (mmap loader)")
    ap.add_argument("--no-read", action="store_true", help="leave out the read-into-a-buffer loader")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", help="regex on the model name (file name without .hbn)")
    args = ap.parse_args(argv)

    tmp = None
    if args.zoo:
        paths = sorted(os.path.join(args.zoo, f) for f in os.listdir(args.zoo) if f.endswith(".hbn"))
    else:
        tmp = tempfile.TemporaryDirectory()
        paths = export_zoo(tmp.name, args.num_classes, args.only)
    if args.only:
        paths = [p for p in paths if re.search(args.only, os.path.basename(p)[:-4])]

    loaders: Dict[str, object] = {}
    if args.base_tool:
        loaders["base"] = lambda p: run_tool(args.base_tool, p, "mmap")
    loaders["mmap"] = lambda p: run_tool(args.tool, p, "mmap")
    if not args.no_read:
        loaders["read"] = lambda p: run_tool(args.tool, p, "read")
    if args.old_build:
        loaders["old"] = lambda p: run_old(args.old_build, p)

    cols = " | ".join(f"{n} rss/anon/peak | {n} cold/warm ms" for n in loaders)
    print(f"| model | file MB | {cols} |")
    print("|" + " --- |" * (2 + 2 * len(loaders)))
    for p in paths:
        size_kb = os.path.getsize(p) / 1024
        res = measure(p, loaders, args.rounds)
        cells = []
        for n in loaders:
            r = res[n]
            cells.append(f"{r['rss'] / size_kb:.2f} / {r['anon'] / size_kb:.2f} / {r['peak'] / size_kb:.2f}")
            cells.append(f"{r['cold_ms']:.1f} / {r['warm_ms']:.1f}")
        print(f"| {os.path.basename(p)[:-4]} | {size_kb / 1024:.2f} | " + " | ".join(cells) + " |", flush=True)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
