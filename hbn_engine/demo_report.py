"""Tables of the demo (hbn_engine.demo): one run, and the summary over training seeds."""
from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, Optional

__all__ = ["LABELS", "format_run", "format_summary", "summarize"]

# What each variant is, in the words of the paper (the first layer is always float).
LABELS = {
    "fprec": "FPrec: float weights and inputs",
    "wbin": "WBin (BWN): binary weights, float inputs",
    "fbin": "FBin (XNOR): binary weights and inputs; conv1 and classifier fc8 float",
    "hybrid": "Hybrid (Algorithm 1): FBin with the picked FullBin layers' inputs float",
    "budget": "Budget (MixBin-style): FBin, float inputs within a FLOP budget",
    "priority": "Priority (layer-wise): FBin, shallowest candidates' inputs float",
}
UNIFORM = ("fprec", "wbin", "fbin")


def _wbin_layers(entry: Mapping[str, Any], fbin_layers: Mapping[str, str]) -> list[str]:
    """Layers a hybrid turned from FullBin to WeightBin relative to the FBin model."""
    return [n for n, k in entry["layers"].items() if k == "wbin" and fbin_layers.get(n) == "fbin"]


def _recovered(acc: float, fbin: float, wbin: float) -> Optional[float]:
    gap = wbin - fbin
    return (acc - fbin) / gap if gap > 0 else None


def _sd(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _engine_ok(entry: Mapping[str, Any]) -> Optional[bool]:
    eng = entry.get("engine")
    if not eng:
        return None
    return (eng.get("status") == "ok" and eng["mismatches"] == 0
            and eng["accuracy"] == entry["accuracy"])


def _int8_acc(entry: Mapping[str, Any]) -> Optional[float]:
    """Engine top-1 of the variant exported with 8-bit edges, when measured."""
    i8 = (entry.get("engine") or {}).get("int8") or {}
    return i8.get("accuracy") if i8.get("status") == "ok" else None


def _int8_cell(fp32: Sequence[Optional[float]], int8: Sequence[Optional[float]]) -> str:
    if not int8 or any(v is None for v in int8) or any(v is None for v in fp32):
        return "n/a"
    diff = [(a - b) * 100 for a, b in zip(int8, fp32)]
    m = statistics.fmean(int8) * 100
    return (f"{m:.2f} +- {_sd(int8) * 100:.2f}% ({statistics.fmean(diff):+.2f} pts; worst "
            f"{min(diff):+.2f})")


def summarize(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean +- sd over seeds of every variant's test accuracy, gap recovered, FLOPs, memory and
    whether the engine agreed with PyTorch on every seed."""
    if not runs:
        raise ValueError("no runs to summarize")
    names = [v for v in runs[0]["variants"] if all(v in r["variants"] for r in runs)]
    variants: dict[str, Any] = {}
    for name in names:
        entries = [r["variants"][name] for r in runs]
        acc = [e["accuracy"] for e in entries]
        rec = [_recovered(e["accuracy"], r["variants"]["fbin"]["accuracy"],
                          r["variants"]["wbin"]["accuracy"]) for e, r in zip(entries, runs)]
        ok = [_engine_ok(e) for e in entries]
        variants[name] = {
            "label": LABELS.get(name, name),
            "accuracy": acc, "accuracy_mean": statistics.fmean(acc), "accuracy_sd": _sd(acc),
            "gap_recovered": rec,
            "equivalent_flops": [e["equivalent_flops"] for e in entries],
            "flops": [e["flops"] for e in entries],
            "compression": [e["compression"] for e in entries],
            "memory_bytes": [e["memory_bytes"] for e in entries],
            "engine_equal": None if any(o is None for o in ok) else all(ok),
            "engine_accuracy": [e.get("engine", {}).get("accuracy") for e in entries],
            "int8_accuracy": [_int8_acc(e) for e in entries],
            "weight_binary": [_wbin_layers(e, r["variants"]["fbin"]["layers"])
                              for e, r in zip(entries, runs)],
        }
    mean = {n: v["accuracy_mean"] for n, v in variants.items()}
    for name, v in variants.items():
        v["gap_recovered_of_means"] = _recovered(mean[name], mean["fbin"], mean["wbin"])
    first = runs[0]
    return {"dataset": first["dataset"], "seeds": [r["seed"] for r in runs],
            "split_seed": first.get("split_seed", 0), "train_size": first["train_size"],
            "test_size": first["test_size"], "epochs": first["epochs"], "width": first["width"],
            "ratio": first["ratio"], "budget_fraction": first.get("budget_fraction"),
            "priority_fraction": first.get("priority_fraction"),
            "gamma_rule": first.get("partition", {}).get("gamma_rule"),
            "variants": variants,
            "partitions": [{"seed": r["seed"], **{k: r["partition"][k] for k in (
                "weight_binary", "gamma", "band", "bands", "errors_scaled", "errors_literal")}}
                for r in runs],
            "runs": list(runs)}


def _pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{x * 100:.0f}%"


def _flops_cell(values: Sequence[float], fbin: float) -> str:
    lo, hi = min(values), max(values)
    if math.isclose(lo, hi, rel_tol=1e-9):
        return f"{lo / 1e6:.2f} ({lo / fbin:.2f}x)"
    return f"{lo / 1e6:.2f}-{hi / 1e6:.2f} ({lo / fbin:.2f}-{hi / fbin:.2f}x)"


def format_summary(summary: Mapping[str, Any]) -> str:
    """The Table-4-like markdown table over seeds, then what Algorithm 1 picked per seed."""
    v = summary["variants"]
    n = len(summary["seeds"])
    fbin_eq = statistics.fmean(v["fbin"]["equivalent_flops"])
    rows = [f"| Variant | Test acc. (mean +- sd, {n} seed{'s' if n > 1 else ''}) | "
            "FBin->WBin gap recovered | Mem (compression) | Equiv. FLOPs 1e6 (vs FBin) | "
            "Engine = PyTorch |",
            "|---|---|---|---|---|---|"]
    rows[0] += " Engine, int8 edges (vs fp32 edges) |"
    rows[1] += "---|"
    for name, e in v.items():
        rec = "" if name in UNIFORM else (
            f"{_pct(e['gap_recovered_of_means'])} (per seed "
            f"{', '.join(_pct(r) for r in e['gap_recovered'])})")
        mem = statistics.fmean(e["memory_bytes"]) / 1024
        eng = {None: "not checked", True: "yes, every seed", False: "NO"}[e["engine_equal"]]
        rows.append(f"| {e['label']} | {e['accuracy_mean'] * 100:.2f} +- "
                    f"{e['accuracy_sd'] * 100:.2f}% | {rec} | {mem:.0f} KiB "
                    f"({statistics.fmean(e['compression']):.1f}x) | "
                    f"{_flops_cell(e['equivalent_flops'], fbin_eq)} | {eng} | "
                    f"{_int8_cell(e['engine_accuracy'], e.get('int8_accuracy', []))} |")
    rows.append("")
    rows.append(f"{summary['dataset']}: {summary['train_size']} train / {summary['test_size']} "
                f"test images (split seed {summary['split_seed']}), {summary['epochs']} epochs, "
                f"width {summary['width']}, training seeds {summary['seeds']}; hybridization "
                f"ratio R = {summary['ratio']}, gamma rule {summary['gamma_rule'] or 'fixed'}.")
    for p in summary["partitions"]:
        band = p["band"]
        rows.append(f"- seed {p['seed']}: Algorithm 1 picked {', '.join(p['weight_binary']) or 'none'}"
                    f" (gamma {p['gamma']:.4g}; same pick for gamma in [{band['lo']:.4g}, "
                    f"{band['hi']:.4g}))")
    for name, e in v.items():
        if name in UNIFORM or name == "hybrid":
            continue
        rows.append(f"- {e['label']}: WeightBin at " + "; ".join(
            f"seed {s}: {', '.join(w) or 'none'}" for s, w in zip(summary["seeds"], e["weight_binary"])))
    return "\n".join(rows)


def format_run(results: Mapping[str, Any]) -> str:
    """One seed: accuracy, engine accuracy, memory, equivalent FLOPs per variant."""
    v = results["variants"]
    fbin_eq = v["fbin"]["equivalent_flops"]
    rows = ["| Variant | Test acc. | Engine acc. | Engine acc., int8 edges | Mem | "
            "Equiv. FLOPs (1e6) | vs FBin |",
            "|---|---|---|---|---|---|---|"]
    for name, e in v.items():
        eng = e.get("engine", {})
        eng_s = f"{eng['accuracy'] * 100:.2f}%" if eng.get("status") == "ok" else "n/a"
        i8 = _int8_acc(e)
        i8_s = f"{i8 * 100:.2f}%" if i8 is not None else "n/a"
        rows.append(f"| {LABELS.get(name, name)} | {e['accuracy'] * 100:.2f}% | {eng_s} | {i8_s} | "
                    f"{e['compression']:.1f}x | {e['equivalent_flops'] / 1e6:.2f} | "
                    f"{e['equivalent_flops'] / fbin_eq:.2f}x |")
    rows.append("")
    rows.append(f"{results['dataset']}: {results['train_size']} train / {results['test_size']} "
                f"test images, {results['epochs']} epochs, seed {results.get('seed', 0)}, "
                f"hybridization ratio R = {results['ratio']}.")
    fb, wb = v["fbin"]["accuracy"], v["wbin"]["accuracy"]
    for name, e in v.items():
        if name in UNIFORM:
            continue
        keep = _wbin_layers(e, v["fbin"]["layers"])
        rows.append(f"- {LABELS.get(name, name)}: WeightBin at {', '.join(keep) or 'none'}; "
                    f"FBin->WBin gap recovered: {_pct(_recovered(e['accuracy'], fb, wb))}")
    lat = results.get("partition_latency")
    if lat:
        rows.append(f"- Latency-aware Algorithm 1 (engine seconds instead of FLOPs) would pick: "
                    f"{', '.join(lat['weight_binary']) or 'none'} (not trained)")
    return "\n".join(rows)
