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
        [--old-build /path/to/old/build] [--rounds 3] [--formats v1,v2] [--sharing]

Without --zoo, the 17 zoo models are exported first (needs torch) into a temporary directory,
once per format of --formats: ``v1`` (canonical weights, repacked at load), ``v2`` (format
version 2, weights in the kernels' layouts, WeightBin as bit panels: the portable default),
``lut`` (v2 with the AVX-512 WeightBin LUT panels) and ``host`` (v2 exported for this machine:
``wbin_layout="auto"``, the layout its selected kernel path reads in place; the same file as v2
or lut, whichever that is); files are named MODEL_FORMAT.hbn. The base tool loads the v1 file
(older engines read only that); ratios are to the size of the file loaded, and for v2 / lut also
to the v1 file's size (a kernel layout pads channels to its block). "in use" adds the mapped
pages the first run faults in (weights read in place that validation did not touch).

``--sharing`` adds, per file: what a second load of the same file in the same process adds
(``--load-twice``), and what a second process loading it while the first holds it adds (its
anonymous growth and the proportional share, Pss, of its file mapping: a page two processes map
counts half in each).

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


def export_zoo(out: str, num_classes: int, only: Optional[str] = None,
               formats: tuple = ("v1",)) -> List[str]:
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
        x = torch.randn(1, c, h, w)
        for fmt in formats:
            p = os.path.join(out, f"{arch}_{variant}_{fmt}.hbn")
            args = {"v1": dict(format_version=1), "v2": {}, "lut": dict(wbin_layout="lut128g4"),
                    "host": dict(wbin_layout="auto")}[fmt]
            hbn_engine.export(net, x, p, **args)
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


PRELOAD: List[str] = []  # ["--preload"] with --preload


def run_tool(tool: str, path: str, mode: str) -> Dict[str, float]:
    out = subprocess.run([tool, "--model", path, "--runs", "1", "--warmup", "0", "--report-memory",
                          "--load", mode] + PRELOAD, check=True, capture_output=True, text=True).stdout
    load = re.search(r"load \(\w+\): ([\d.]+) ms", out)
    mem = re.search(r"model resident \+([-\d.]+) MB \(anonymous \+([-\d.]+), mapped file ([-\d.]+)\), "
                    r"model peak \+([-\d.]+) MB", out)
    if not load or not mem:
        raise RuntimeError(f"unexpected hbn_benchmark_model output:\n{out}")
    r = {"load_ms": float(load.group(1)), "rss": float(mem.group(1)) * 1024,
         "anon": float(mem.group(2)) * 1024, "peak": float(mem.group(4)) * 1024}
    kept = re.search(r"preload: \+([-\d.]+) MB anonymous kept", out)
    if kept:
        r["preload_kept"] = float(kept.group(1)) * 1024
    after = re.search(r"after runs: mapped file resident ([\d.]+) MB", out)
    mapped_after = float(after.group(1)) * 1024 if after else float(mem.group(3)) * 1024
    r["in_use"] = r["anon"] + max(mapped_after, float(mem.group(3)) * 1024)
    return r


def sharing(tool: str, path: str) -> Dict[str, float]:
    """kB: what a second load adds in the same process, and in a second process."""
    out = subprocess.run([tool, "--model", path, "--runs", "0", "--report-memory", "--load-twice"],
                         check=True, capture_output=True, text=True).stdout
    twice = re.search(r"second load: anonymous \+([-\d.]+) MB, mapped file resident ([\d.]+) MB "
                      r"\(both mappings\), Pss ([\d.]+) MB", out)
    holder = subprocess.Popen([tool, "--model", path, "--runs", "1", "--warmup", "0", "--hold-ms", "4000"],
                              stdout=subprocess.PIPE, text=True)
    try:
        for line in holder.stdout:  # type: ignore[union-attr]
            if line.startswith("holding"):
                break
        second = run_tool_raw(tool, path)
    finally:
        holder.kill()
        holder.wait()
    mem = re.search(r"anonymous \+([-\d.]+), mapped file ([\d.]+)\)", second)
    pss = re.search(r"after runs: mapped file resident ([\d.]+) MB, Pss ([\d.]+) MB", second)
    return {"twice_anon": float(twice.group(1)) * 1024, "proc2_anon": float(mem.group(1)) * 1024,
            "proc2_mapped": float(pss.group(1)) * 1024, "proc2_pss": float(pss.group(2)) * 1024}


def run_tool_raw(tool: str, path: str) -> str:
    return subprocess.run([tool, "--model", path, "--runs", "1", "--warmup", "0", "--report-memory"],
                          check=True, capture_output=True, text=True).stdout


def run_old(build: str, path: str) -> Dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _OLD_LOADER, build, path], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(path: str, loaders: Dict[str, object], rounds: int) -> Dict[str, Dict[str, float]]:
    """Medians over `rounds` interleaved rounds of (cold, warm) per loader."""
    samples: Dict[str, Dict[str, List[float]]] = {
        name: {"cold_ms": [], "warm_ms": [], "rss": [], "anon": [], "peak": [], "in_use": []}
        for name in loaders}
    for _ in range(rounds):
        for name, fn in loaders.items():
            drop_cache(path)
            cold = fn(path)
            warm_cache(path)
            warm = fn(path)
            s = samples[name]
            s["cold_ms"].append(cold["load_ms"])
            s["warm_ms"].append(warm["load_ms"])
            for k in ("rss", "anon", "peak", "in_use", "preload_kept"):
                if k in warm:
                    s.setdefault(k, []).append(warm[k])
    return {name: {k: statistics.median(v) for k, v in s.items() if v} for name, s in samples.items()}


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
    ap.add_argument("--formats", default="v1,v2", help="comma list of v1, v2, lut, host (exported zoo)")
    ap.add_argument("--sharing", action="store_true", help="also measure second loads (see above)")
    ap.add_argument("--preload", action="store_true",
                    help="load and free each model once in the measuring process first (leaves out "
                         "one-time library initialisation, and hides heap pages the next load reuses: "
                         "a lower bound; the tools must support --preload)")
    args = ap.parse_args(argv)
    if args.preload:
        PRELOAD.append("--preload")
    formats = tuple(args.formats.split(","))

    tmp = None
    if args.zoo:
        paths = sorted(os.path.join(args.zoo, f) for f in os.listdir(args.zoo) if f.endswith(".hbn"))
    else:
        tmp = tempfile.TemporaryDirectory()
        paths = export_zoo(tmp.name, args.num_classes, args.only, formats)
    if args.only:
        paths = [p for p in paths if re.search(args.only, os.path.basename(p)[:-4])]
    # MODEL_FORMAT.hbn -> {MODEL: {FORMAT: path}}; a file without a known suffix is its own model
    models: Dict[str, Dict[str, str]] = {}
    for p in paths:
        stem = os.path.basename(p)[:-4]
        model, _, fmt = stem.rpartition("_")
        if fmt not in ("v1", "v2", "lut", "host"):
            model, fmt = stem, "v1"
        models.setdefault(model, {})[fmt] = p

    def tool_loader(tool: str, mode: str):
        return lambda p: run_tool(tool, p, mode)

    print("Ratios to the loaded file: resident after load / anonymous / peak during load / in use "
          "after the first run; v2, lut: in use also to the v1 file (/v1).")
    header = ["model", "v1 MB"]
    for fmt in formats:
        if args.base_tool and fmt == "v1":
            header += ["base v1 rss/anon/peak/use", "base v1 cold/warm ms"]
        header += [f"{fmt} MB" if fmt != "v1" else "", f"{fmt} rss/anon/peak/use", f"{fmt} cold/warm ms"]
        if not args.no_read and fmt == "v1":
            header += ["v1 read rss/anon/peak/use"]
        if args.sharing:
            header += [f"{fmt} 2nd load anon, 2nd process anon/Pss"]
    header = [h for h in header if h]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for model in sorted(models):
        files = models[model]
        v1_kb = os.path.getsize(files["v1"]) / 1024 if "v1" in files else None
        cells = [model, f"{v1_kb / 1024:.2f}" if v1_kb else "-"]
        for fmt in formats:
            p = files.get(fmt)
            if not p:
                continue
            kb = os.path.getsize(p) / 1024
            loaders: Dict[str, object] = {}
            if args.base_tool and fmt == "v1":
                loaders["base"] = tool_loader(args.base_tool, "mmap")
            loaders["mmap"] = tool_loader(args.tool, "mmap")
            if not args.no_read and fmt == "v1":
                loaders["read"] = tool_loader(args.tool, "read")
            if args.old_build and fmt == "v1":
                loaders["old"] = lambda q: run_old(args.old_build, q)
            res = measure(p, loaders, args.rounds)

            def ratios(r: Dict[str, float]) -> str:
                use = f"{r['in_use'] / kb:.2f}" if "in_use" in r else "-"
                if fmt != "v1" and v1_kb and "in_use" in r:
                    use += f" ({r['in_use'] / v1_kb:.2f}/v1)"
                kept = f" [preload kept {r['preload_kept'] / kb:.2f}]" if "preload_kept" in r else ""
                return f"{r['rss'] / kb:.2f} / {r['anon'] / kb:.2f} / {r['peak'] / kb:.2f} / {use}{kept}"
            if "base" in res:
                cells += [ratios(res["base"]), f"{res['base']['cold_ms']:.1f} / {res['base']['warm_ms']:.1f}"]
            if fmt != "v1":
                cells.append(f"{kb / 1024:.2f}")
            cells += [ratios(res["mmap"]), f"{res['mmap']['cold_ms']:.1f} / {res['mmap']['warm_ms']:.1f}"]
            if "read" in res:
                cells.append(ratios(res["read"]))
            if args.sharing:
                sh = [sharing(args.tool, p) for _ in range(args.rounds)]
                med = {k: statistics.median(x[k] for x in sh) for k in sh[0]}
                cells.append(f"{med['twice_anon'] / kb:.2f}, {med['proc2_anon'] / kb:.2f} / "
                             f"{med['proc2_pss'] / kb:.2f}")
        print("| " + " | ".join(cells) + " |", flush=True)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
