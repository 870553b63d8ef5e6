#!/usr/bin/env python3
"""ARM speed without ARM hardware: dynamic instruction counts under qemu-aarch64 plus llvm-mca
cycle models of the executed code, for the binary conv layers, the NEON peak loops and whole
networks. See benchmarks/arm/README.md for the method and its limits.

    python3 benchmarks/arm/measure.py [--build-dir build/arm-bench] [--layers xnor,...]
        [--models DIR_WITH_HBN_FILES] [--plugin-src DIR] [--json out.json]

Needs: aarch64-linux-gnu-g++ / -objdump / -nm (g++-aarch64-linux-gnu, binutils-aarch64-linux-gnu),
qemu-aarch64 (qemu-user), gcc for the plugin, llvm-mca (llvm-19 preferred: Debian's llvm-19).
"""
from __future__ import annotations

import argparse
import bisect
import collections
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CPUS = ("neoverse-n1", "cortex-a55")


@dataclass(frozen=True)
class Layer:
    name: str
    c: int
    oc: int
    hw: int
    k: int
    stride: int
    pad: int

    @property
    def macs(self) -> int:
        o = (self.hw + 2 * self.pad - self.k) // self.stride + 1
        return o * o * self.oc * self.c * self.k * self.k


LAYERS = [
    Layer("xnor", 256, 256, 14, 3, 1, 1),  # XNOR-Net's layer (= ResNet-18 layer3 3x3)
    Layer("alexnet.conv2", 96, 256, 27, 5, 1, 2),
    Layer("alexnet.conv3", 256, 384, 13, 3, 1, 1),
    Layer("alexnet.conv4", 384, 384, 13, 3, 1, 1),
    Layer("alexnet.conv5", 384, 256, 13, 3, 1, 1),
    Layer("resnet18.layer1", 64, 64, 56, 3, 1, 1),
    Layer("resnet18.layer2.down", 64, 128, 56, 3, 2, 1),
    Layer("resnet18.layer2.short", 64, 128, 56, 1, 2, 0),  # 1x1 stride-2 shortcut: one-word fields
    Layer("resnet18.layer2", 128, 128, 28, 3, 1, 1),
    Layer("resnet18.layer3.down", 128, 256, 28, 3, 2, 1),
    Layer("resnet18.layer4.down", 256, 512, 14, 3, 2, 1),
    Layer("resnet18.layer4", 512, 512, 7, 3, 1, 1),
]
# By name only (not in "all"): a batch-1 linear layer, M = 1 (the WeightBin LUT cutoff).
EXTRA_LAYERS = [Layer("alexnet.fc6", 9216, 4096, 1, 1, 1, 0)]


def die(msg: str) -> None:
    sys.exit(f"measure.py: {msg}")


def need(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if not path:
        die(f"{tool} not found ({hint})")
    return path


def find_plugin_src(arg: str | None) -> Path:
    """The qemu-insncount plugin source: --plugin-src, $HBN_INSNCOUNT_DIR, or ../shared/tools
    next to the repository (or next to the directory holding a worktree)."""
    cands = [Path(arg)] if arg else []
    if os.environ.get("HBN_INSNCOUNT_DIR"):
        cands.append(Path(os.environ["HBN_INSNCOUNT_DIR"]))
    cands += [REPO.parent / "shared/tools/qemu-insncount", REPO.parent.parent / "shared/tools/qemu-insncount"]
    for c in cands:
        if (c / "insncount.c").is_file():
            return c
    die("qemu-insncount plugin source (insncount.c) not found; looked in "
        + ", ".join(str(c) for c in cands) + ". Pass --plugin-src DIR or set HBN_INSNCOUNT_DIR.")
    raise AssertionError


def build_plugin(src: Path, out_dir: Path) -> Path:
    need("gcc", "the host C compiler builds the qemu plugin")
    so = out_dir / "libinsncount.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-o", str(so), str(src / "insncount.c")],
                   check=True)
    return so


# ---------------------------------------------------------------------------------------------
# Instruction counts


@dataclass
class Counts:
    total: int
    blocks: dict[tuple[int, int], int]  # (vaddr, n_insns) -> executions


def load_counts(path: Path) -> Counts:
    blocks: dict[tuple[int, int], int] = collections.Counter()
    with open(path) as f:
        total = int(f.readline().split()[1])
        for line in f:
            va, n, e = line.split()
            blocks[(int(va, 16), int(n))] += int(e)
    return Counts(total, dict(blocks))


class Runner:
    def __init__(self, binary: Path, plugin: Path, work: Path, qemu_cpu: str):
        self.binary, self.plugin, self.work, self.qemu_cpu = binary, plugin, work, qemu_cpu
        self.qemu = need("qemu-aarch64", "apt-get install qemu-user")

    def count(self, args: list[str]) -> Counts:
        out = self.work / ("c_" + hashlib.sha1(" ".join(args).encode()).hexdigest()[:16] + ".txt")
        cmd = [self.qemu, "-cpu", self.qemu_cpu, "-plugin", f"{self.plugin},out={out}", str(self.binary), *args]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            die(f"{' '.join(cmd)} failed:\n{res.stdout}{res.stderr}")
        return load_counts(out)

    def per_call(self, args_1: list[str], args_r: list[str], r: int) -> tuple[float, dict[tuple[int, int], float]]:
        """Instructions and block executions of one call: (R calls - 1 call) / (R - 1)."""
        c1, cr = self.count(args_1), self.count(args_r)
        blocks = {k: (v - c1.blocks.get(k, 0)) / (r - 1) for k, v in cr.blocks.items()}
        return (cr.total - c1.total) / (r - 1), {k: v for k, v in blocks.items() if v > 0}


# ---------------------------------------------------------------------------------------------
# Disassembly and llvm-mca


@dataclass
class Insn:
    addr: int
    text: str          # llvm-mca input syntax
    mnemonic: str
    target: int | None  # direct branch target


class Disasm:
    def __init__(self, binary: Path):
        self.binary = binary
        self.objdump = need("aarch64-linux-gnu-objdump", "apt-get install binutils-aarch64-linux-gnu")
        nm = need("aarch64-linux-gnu-nm", "apt-get install binutils-aarch64-linux-gnu")
        syms = []
        for line in subprocess.run([nm, "-C", "--defined-only", "-n", str(binary)], capture_output=True,
                                   text=True, check=True).stdout.splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[1] in "tTwW":
                syms.append((int(parts[0], 16), parts[2]))
        self.sym_addrs = [a for a, _ in syms]
        self.syms = syms
        self.cache: dict[int, Insn] = {}

    def symbol(self, addr: int) -> str:
        i = bisect.bisect_right(self.sym_addrs, addr) - 1
        return self.syms[i][1] if i >= 0 else "?"

    def function_range(self, addr: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.sym_addrs, addr) - 1
        lo = self.sym_addrs[i]
        hi = self.sym_addrs[i + 1] if i + 1 < len(self.sym_addrs) else lo + 4096
        return lo, hi

    _line = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
    _target = re.compile(r"\b([0-9a-f]+) <[^>]*>")

    def load(self, lo: int, hi: int) -> None:
        out = subprocess.run([self.objdump, "-d", "--no-show-raw-insn", f"--start-address={lo}",
                              f"--stop-address={hi}", str(self.binary)], capture_output=True, text=True,
                             check=True).stdout
        for line in out.splitlines():
            m = self._line.match(line)
            if not m:
                continue
            addr, mnem, ops = int(m.group(1), 16), m.group(2), m.group(3)
            ops = ops.split("//")[0].strip()
            t = self._target.search(ops)
            target = int(t.group(1), 16) if t else None
            ops = self._target.sub(".Lt", ops)
            self.cache[addr] = Insn(addr, f"{mnem} {ops}".strip(), mnem, target)

    def insns(self, lo: int, hi_excl: int) -> list[Insn]:
        if lo not in self.cache or (hi_excl - 4) not in self.cache:
            flo, fhi = self.function_range(lo)
            self.load(min(flo, lo), max(fhi, hi_excl))
        return [self.cache[a] for a in range(lo, hi_excl, 4) if a in self.cache]


class Mca:
    def __init__(self, work: Path):
        self.tool = shutil.which("llvm-mca-19") or shutil.which("llvm-mca")
        if not self.tool:
            die("llvm-mca not found (apt-get install llvm-19)")
        self.work = work
        self.memo: dict[tuple[str, str], float] = {}

    def cycles_per_iter(self, insns: list[Insn], cpu: str) -> float:
        body = ".Lt:\n" + "\n".join(i.text for i in insns) + "\n"
        key = (body, cpu)
        if key not in self.memo:
            f = self.work / ("mca_" + hashlib.sha1(body.encode()).hexdigest()[:16] + ".s")
            f.write_text(body)
            res = subprocess.run([self.tool, "-mtriple=aarch64", f"-mcpu={cpu}", "-iterations=200", str(f)],
                                 capture_output=True, text=True)
            m = re.search(r"Total Cycles:\s+(\d+)", res.stdout)
            if res.returncode != 0 or not m:
                die(f"llvm-mca failed on {f}:\n{res.stderr[-2000:]}")
            self.memo[key] = int(m.group(1)) / 200.0
        return self.memo[key]


def is_branch(i: Insn) -> bool:
    return i.mnemonic in ("b", "cbz", "cbnz", "tbz", "tbnz") or i.mnemonic.startswith("b.")


@dataclass
class Loop:
    lo: int
    hi: int  # address of the back-edge branch
    insns: list[Insn]
    iters: float = 0.0
    cycles: dict[str, float] = field(default_factory=dict)  # per iteration

    @property
    def bits(self) -> int:
        """Binary MACs per iteration: every XOR-ed bit goes through exactly one CNT lane."""
        n = 0
        for i in self.insns:
            if i.mnemonic == "cnt":
                n += 128 if ".16b" in i.text else 64
        return n

    @property
    def fmas(self) -> int:
        """Float MACs per iteration: 4 per fmla .4s; in a table-lookup WeightBin loop (one that
        loads q registers by register offset: csrc/wbconv/lut_neon.cc) 16 per fadd .4s, each
        adding a looked-up sum of 4 inputs to 4 pixel lanes."""
        n = sum(4 for i in self.insns if i.mnemonic == "fmla" and ".4s" in i.text)
        if any(re.match(r"ldr\s+q\d+, \[x\d+, x\d+\]", i.text) for i in self.insns):
            n += sum(16 for i in self.insns if i.mnemonic == "fadd" and ".4s" in i.text)
        return n


def enclosing_loop(dis: Disasm, start: int) -> tuple[int, int] | None:
    """The innermost loop containing `start`: the first backward branch after it whose target is
    at or before it (compiled loops are laid out head .. back-edge). None when that loop holds
    another loop (outer loops are modelled block by block) or a call."""
    flo, fhi = dis.function_range(start)
    for ins in dis.insns(start, min(fhi, start + 4 * 400)):
        if ins.mnemonic in ("bl", "blr", "ret", "br"):
            return None
        if is_branch(ins) and ins.target is not None and flo <= ins.target <= start:
            lo, hi = ins.target, ins.addr
            body = dis.insns(lo, hi)
            if any(is_branch(i) and i.target is not None and lo <= i.target < i.addr for i in body):
                return None
            return lo, hi
    return None


@dataclass
class Model:
    insns: float
    cycles: dict[str, float]
    loops: list[Loop]
    coverage: float


def model(dis: Disasm, mca: Mca, blocks: dict[tuple[int, int], float], insns_total: float,
          coverage: float = 0.995) -> Model:
    """Cycles of one call: hot loops modelled whole (iterations x llvm-mca cycles per iteration),
    other hot blocks on their own, the cold rest at the modelled blocks' mean IPC."""
    hot = sorted(blocks.items(), key=lambda kv: -kv[0][1] * kv[1])
    loops: list[Loop] = []
    covered: set[tuple[int, int]] = set()
    cycles = {c: 0.0 for c in CPUS}
    modelled_insns = 0.0
    for (va, n), ex in hot:
        if modelled_insns >= coverage * insns_total:
            break
        if (va, n) in covered:
            continue
        rng = enclosing_loop(dis, va)
        if rng and not any(lp.lo == rng[0] and lp.hi == rng[1] for lp in loops):
            lo, hi = rng
            body = dis.insns(lo, hi + 4)
            if not any(i.mnemonic in ("bl", "blr") for i in body):
                lp = Loop(lo, hi, body)
                # Iterations: executions of the blocks that end at the back-edge branch (qemu may
                # start one a few instructions before the loop head, e.g. at a counter setup).
                ending = [(k, e) for k, e in blocks.items() if k[0] + 4 * k[1] - 4 == hi]
                lp.iters = sum(e for _, e in ending)
                inside = [(k, e) for k, e in blocks.items() if lo <= k[0] + 4 * k[1] - 4 <= hi and k[0] <= hi]
                for k, e in inside:
                    if k not in covered:
                        covered.add(k)
                        modelled_insns += k[1] * e
                for c in CPUS:
                    lp.cycles[c] = mca.cycles_per_iter(body, c)
                    cycles[c] += lp.iters * lp.cycles[c]
                loops.append(lp)
                continue
        ins = dis.insns(va, va + 4 * n)
        covered.add((va, n))
        modelled_insns += n * ex
        for c in CPUS:
            cycles[c] += ex * mca.cycles_per_iter(ins, c)
    rest = max(0.0, insns_total - modelled_insns)
    for c in CPUS:
        ipc = modelled_insns / cycles[c] if cycles[c] else 1.0
        cycles[c] += rest / ipc
    loops.sort(key=lambda lp: -lp.iters * len(lp.insns))
    return Model(insns_total, cycles, loops, modelled_insns / insns_total if insns_total else 1.0)


# ---------------------------------------------------------------------------------------------


def peak_model(run: Runner, dis: Disasm, mca: Mca, which: str) -> tuple[Loop, dict[str, float]]:
    """The peak loop's per-cycle rate under each model (MACs per modelled cycle)."""
    insns, blocks = run.per_call(["peak", which, "100"], ["peak", which, "1100"], 11)
    m = model(dis, mca, blocks, insns)
    lp = m.loops[0]
    work = lp.bits if which == "binary" else lp.fmas
    return lp, {c: work / lp.cycles[c] for c in CPUS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default="build/arm-bench")
    ap.add_argument("--no-build", action="store_true", help="use the existing BUILD_DIR/arm_bench")
    ap.add_argument("--plugin-src", help="directory holding insncount.c (default ../shared/tools/qemu-insncount)")
    ap.add_argument("--layers", default="all", help="comma-separated layer names, 'all' or 'none'")
    ap.add_argument("--modes", default="float,bits",
                    help="float, bits (FullBinConv output), fp32 (float conv), wbin (WeightBinConv): "
                         "binary modes are judged against the binary peak, fp32/wbin against the FMA peak")
    ap.add_argument("--models", help="directory of .hbn files: whole-network counts (batch 1, one thread)")
    ap.add_argument("--reps", type=int, default=3, help="R: calls in the long run (the short run makes 1)")
    ap.add_argument("--qemu-cpu", default="neoverse-n1")
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--loops", action="store_true", help="print each hot loop's assembly")
    a = ap.parse_args()
    os.chdir(REPO)
    build_dir = Path(a.build_dir)
    if not a.no_build:
        subprocess.run(["bash", "benchmarks/arm/build.sh", str(build_dir)], check=True, stdout=subprocess.DEVNULL)
    binary = build_dir / "arm_bench"
    if not binary.is_file():
        die(f"{binary} missing (run benchmarks/arm/build.sh {build_dir})")
    work = Path(tempfile.mkdtemp(prefix="hbn_arm_"))
    plugin = build_plugin(find_plugin_src(a.plugin_src), work)
    run, dis, mca = Runner(binary, plugin, work, a.qemu_cpu), Disasm(binary), Mca(work)
    results: dict = {"layers": [], "models": [], "peaks": {}}

    bloop, bpeak = peak_model(run, dis, mca, "binary")
    floop, fpeak = peak_model(run, dis, mca, "fma")
    results["peaks"] = {"binary_macs_per_cycle": bpeak, "fma_macs_per_cycle": fpeak,
                        "binary_loop_insns": len(bloop.insns), "fma_loop_insns": len(floop.insns)}
    print("NEON peaks per modelled cycle (llvm-mca): binary " +
          ", ".join(f"{c} {bpeak[c]:.1f}" for c in CPUS) + " MACs; fp32 FMA " +
          ", ".join(f"{c} {fpeak[c]:.2f}" for c in CPUS) + " MACs")
    if a.loops:
        for name, lp in (("binary peak", bloop), ("fma peak", floop)):
            print(f"--- {name} loop ({len(lp.insns)} insns)\n" + "\n".join("   " + i.text for i in lp.insns))

    layers = LAYERS if a.layers == "all" else [] if a.layers == "none" else [
        next((l for l in LAYERS + EXTRA_LAYERS if l.name == n), None) or die(f"unknown layer {n}") for n in a.layers.split(",")]
    hdr = (f"{'layer':22s} {'out':5s} {'insns/call':>11s} {'N1 cyc':>10s} {'(loops)':>10s} {'A55 cyc':>10s} "
           f"{'MAC/c N1':>8s} {'%pk N1':>6s} {'MAC/c A55':>9s} {'%pk A55':>7s} | inner loop: insns N1% A55%")
    if layers:
        print(hdr)
    for l in layers:
        for mode in a.modes.split(","):
            args = ["layer", str(l.c), str(l.oc), str(l.hw), str(l.hw), str(l.k), str(l.stride), str(l.pad), mode]
            insns, blocks = run.per_call(args + ["1"], args + [str(a.reps)], a.reps)
            m = model(dis, mca, blocks, insns)
            binary = mode in ("float", "bits")
            peak = bpeak if binary else fpeak
            work = (lambda x: x.bits) if binary else (lambda x: x.fmas)
            lp = next((x for x in m.loops if work(x)), None)
            row = {"layer": l.name, "mode": mode, "macs": l.macs, "insns": insns, "coverage": m.coverage,
                   "cycles": m.cycles, "peak": "binary" if binary else "fma",
                   "macs_per_cycle": {c: l.macs / m.cycles[c] for c in CPUS},
                   "pct_peak": {c: 100 * l.macs / m.cycles[c] / peak[c] for c in CPUS}}
            # The kernel loops alone (what a "loops only" figure compares with).
            row["binary_loop_cycles"] = {c: sum(x.iters * x.cycles[c] for x in m.loops if work(x)) for c in CPUS}
            if lp:
                row["inner_loop"] = {"insns": len(lp.insns), "bits": lp.bits, "fmas": lp.fmas, "iters": lp.iters,
                                     "symbol": dis.symbol(lp.lo), "cycles_per_iter": lp.cycles,
                                     "pct_peak": {c: 100 * work(lp) / lp.cycles[c] / peak[c] for c in CPUS}}
            results["layers"].append(row)
            il = row.get("inner_loop")
            print(f"{l.name:22s} {mode:5s} {insns:11,.0f} {m.cycles['neoverse-n1']:10,.0f} "
                  f"{row['binary_loop_cycles']['neoverse-n1']:10,.0f} "
                  f"{m.cycles['cortex-a55']:10,.0f} {row['macs_per_cycle']['neoverse-n1']:8.1f} "
                  f"{row['pct_peak']['neoverse-n1']:5.1f}% {row['macs_per_cycle']['cortex-a55']:9.1f} "
                  f"{row['pct_peak']['cortex-a55']:6.1f}% | "
                  + (f"{il['insns']:3d} {il['pct_peak']['neoverse-n1']:5.1f}% {il['pct_peak']['cortex-a55']:5.1f}%"
                     if il else "-"), flush=True)
            if a.loops and lp:
                print("\n".join("   " + i.text for i in lp.insns))

    if a.models:
        files = sorted(Path(a.models).glob("*.hbn"))
        if not files:
            die(f"no .hbn files in {a.models}")
        print(f"{'model':28s} {'insns/run':>14s} {'N1 cyc':>13s} {'A55 cyc':>13s}")
        for f in files:
            insns, blocks = run.per_call(["model", str(f.resolve()), "1"], ["model", str(f.resolve()), "2"], 2)
            m = model(dis, mca, blocks, insns)
            results["models"].append({"model": f.stem, "insns": insns, "cycles": m.cycles, "coverage": m.coverage})
            print(f"{f.stem:28s} {insns:14,.0f} {m.cycles['neoverse-n1']:13,.0f} {m.cycles['cortex-a55']:13,.0f}",
                  flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
