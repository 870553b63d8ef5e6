"""Turns BenchResults into a Markdown report, a JSON dump and PNG plots."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from hbn_engine.bench.paper import PAPER_FLOP_SPEEDUPS, XNOR_NET_SPEEDUP
from hbn_engine.bench.suite import BenchResults

# End-to-end targets (issue 5): the paper's FLOP-model speedups for FBin and Hybrid.
TARGET_VARIANTS = ("fbin", "hybrid")
FPREC_PARITY_TARGET = 1.25
THREAD_SCALING_TARGET = 1.7
XNOR_TARGET = 20.0
# 8-bit edges (issue 14, 1 thread, batch 1): FBin with int8 edges at the paper's FLOP-model
# figures over the faster fp32 runtime, and every FBin / Hybrid with int8 edges >= 3x ONNX
# Runtime's own int8 build of the FPrec network.
INT8_FP32_TARGETS = {"alexnet": PAPER_FLOP_SPEEDUPS["alexnet"]["fbin"],
                     "resnet18": PAPER_FLOP_SPEEDUPS["resnet18"]["fbin"]}
INT8_VS_ORT_INT8_TARGET = 3.0


def best_float(res: BenchResults, arch: str, batch: int, threads: int) -> Optional[tuple[str, float]]:
    """The faster fp32 baseline runtime on the FPrec network, as (runtime, seconds)."""
    cands = [(r.runtime, r.median_s) for r in res.find(section="model", model=arch, variant="fprec",
                                                        batch=batch, threads=threads)
             if r.runtime != "hbn"]
    return min(cands, key=lambda c: c[1]) if cands else None


def machine_flop_speedup(res: BenchResults, arch: str, variant: str) -> Optional[float]:
    """The paper's FLOP model with XNOR-Net's 58x replaced by this machine's measured binary/float
    peak ratio: the speedup of an engine with float and WeightBin layers as fast as the fp32
    baseline, FullBin layers exactly at the hardware ratio and free glue. (WeightBin layers count
    as float MACs; the engine's table-lookup kernel beats that on AVX-512.)"""
    peak = res.machine.get("peak")
    counts = res.flop_counts.get(arch, {})
    if not peak or variant not in counts or "fprec" not in counts:
        return None
    fp = counts["fprec"]["float"] + counts["fprec"]["fbin"]
    c = counts[variant]
    return fp / (c["float"] + c["fbin"] / peak["ratio"])


def speedup_rows(res: BenchResults) -> list[dict]:
    out = []
    for r in res.find(section="model", runtime="hbn"):
        base = best_float(res, r.model, r.batch, r.threads)
        if base is None:
            continue
        paper = PAPER_FLOP_SPEEDUPS.get(r.model, {}).get(r.variant)
        out.append({
            "model": r.model, "variant": r.variant, "batch": r.batch, "threads": r.threads,
            "hbn_ms": r.median_s * 1e3, "baseline": base[0], "baseline_ms": base[1] * 1e3,
            "speedup": base[1] / r.median_s, "paper_flop_speedup": paper,
            "machine_flop_speedup": machine_flop_speedup(res, r.model, r.variant),
        })
    return out


def xnor_summary(res: BenchResults) -> Optional[dict]:
    rows = {(r.variant, r.runtime): r.median_s for r in res.find(section="xnor")}
    if ("fbin", "hbn") not in rows:
        return None
    floats = {k[1]: v for k, v in rows.items() if k[0] == "fprec" and k[1] != "hbn"}
    best_rt, best_s = min(floats.items(), key=lambda kv: kv[1])
    return {
        "fbin_us": rows[("fbin", "hbn")] * 1e6,
        "float_us": {k: v * 1e6 for k, v in floats.items()},
        "hbn_float_us": rows.get(("fprec", "hbn"), float("nan")) * 1e6,
        "best_float": best_rt,
        "speedup_vs_best_float": best_s / rows[("fbin", "hbn")],
        "speedup_vs_hbn_float": rows.get(("fprec", "hbn"), float("nan")) / rows[("fbin", "hbn")],
    }


def _fmt(x: Optional[float], spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def render_markdown(res: BenchResults, plots: list[str]) -> str:
    m = res.machine
    lines = ["# hbn_engine benchmark report", ""]
    lines += ["## Machine", "",
              f"- CPU: {m.get('cpu')} ({m.get('cores')} logical cores)",
              f"- kernel path: {m.get('isa')} (supported: {', '.join(m.get('supported_isas', []))})",
              f"- threads measured: {', '.join(map(str, res.config.threads))}; batches: "
              f"{', '.join(map(str, res.config.batches))}",
              f"- torch {m.get('torch', '-')}, onnxruntime {m.get('onnxruntime', '-')}, "
              f"hbn_engine {m.get('hbn_engine')}"]
    peak = m.get("peak")
    if peak:
        lines += [f"- physical per-core peak: {peak['binary_macs_per_s'] / 1e9:.1f} G binary MACs/s "
                  f"(xor+popcount+add) vs {peak['fma_macs_per_s'] / 1e9:.1f} G fp32 MACs/s (FMA): "
                  f"**{peak['ratio']:.1f}x** is the most any binary kernel can gain per MAC here "
                  f"(XNOR-Net claims {XNOR_NET_SPEEDUP:.0f}x)."]
        if peak.get("int8_macs_per_s"):
            lines += [f"- 8-bit dot-product peak (u8 x s8, this path's qgemm row): "
                      f"{peak['int8_macs_per_s'] / 1e9:.1f} G MACs/s per core."]
    lines += ["", "All figures are medians of repeated runs measured in this one run; speedups are "
              "ratios against the faster of PyTorch and ONNX Runtime fp32 running the FPrec network "
              "of the same architecture, same batch and thread count.", ""]

    xs = xnor_summary(res)
    if xs:
        lines += ["## XNOR-Net setting: 3x3 conv, 256 -> 256 channels, 14x14, batch 1, 1 thread", "",
                  "| runtime | layer | median (us) |", "| --- | --- | --- |",
                  f"| hbn_engine | FullBinConv | {xs['fbin_us']:.1f} |",
                  f"| hbn_engine | float conv | {xs['hbn_float_us']:.1f} |"]
        lines += [f"| {k} | float conv | {v:.1f} |" for k, v in xs["float_us"].items()]
        lines += ["", f"FullBinConv speedup vs the faster float runtime ({xs['best_float']}): "
                      f"**{xs['speedup_vs_best_float']:.1f}x** (target >= {XNOR_TARGET:.0f}x; "
                      f"XNOR-Net claim {XNOR_NET_SPEEDUP:.0f}x"
                      + (f"; hardware ceiling {peak['ratio']:.1f}x" if peak else "") + "); "
                      f"vs the engine's own float path: {xs['speedup_vs_hbn_float']:.1f}x.", ""]

    sp = speedup_rows(res)
    if sp:
        lines += ["## End to end", "",
                  "The paper's FLOP model counts a FullBin MAC as 1/58 of a float MAC. The column "
                  "after it uses this machine's measured binary/float peak ratio instead: the "
                  "speedup of an engine whose FullBin layers run at the hardware ratio and whose "
                  "other layers run as fast as the fp32 baseline. It counts WeightBin layers as "
                  "float MACs; on AVX-512 the engine's table-lookup WeightBin kernel runs about "
                  "2x faster than fp32, so WBin and Hybrid rows can beat that column.", "",
                  "| model | variant | batch | threads | hbn (ms) | best fp32 (ms) | speedup | "
                  "paper FLOP model (58x) | FLOP model at this CPU's ratio | target met |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for s in sp:
            if s["variant"].endswith("_int8"):
                continue  # their own section below
            target = s["paper_flop_speedup"] if s["variant"] in TARGET_VARIANTS else None
            if s["variant"] == "fprec":
                met = "yes" if s["speedup"] >= 1 / FPREC_PARITY_TARGET else "no"
                met += f" (>= {1 / FPREC_PARITY_TARGET:.2f}x)"
            elif target is not None:
                met = "yes" if s["speedup"] >= target else "no"
            else:
                met = "-"
            lines.append(f"| {s['model']} | {s['variant']} | {s['batch']} | {s['threads']} | "
                         f"{s['hbn_ms']:.2f} | {s['baseline_ms']:.2f} ({s['baseline']}) | "
                         f"{s['speedup']:.2f}x | {_fmt(s['paper_flop_speedup'], '.1f')}x | "
                         f"{_fmt(s['machine_flop_speedup'], '.1f')}x | {met} |")
        lines.append("")

    scaling = thread_scaling(res)
    if scaling:
        lines += ["## Thread scaling (engine, batch as measured)", "",
                  f"| model | variant | batch | 1 thread (ms) | {max(res.config.threads)} threads (ms) "
                  f"| scaling | target >= {THREAD_SCALING_TARGET}x |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for s in scaling:
            lines.append(f"| {s['model']} | {s['variant']} | {s['batch']} | {s['t1_ms']:.2f} | "
                         f"{s['tn_ms']:.2f} | {s['scaling']:.2f}x | "
                         f"{'yes' if s['scaling'] >= THREAD_SCALING_TARGET else 'no'} |")
        lines.append("")

    lines += int8_section(res)
    lines += plain_section(res)

    layers = res.find(section="layer", runtime="hbn")
    if layers:
        lines += ["## Per-layer breakdown (batch 1, 1 thread)", "",
                  "Each layer alone in the engine (its own kind) vs the same geometry as a PyTorch "
                  "fp32 conv / linear. A standalone engine layer also pays the NCHW <-> NHWC "
                  "conversions and, for a FullBin layer, binarizing its float input; inside a "
                  "network those are paid once per model or fused into the previous layer.", "",
                  "| model | variant | layer | kind | hbn (ms) | torch fp32 (ms) | speedup |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in layers:
            t = res.find(section="layer", runtime="torch", model=r.model, variant=r.variant, layer=r.layer)
            tt = t[0].median_s if t else None
            lines.append(f"| {r.model} | {r.variant} | {r.layer} | {r.layer_kind} | "
                         f"{r.median_s * 1e3:.3f} | {_fmt(tt and tt * 1e3, '.3f')} | "
                         f"{_fmt(tt and tt / r.median_s)}x |")
        lines.append("")
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def int8_ceiling(res: BenchResults, arch: str, variant: str) -> Optional[float]:
    """Seconds per image of an engine whose non-FullBin MACs (float, WeightBin, 8-bit) all run
    at the measured 8-bit dot-product peak and whose FullBin MACs run at the binary peak, with
    free glue. ONNX Runtime int8 over this is the most a "vs ORT int8" ratio can reach on this
    core unless the non-FullBin layers find arithmetic cheaper per MAC than the 8-bit dot
    product (the engine's WeightBin kernels run below it)."""
    peak = res.machine.get("peak") or {}
    counts = res.flop_counts.get(arch, {}).get(variant)
    if not counts or not peak.get("int8_macs_per_s") or not peak.get("binary_macs_per_s"):
        return None
    return counts["float"] / peak["int8_macs_per_s"] + counts["fbin"] / peak["binary_macs_per_s"]


def int8_rows(res: BenchResults) -> list[dict]:
    """Per FBin / Hybrid model with 8-bit edges: the exact (fp32 edges) time beside it, the
    faster fp32 runtime and ONNX Runtime int8 on the FPrec network, and the ratios."""
    out = []
    for r in res.find(section="model", runtime="hbn"):
        if not r.variant.endswith("_int8"):
            continue
        base_variant = r.variant[:-len("_int8")]
        kw = dict(section="model", model=r.model, batch=r.batch, threads=r.threads)
        # hybrid_wbin_int8: Hybrid with its WeightBin convs on 8-bit input too; exact = Hybrid
        exact_variant = "hybrid" if base_variant == "hybrid_wbin" else base_variant
        exact = res.median(variant=exact_variant, runtime="hbn", **kw)
        fp32 = best_float(res, r.model, r.batch, r.threads)
        ort8 = res.median(variant="fprec_int8", runtime="onnxruntime", **kw)
        one = r.batch == 1 and r.threads == 1
        t_fp32 = INT8_FP32_TARGETS.get(r.model) if one and base_variant == "fbin" else None
        sp_fp32 = fp32[1] / r.median_s if fp32 else None
        sp_ort8 = ort8 / r.median_s if ort8 else None
        ceiling = int8_ceiling(res, r.model, exact_variant) if one and ort8 else None
        out.append({
            "model": r.model, "variant": base_variant, "batch": r.batch, "threads": r.threads,
            "int8_ms": r.median_s * 1e3, "exact_ms": exact and exact * 1e3,
            "baseline": fp32 and fp32[0], "baseline_ms": fp32 and fp32[1] * 1e3,
            "ort_int8_ms": ort8 and ort8 * 1e3,
            "speedup_fp32": sp_fp32, "speedup_ort_int8": sp_ort8,
            "ort_int8_vs_fp32": fp32[1] / ort8 if fp32 and ort8 else None,
            "ceiling_ort_int8": ort8 / ceiling if ceiling else None,
            "target_fp32": t_fp32,
            "met_fp32": None if t_fp32 is None or sp_fp32 is None else sp_fp32 >= t_fp32,
            "met_ort_int8": (None if not one or sp_ort8 is None
                             else sp_ort8 >= INT8_VS_ORT_INT8_TARGET),
        })
    return out


def int8_section(res: BenchResults) -> list[str]:
    rows = int8_rows(res)
    if not rows:
        return []
    yn = {True: "yes", False: "no", None: "-"}
    lines = ["## FBin / Hybrid + int8 edges", "",
             "The same FBin and Hybrid networks exported with `edges=\"int8\"`: the layers that "
             "stay float (first conv, last linear) run as 8-bit convolutions (conv_q8: uint8 "
             "activations x int8 per-channel weights, int32 sums), and an edge WeightBin "
             "convolution (SqueezeNet's conv10) runs on 8-bit input (conv_wbin_q8: its exact "
             "+-1 x alpha weights on the int8 GEMM), calibrated (min / max) on "
             f"{res.config.calibration_images} random N(0, 1) images like the timed input. "
             "ONNX Runtime int8 is the FPrec network through ONNX Runtime's own pipeline: "
             "quant_pre_process (BatchNorm folded into the convs), then quantize_static, QDQ, "
             "per-channel int8 weights, uint8 activations, min / max calibration on the same "
             "images. Targets (1 thread, batch 1): AlexNet FBin >= "
             f"{INT8_FP32_TARGETS['alexnet']:.1f}x and ResNet-18 FBin >= "
             f"{INT8_FP32_TARGETS['resnet18']:.1f}x the faster fp32 runtime; every row >= "
             f"{INT8_VS_ORT_INT8_TARGET:.0f}x ONNX Runtime int8. \"hybrid + int8 WBin\": "
             "Hybrid with int8 edges and its WeightBin convolutions on 8-bit input too "
             "(`wbin=\"int8\"`: conv_wbin_q8, the exact +-1 x alpha weights on the int8 GEMM, "
             "the input calibrated like the edges); its exact column is the Hybrid row. "
             "\"ceiling vs ORT int8\" (1 thread, batch 1): ONNX Runtime int8's time over that of "
             "an engine running every non-FullBin MAC (float, WeightBin or 8-bit) at this core's "
             "measured 8-bit dot-product peak and every FullBin MAC at its binary peak, with "
             "nothing else costing time; a row whose ceiling is below the target cannot meet it "
             "on this CPU unless those layers find arithmetic cheaper per MAC than the 8-bit "
             "dot product.", "",
             "| model | variant | batch | threads | exact (ms) | int8 edges (ms) | best fp32 (ms) "
             "| ORT int8 FPrec (ms) | speedup vs fp32 | target | speedup vs ORT int8 | "
             f"target >= {INT8_VS_ORT_INT8_TARGET:.0f}x | ceiling vs ORT int8 | ORT int8 vs fp32 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in rows:
        tgt = (f">= {s['target_fp32']:.1f}x: {yn[s['met_fp32']]}" if s["target_fp32"] else "-")
        shown = "hybrid + int8 WBin" if s["variant"] == "hybrid_wbin" else s["variant"]
        lines.append(
            f"| {s['model']} | {shown} | {s['batch']} | {s['threads']} | "
            f"{_fmt(s['exact_ms'])} | {s['int8_ms']:.2f} | {_fmt(s['baseline_ms'])} "
            f"({s['baseline'] or '-'}) | {_fmt(s['ort_int8_ms'])} | {_fmt(s['speedup_fp32'])}x | "
            f"{tgt} | {_fmt(s['speedup_ort_int8'])}x | {yn[s['met_ort_int8']]} | "
            f"{_fmt(s['ceiling_ort_int8'])}{'x' if s['ceiling_ort_int8'] else ''} | "
            f"{_fmt(s['ort_int8_vs_fp32'])}x |")
    notes = [f"- {arch}: no ONNX Runtime int8 figure, its quantization failed ({err})"
             for arch, err in res.int8_errors.items()]
    return lines + [""] + (notes + [""] if notes else [])


def plain_rows(res: BenchResults) -> list[dict]:
    """Per network written without hbn_engine.nn: engine vs PyTorch / ONNX Runtime fp32."""
    out = []
    for r in res.find(section="plain", runtime="hbn"):
        base = {b.runtime: b.median_s for b in res.find(section="plain", model=r.model,
                                                         threads=r.threads, batch=r.batch)
                if b.runtime != "hbn"}
        best = min(base.items(), key=lambda kv: kv[1]) if base else None
        out.append({"model": r.model, "threads": r.threads, "batch": r.batch,
                    "hbn_ms": r.median_s * 1e3,
                    "torch_ms": base.get("torch") and base["torch"] * 1e3,
                    "onnxruntime_ms": base.get("onnxruntime") and base["onnxruntime"] * 1e3,
                    "best": best and best[0],
                    "speedup": best and best[1] / r.median_s,
                    **res.plain_info.get(r.model, {})})
    return out


def plain_section(res: BenchResults) -> list[str]:
    rows = plain_rows(res)
    if not rows:
        return []
    lines = ["## Models written without hbn_engine.nn", "",
             "Binary networks built from plain torch modules the way public BNN code writes them "
             "(hbn_engine/bench/plain_models.py: Bi-Real style ResNet with ApproxSign and "
             "weights binarized in forward, ReActNet style with RSign, XNOR-Net NIN with the "
             "sign in an autograd.Function, a ResNet with {0, 1} activations torch.sign(relu(bn(x))) "
             "on the {0, 1} FullBin kernel), exported as written by the front end. PyTorch and "
             "ONNX Runtime run the same model in fp32 as written (PyTorch re-binarizes the "
             "weights in every forward). Batch 1, medians of interleaved rounds.", "",
             "| network | input | layers | threads | hbn (ms) | PyTorch fp32 (ms) | "
             "ONNX Runtime fp32 (ms) | speedup vs the faster |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    notes = []
    for s in rows:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(s.get("kinds", {}).items()))
        shape = "x".join(map(str, s.get("input", []))) or "-"
        ort = _fmt(s["onnxruntime_ms"], ".2f") if s["onnxruntime_ms"] is not None else "-"
        lines.append(f"| {s['model']} | {shape} | {kinds or '-'} | {s['threads']} | "
                     f"{s['hbn_ms']:.2f} | {_fmt(s['torch_ms'], '.2f')} | {ort} | "
                     + (f"{s['speedup']:.1f}x ({s['best']}) |" if s["speedup"] else "- |"))
        if s.get("onnx_error"):
            notes.append(f"- {s['model']}: no ONNX Runtime figure, the ONNX export failed "
                         f"({s['onnx_error']})")
    return lines + [""] + (notes + [""] if notes else [])


def thread_scaling(res: BenchResults) -> list[dict]:
    if len(res.config.threads) < 2:
        return []
    lo, hi = min(res.config.threads), max(res.config.threads)
    out = []
    for r in res.find(section="model", runtime="hbn", threads=lo):
        other = res.median(section="model", runtime="hbn", model=r.model, variant=r.variant,
                           batch=r.batch, threads=hi)
        if other:
            out.append({"model": r.model, "variant": r.variant, "batch": r.batch,
                        "t1_ms": r.median_s * 1e3, "tn_ms": other * 1e3, "scaling": r.median_s / other})
    return out


def make_plots(res: BenchResults, out_dir: Path) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    files = []
    batch, threads = min(res.config.batches), min(res.config.threads)
    archs = [a for a in res.config.models if res.find(section="model", model=a)]
    if archs:
        series = [("hbn", v) for v in res.config.variants] + [(b, "fprec") for b in res.config.baselines]
        fig, ax = plt.subplots(figsize=(10, 4.5))
        width = 0.8 / len(series)
        for i, (rt, v) in enumerate(series):
            ys = [(res.median(section="model", model=a, variant=v, runtime=rt, batch=batch,
                              threads=threads) or 0) * 1e3 for a in archs]
            ax.bar([j + i * width for j in range(len(archs))], ys, width,
                   label=f"hbn {v}" if rt == "hbn" else f"{rt} fp32")
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(archs))], archs)
        ax.set_ylabel("latency (ms, median)")
        ax.set_yscale("log")
        ax.set_title(f"Latency per model and variant (batch {batch}, {threads} thread)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "latency.png", dpi=110)
        plt.close(fig)
        files.append("latency.png")
    colors = {"fprec": "tab:gray", "wbin": "tab:blue", "fbin": "tab:red"}
    for arch in res.config.models:
        rows = res.find(section="layer", runtime="hbn", model=arch)
        if not rows:
            continue
        names, sps, cs = [], [], []
        for r in rows:
            t = res.median(section="layer", runtime="torch", model=arch, variant=r.variant, layer=r.layer)
            names.append(r.layer)
            sps.append(t / r.median_s if t else 0)
            cs.append(colors.get(r.layer_kind, "tab:green"))
        fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names)), 4))
        ax.bar(range(len(names)), sps, color=cs)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("speedup vs torch fp32 layer")
        ax.set_title(f"{arch}: per-layer speedup (red fbin, blue wbin, gray fprec)")
        fig.tight_layout()
        fname = f"layers_{arch}.png"
        fig.savefig(out_dir / fname, dpi=110)
        plt.close(fig)
        files.append(fname)
    return files


def write_report(res: BenchResults, out_dir: str | os.PathLike) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = make_plots(res, out)
    (out / "results.json").write_text(json.dumps(res.to_dict(), indent=1))
    path = out / "report.md"
    path.write_text(render_markdown(res, plots))
    return path
