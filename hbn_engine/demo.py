"""End-to-end demo of the paper's pipeline on real data (needs torch and animal-shape-mnist).

For each training seed (3 by default):

1. Train a Sketch-A-Net-style network scaled to 28x28 silhouettes as FPrec, WBin and FBin.
2. Measure binarization errors on the trained FBin model, run Algorithm 1 (hbn_engine.partition)
   over its FullBin layers and plot the metric per layer and the gamma bands (the paper's
   Figure 2).
3. Train the chosen hybrid from scratch, as the paper does.
4. Export every trained model to .hbn and check that the engine's test-set predictions equal
   PyTorch's.

Then report per variant the test accuracy (mean +- sd over seeds), the share of the FBin -> WBin
gap recovered, memory and equivalent FLOPs (a Table-4-like table). The exit status is non-zero
if the engine disagreed with PyTorch on any model (or the check could not run).

Run ``python -m hbn_engine.demo --out demo_out`` (``--seeds 1`` for one seed, ``--quick`` for
a smoke run).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hbn_engine import partition as P
from hbn_engine.datasets import Dataset, load_dataset
from hbn_engine.demo_report import format_run, format_summary, summarize
from hbn_engine.nn import FullBinConv2d, FullBinLinear, WeightBinConv2d, WeightBinLinear

__all__ = ["NAMES", "STRATEGIES", "check_engine", "default_kinds", "engine_failures", "evaluate",
           "main", "mini_sketchanet", "predict", "run_demo", "run_seeds", "train"]

NAMES = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
KINDS = ("fprec", "wbin", "fbin")
VARIANTS = ("fprec", "wbin", "fbin", "hybrid")


def default_kinds(variant: str) -> dict[str, str]:
    """Per-layer kinds of the uniform variants, with the zoo's conventions: the first layer is
    always float; FBin (XNOR-Net) keeps the classifier float, WBin (BWN) binarizes its weights."""
    if variant == "fprec":
        return {n: "fprec" for n in NAMES}
    if variant in ("wbin", "fbin"):
        last = "wbin" if variant == "wbin" else "fprec"
        return {n: ("fprec" if i == 0 else last if i == len(NAMES) - 1 else variant)
                for i, n in enumerate(NAMES)}
    raise ValueError(f"unknown variant {variant!r}; expected fprec, wbin or fbin "
                     "(a hybrid is given as layers=)")


def _conv(name: str, kind: str, cin: int, cout: int, k: int, pad: int,
          act: nn.Module) -> list[tuple[str, nn.Module]]:
    # Blocks as in the paper and the zoo: Conv-BN-act (fprec), WeightBinConv (conv-BN-ReLU
    # inside), FullBinConv (BN-sign-conv-ReLU inside); no bias (BN provides the offset).
    if kind == "fprec":
        return [(name, nn.Conv2d(cin, cout, k, 1, pad, bias=False)),
                (f"{name}_bn", nn.BatchNorm2d(cout)), (f"{name}_act", act)]
    if kind == "wbin":
        return [(name, WeightBinConv2d(cin, cout, k, 1, pad, bias=False))]
    if kind == "fbin":
        return [(name, FullBinConv2d(cin, cout, k, 1, pad, bias=False))]
    raise ValueError(f"unknown kind {kind!r} for {name}; expected one of {KINDS}")


def _linear(name: str, kind: str, fin: int, fout: int, classifier: bool,
            act: nn.Module) -> list[tuple[str, nn.Module]]:
    if kind == "fprec":
        if classifier:
            return [(name, nn.Linear(fin, fout))]
        return [(name, nn.Linear(fin, fout, bias=False)), (f"{name}_bn", nn.BatchNorm1d(fout)),
                (f"{name}_act", act)]
    relu = None if classifier else "relu"
    if kind == "wbin":
        return [(name, WeightBinLinear(fin, fout, bias=classifier, bn=not classifier,
                                       activation=relu))]
    if kind == "fbin":
        return [(name, FullBinLinear(fin, fout, bias=classifier, activation=relu))]
    raise ValueError(f"unknown kind {kind!r} for {name}; expected one of {KINDS}")


def mini_sketchanet(variant: str = "fbin", num_classes: int = 10,
                    layers: Optional[Mapping[str, str]] = None,
                    input_size: Sequence[int] = (1, 28, 28), width: int = 32,
                    binrelu: bool = False) -> nn.Sequential:
    """Sketch-A-Net's layout (5 convs with a large first kernel, 3 poolings, 3 FCs) scaled to
    small images: channels width*(1, 2, 3, 3, 2), FCs 8*width.

    ``variant`` ("fprec", "wbin", "fbin") gives the default kinds (:func:`default_kinds`);
    ``layers`` overrides them per layer (e.g. a :func:`hbn_engine.partition.hybrid_assignment`). ``binrelu`` puts
    :class:`~hbn_engine.partition.BinReLU` after the float layers instead of ReLU (MixBin's
    option). The model carries ``hbn_layers`` and ``input_size`` like the zoo's models.
    """
    kinds = default_kinds(variant)
    if layers is not None:
        unknown = [n for n in layers if n not in kinds]
        if unknown:
            raise ValueError(f"unknown layer names {unknown}; valid: {NAMES}")
        bad = {n: k for n, k in layers.items() if k not in KINDS}
        if bad:
            raise ValueError(f"unknown kinds {bad}; expected one of {KINDS}")
        if layers.get("conv1", "fprec") != "fprec":
            raise ValueError("conv1 (the first layer) is always 'fprec'")
        kinds.update(layers)
    c, h, w = (int(v) for v in input_size)
    if min(h, w) < 8:
        raise ValueError(f"input_size must be at least 8x8 (three 2x2 poolings), got {h}x{w}")
    ch = [width, 2 * width, 3 * width, 3 * width, 2 * width]
    fc = 8 * width
    act = (lambda: P.BinReLU()) if binrelu else (lambda: nn.ReLU())  # noqa: E731
    k1 = 5 if min(h, w) >= 16 else 3
    mods: list[tuple[str, nn.Module]] = [
        *_conv("conv1", kinds["conv1"], c, ch[0], k1, k1 // 2, act()),
        ("pool1", nn.MaxPool2d(2)),
        *_conv("conv2", kinds["conv2"], ch[0], ch[1], 3, 1, act()),
        ("pool2", nn.MaxPool2d(2)),
        *_conv("conv3", kinds["conv3"], ch[1], ch[2], 3, 1, act()),
        *_conv("conv4", kinds["conv4"], ch[2], ch[3], 3, 1, act()),
        *_conv("conv5", kinds["conv5"], ch[3], ch[4], 3, 1, act()),
        ("pool5", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        *_linear("fc6", kinds["fc6"], ch[4] * (h // 8) * (w // 8), fc, False, act()),
        ("drop7", nn.Dropout(0.2)),
        *_linear("fc7", kinds["fc7"], fc, fc, False, act()),
        ("drop8", nn.Dropout(0.2)),
        *_linear("fc8", kinds["fc8"], fc, num_classes, True, act()),
    ]
    model = nn.Sequential(OrderedDict(mods))
    model.hbn_layers = {n: kinds[n] for n in NAMES}  # type: ignore[assignment]
    model.input_size = (c, h, w)  # type: ignore[assignment]
    return model


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int = 128,
          lr: float = 2e-3, seed: int = 0, log: Any = None) -> nn.Module:
    """Adam with a cosine schedule from ``lr`` to lr/40 (the paper: Adam, 0.002 down to 5e-5)."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr / 40)
    model.train()
    for ep in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            if len(idx) < 2:
                continue  # BatchNorm needs two samples
            xb = x[idx]
            # Random shifts of up to 2 pixels: cheap augmentation against overfitting 8k images.
            dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if log is not None:
            log(f"    epoch {ep + 1}/{epochs}: loss {total / len(x):.3f}")
    model.eval()
    return model


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    model.eval()
    return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
                     ).numpy()


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` (eval mode) on (x, y)."""
    return float((predict(model, x) == y.numpy()).mean())


def _costs(model: nn.Module) -> dict[str, float]:
    from hbn_engine.flops import summary  # noqa: PLC0415

    s = summary(model)
    return {"flops": float(s.flops), "equivalent_flops": float(s.equivalent_flops),
            "compression": float(s.compression), "memory_bytes": float(s.memory_bytes)}


def _latency_partition(errors: Mapping[str, float], data: Dataset, width: int, ratio: float,
                       example: np.ndarray) -> dict[str, Any]:
    """The latency-aware variant: the same errors, engine seconds in place of FLOPs."""
    times = P.engine_layer_costs(
        lambda a: mini_sketchanet("fbin", data.num_classes, a, data.input_shape, width),
        default_kinds("fbin"), example)
    metrics = P.layer_metrics(errors, times)
    return {"engine_seconds": times, "metrics": metrics,
            "weight_binary": P.partition(metrics, ratio)}


def _runtime_available() -> bool:
    try:
        import hbn_engine.exporter  # noqa: F401, PLC0415
        import hbn_engine.runtime  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _engine_predictions(path: str, x: np.ndarray) -> np.ndarray:
    """Top-1 predictions of the .hbn model at ``path`` run by the engine on ``x``."""
    from hbn_engine.runtime import load  # noqa: PLC0415

    engine = load(path)
    preds = [np.asarray(engine.run(np.ascontiguousarray(x[i:i + 250]))).argmax(1)
             for i in range(0, len(x), 250)]
    return np.concatenate(preds)


# Training images the 8-bit edge layers are calibrated on (min / max of their inputs).
INT8_CALIBRATION_IMAGES = 512


def _engine_check(model: nn.Module, x: np.ndarray, y: np.ndarray, path: str,
                  torch_pred: np.ndarray,
                  calibration: Optional[np.ndarray] = None) -> dict[str, Any]:
    """Export to .hbn, run the engine on the test set, compare predictions with PyTorch's; with
    ``calibration`` (training images) also the same model with 8-bit edges (``int8``)."""
    if not _runtime_available():
        return {"status": "not run: hbn_engine.runtime/exporter not importable"}
    from hbn_engine.exporter import export  # noqa: PLC0415

    export(model, torch.from_numpy(x[:1]), path)
    pred = _engine_predictions(path, x)
    if pred.shape != torch_pred.shape:
        return {"status": f"failed: engine returned {pred.shape[0]} predictions for "
                          f"{torch_pred.shape[0]} images", "file": path}
    out = {"status": "ok", "file": path, "file_bytes": os.path.getsize(path),
           "accuracy": float((pred == y).mean()),
           "torch_accuracy": float((torch_pred == y).mean()),
           "agreement": float((pred == torch_pred).mean()),
           "mismatches": int((pred != torch_pred).sum())}
    if calibration is not None:
        out["int8"] = _int8_check(model, x, y, path, pred, calibration)
    return out


def _int8_check(model: nn.Module, x: np.ndarray, y: np.ndarray, path: str,
                fp32_pred: np.ndarray, calibration: np.ndarray) -> dict[str, Any]:
    """The model exported with ``edges="int8"`` (first conv and classifier in 8 bits),
    calibrated on training images: engine top-1 on the test set vs the fp32-edge engine."""
    from hbn_engine.exporter import export  # noqa: PLC0415
    from hbn_engine.format import OP_TYPES  # noqa: PLC0415

    if "conv_q8" not in OP_TYPES:
        return {"status": "not run: this engine build has no conv_q8 op"}
    path8 = path[:-len(".hbn")] + "_int8.hbn" if path.endswith(".hbn") else path + ".int8"
    report = export(model, torch.from_numpy(x[:1]), path8, edges="int8",
                    calibration=torch.from_numpy(np.ascontiguousarray(calibration)))
    pred = _engine_predictions(path8, x)
    return {"status": "ok", "file": path8, "file_bytes": os.path.getsize(path8),
            "layers": [n for n, k in report.kinds().items() if k == "int8"],
            "calibration_images": int(len(calibration)),
            "accuracy": float((pred == y).mean()),
            "agreement_with_fp32_edges": float((pred == fp32_pred).mean())}


def engine_failures(results: Mapping[str, Any]) -> list[str]:
    """Why the engine check failed, one line per model (empty if every trained model's engine
    predictions equal PyTorch's). Accepts one run's results or a :func:`run_seeds` summary; a
    run made without the engine check (``engine=False``) has nothing to fail."""
    runs = results.get("runs", [results])
    out = []
    for run in runs:
        if not run.get("engine_checked", True):
            continue
        for name, entry in run["variants"].items():
            eng = entry.get("engine")
            where = f"seed {run.get('seed', 0)} {name}"
            if not eng:
                out.append(f"{where}: engine check missing")
            elif eng.get("status") != "ok":
                out.append(f"{where}: engine check {eng.get('status')}")
            elif eng["mismatches"] or eng["accuracy"] != entry["accuracy"]:
                out.append(f"{where}: engine accuracy {eng['accuracy']:.4f} vs PyTorch "
                           f"{entry['accuracy']:.4f}, {eng['mismatches']} predictions differ")
    return out


STRATEGIES = ("budget", "priority")


def _check_arguments(ratio: float, gamma: Any, strategies: Sequence[str], budget_fraction: float,
                     priority_fraction: float, epochs: int, width: int) -> None:
    """Fail before minutes of training, not after."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategies {unknown}; expected some of {STRATEGIES}")
    P.partition({"a": 0.0, "b": 1.0}, ratio)
    P.resolve_gamma({"a": 0.1, "b": 0.2}, {"a": 1.0, "b": 2.0}, gamma)
    for what, frac in (("budget_fraction", budget_fraction), ("priority_fraction", priority_fraction)):
        if not 0.0 <= frac <= 1.0:
            raise ValueError(f"{what} must be in [0, 1], got {frac!r}")
    if epochs < 1 or width < 1:
        raise ValueError(f"epochs and width must be >= 1, got {epochs}, {width}")


def run_demo(out_dir: str, epochs: int = 10, quick: bool = False, *, dataset: str = "animal_shapes",
             ratio: float = 0.4, gamma: float | str | None = None, width: int = 32, seed: int = 0,
             split_seed: int = 0, engine: bool = True, strategies: Sequence[str] = (),
             budget_fraction: float = 0.9, priority_fraction: float = 0.7,
             num_threads: Optional[int] = 1, verbose: bool = True) -> dict[str, Any]:
    """One training seed: train FPrec, WBin, FBin, choose the hybrid with Algorithm 1 (gamma
    rule or value ``gamma``, default "mean"), train it, check the engine.

    ``seed`` drives initialisation, batch order and augmentation; the train/test split is fixed
    by ``split_seed`` so that every seed is tested on the same images. ``quick`` trains 2 epochs
    on 2,000 images with width 8 (a smoke run). ``strategies`` adds hybrids chosen by the other
    selectors over the same candidates, trained the same way: "budget" (MixBin-style, at least
    ``budget_fraction`` of the candidates' FLOPs fully binary) and "priority" (layer-wise
    priority, deepest candidates binarized first up to ``priority_fraction``). Writes to
    ``out_dir``: results.json, table.md, figure2.png (if matplotlib is installed), each trained
    model's state_dict (<variant>.pt) and its .hbn (if ``engine``). ``num_threads`` caps torch's
    threads while training (None leaves them alone). Returns the results dict (results.json).
    """
    _check_arguments(ratio, gamma, strategies, budget_fraction, priority_fraction, epochs, width)
    # These layers are small: torch's intra-op threads cost more in synchronisation than they
    # gain, and on a loaded machine spinning OpenMP threads slow training down ~100x.
    saved_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _run_demo(out_dir, epochs, quick, dataset, ratio, gamma, width, seed, split_seed,
                         engine, strategies, budget_fraction, priority_fraction, verbose)
    finally:
        torch.set_num_threads(saved_threads)


def _partition_record(analysis: P.PartitionResult) -> dict[str, Any]:
    band = analysis.band
    return {"candidates": analysis.candidates, "errors": analysis.errors,
            "errors_scaled": analysis.errors_scaled, "errors_literal": analysis.errors_literal,
            "scaled": analysis.scaled, "flops": analysis.costs, "gamma_rule": analysis.gamma_rule,
            "gamma": analysis.gamma, "rule_gammas": analysis.rule_gammas,
            "metrics": analysis.metrics, "weight_binary": analysis.weight_binary,
            "bands": [{"lo": b.lo, "hi": b.hi, "weight_binary": list(b.weight_binary)}
                      for b in analysis.bands],
            "band": {"lo": band.lo, "hi": band.hi}}


def _run_demo(out_dir: str, epochs: int, quick: bool, dataset: str, ratio: float, gamma: Any,
              width: int, seed: int, split_seed: int, engine: bool, strategies: Sequence[str],
              budget_fraction: float, priority_fraction: float, verbose: bool) -> dict[str, Any]:
    os.makedirs(out_dir, exist_ok=True)
    log = print if verbose else None
    batch_size = 128
    if quick:
        # Enough steps (~60) for BatchNorm's running statistics to settle, so even the smoke run
        # is well above chance in eval mode.
        epochs, width, batch_size = 2, 8, 64
    torch.manual_seed(seed)
    data: Dataset = load_dataset(dataset, seed=split_seed)
    x_tr, y_tr, x_te, y_te = data.torch()
    if quick:
        x_tr, y_tr, x_te, y_te = x_tr[:2000], y_tr[:2000], x_te[:500], y_te[:500]
    x_te_np = x_te.numpy()
    run_engine = engine and _runtime_available()
    results: dict[str, Any] = {"dataset": data.name, "seed": seed, "split_seed": split_seed,
                               "train_size": len(x_tr), "test_size": len(x_te), "epochs": epochs,
                               "width": width, "ratio": ratio, "engine_checked": engine,
                               "budget_fraction": budget_fraction,
                               "priority_fraction": priority_fraction, "variants": {}}
    models: dict[str, nn.Module] = {}

    def fit(variant: str, layers: Optional[Mapping[str, str]] = None) -> None:
        t0 = time.perf_counter()
        if log:
            log(f"[seed {seed}] training {variant} ...")
        torch.manual_seed(seed)
        base = variant if variant in ("fprec", "wbin", "fbin") else "fbin"
        model = mini_sketchanet(base, data.num_classes, layers, data.input_shape, width)
        train(model, x_tr, y_tr, epochs=epochs, batch_size=batch_size, seed=seed, log=log)
        models[variant] = model
        torch.save(model.state_dict(), os.path.join(out_dir, f"{variant}.pt"))
        entry = {"accuracy": evaluate(model, x_te, y_te), "layers": dict(model.hbn_layers),
                 "train_seconds": round(time.perf_counter() - t0, 1), **_costs(model)}
        results["variants"][variant] = entry
        if log:
            log(f"  {variant}: test accuracy {entry['accuracy']:.4f}")

    for v in ("fprec", "wbin", "fbin"):
        fit(v)

    # Algorithm 1 on the trained FBin model's FullBin layers, with a subset of the training
    # images (the paper); the test set plays no part in the choice.
    analysis = P.analyze(models["fbin"], x_tr[:512], ratio=ratio, gamma=gamma)
    results["partition"] = _partition_record(analysis)
    try:
        results["partition"]["figure"] = P.plot_metrics(
            analysis.metrics, analysis.weight_binary, os.path.join(out_dir, "figure2.png"),
            title=f"mini Sketch-A-Net on {data.name}, seed {seed}: metric per FullBin layer "
                  f"(R = {ratio}, gamma rule {analysis.gamma_rule or 'fixed'})",
            bands=analysis.bands, gamma=analysis.gamma, rule_gammas=analysis.rule_gammas)
    except ImportError:
        results["partition"]["figure"] = None
    if log:
        band = analysis.band
        log(f"partition: WeightBin layers {analysis.weight_binary} (gamma {analysis.gamma:.4g}, "
            f"same pick for gamma in [{band.lo:.4g}, {band.hi:.4g}))")
    if run_engine:
        results["partition_latency"] = _latency_partition(analysis.errors, data, width, ratio,
                                                          x_te_np[:64])
        if log:
            log(f"latency-aware partition: WeightBin layers "
                f"{results['partition_latency']['weight_binary']}")
    fit("hybrid", analysis.assignment)
    if "budget" in strategies:
        chosen = P.budgeted_selection(analysis.errors, analysis.costs,
                                      binary_fraction=budget_fraction)
        fit("budget", P.assignment_from_selection(analysis.kinds, chosen))
    if "priority" in strategies:
        chosen = P.layerwise_priority(analysis.candidates, analysis.costs,
                                      binary_fraction=priority_fraction)
        fit("priority", P.assignment_from_selection(analysis.kinds, chosen))

    acc = {v: results["variants"][v]["accuracy"] for v in VARIANTS}
    gap = acc["wbin"] - acc["fbin"]
    results["gap_recovered"] = (acc["hybrid"] - acc["fbin"]) / gap if gap > 0 else None
    if engine:
        for v, entry in results["variants"].items():
            entry["engine"] = _engine_check(models[v], x_te_np, y_te.numpy(),
                                            os.path.join(out_dir, f"{v}.hbn"),
                                            predict(models[v], x_te),
                                            x_tr[:INT8_CALIBRATION_IMAGES].numpy())
    _write_results(out_dir, results)
    if log:
        log(results["table"])
    return results


def run_seeds(out_dir: str, seeds: Sequence[int] = (0, 1, 2), **kwargs: Any) -> dict[str, Any]:
    """:func:`run_demo` once per training seed (into ``out_dir``/seed<N>/) and a summary over
    them: accuracy mean +- sd per variant, gap recovered, FLOPs, memory, engine checks
    (``out_dir``/results.json and table.md). ``kwargs`` go to :func:`run_demo`."""
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
    _check_arguments(kwargs.get("ratio", 0.4), kwargs.get("gamma"), kwargs.get("strategies", ()),
                     kwargs.get("budget_fraction", 0.9), kwargs.get("priority_fraction", 0.7),
                     kwargs.get("epochs", 10), kwargs.get("width", 32))
    os.makedirs(out_dir, exist_ok=True)
    runs = [run_demo(os.path.join(out_dir, f"seed{s}"), seed=s, **kwargs) for s in seeds]
    summary = summarize(runs)
    _write_summary(out_dir, summary)
    if kwargs.get("verbose", True):
        print(summary["table"])
    return summary


def check_engine(out_dir: str, verbose: bool = True) -> dict[str, Any]:
    """Redo the engine check of a finished :func:`run_demo` or :func:`run_seeds` from its saved
    models.

    Rebuilds every variant from results.json and <variant>.pt, exports it to .hbn, compares the
    engine's test-set predictions with PyTorch's and rewrites results.json and table.md (and the
    summary of a multi-seed run). Returns the updated results.
    """
    path = os.path.join(out_dir, "results.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: --check-engine redoes the engine check of a "
                                f"finished demo run; run the demo with --out {out_dir} first")
    with open(path) as f:
        results = json.load(f)
    if "runs" in results:
        runs = [check_engine(os.path.join(out_dir, f"seed{r['seed']}"), verbose)
                for r in results["runs"]]
        summary = summarize(runs)
        _write_summary(out_dir, summary)
        if verbose:
            print(summary["table"])
        return summary
    if not _runtime_available():
        raise RuntimeError("hbn_engine.runtime/exporter not importable: build the engine first")
    data = load_dataset(results["dataset"], seed=results.get("split_seed", results.get("seed", 0)))
    n = int(results["test_size"])
    x_te, y_te = data.x_test[:n], data.y_test[:n]
    results["engine_checked"] = True
    for name, entry in results["variants"].items():
        base = name if name in ("fprec", "wbin", "fbin") else "fbin"
        model = mini_sketchanet(base, data.num_classes, entry["layers"], data.input_shape,
                                int(results["width"]))
        model.load_state_dict(torch.load(os.path.join(out_dir, f"{name}.pt")))
        model.eval()
        torch_pred = predict(model, torch.from_numpy(x_te))
        entry["accuracy"] = float((torch_pred == y_te).mean())
        entry.update(_costs(model))
        entry["engine"] = _engine_check(model, x_te, y_te, os.path.join(out_dir, f"{name}.hbn"),
                                        torch_pred, data.x_train[:INT8_CALIBRATION_IMAGES])
        if verbose:
            print(f"seed {results.get('seed', 0)} {name}: {entry['engine']}")
    if "partition_latency" not in results and "partition" in results:
        results["partition_latency"] = _latency_partition(
            results["partition"]["errors"], data, int(results["width"]), float(results["ratio"]),
            x_te[:64])
    _write_results(out_dir, results)
    return results


def _write_results(out_dir: str, results: dict[str, Any]) -> None:
    results["table"] = format_run(results)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write(results["table"] + "\n")


def _write_summary(out_dir: str, summary: dict[str, Any]) -> None:
    summary["table"] = format_summary(summary)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write(summary["table"] + "\n")


def _gamma_arg(text: str) -> float | str:
    if text in P.GAMMA_RULES:
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"gamma must be a number or one of {', '.join(P.GAMMA_RULES)}, got {text!r}") from None


def _report_failures(results: Mapping[str, Any]) -> int:
    failures = engine_failures(results)
    for line in failures:
        print(f"hbn demo: engine != PyTorch: {line}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        prog="hbn demo", description=__doc__.split("\n")[0],
        epilog="Exit status 1 if the engine's predictions differ from PyTorch's for any trained "
               "model (or the check could not run); see docs/partition.md.")
    ap.add_argument("--out", default="hbn_demo_out", help="output directory")
    ap.add_argument("--seeds", type=int, default=3,
                    help="training seeds 0..N-1, reported as mean +- sd (default 3; 1 for one run)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--strategies", nargs="*", default=[], choices=list(STRATEGIES),
                    help="also train hybrids chosen by these selectors")
    ap.add_argument("--ratio", type=float, default=0.4, help="hybridization ratio R")
    ap.add_argument("--gamma", type=_gamma_arg, default=P.DEFAULT_GAMMA_RULE,
                    help=f"gamma of the metric: a number or a rule ({', '.join(P.GAMMA_RULES)}; "
                         f"default {P.DEFAULT_GAMMA_RULE})")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--dataset", default="animal_shapes", choices=["animal_shapes", "digits"])
    ap.add_argument("--quick", action="store_true", help="2 epochs on a subset (smoke run)")
    ap.add_argument("--no-engine", action="store_true", help="skip the .hbn export check")
    ap.add_argument("--check-engine", action="store_true",
                    help="only redo the engine check of the finished run in --out")
    args = ap.parse_args(argv)
    if args.check_engine:
        try:
            results = check_engine(args.out)
        except (FileNotFoundError, RuntimeError) as e:
            print(f"hbn demo: {e}", file=sys.stderr)
            return 1
        return _report_failures(results)
    if args.seeds < 1:
        ap.error(f"--seeds must be >= 1, got {args.seeds}")
    results = run_seeds(args.out, seeds=range(args.seeds), epochs=args.epochs, quick=args.quick,
                        dataset=args.dataset, ratio=args.ratio, gamma=args.gamma,
                        width=args.width, engine=not args.no_engine, strategies=args.strategies)
    return _report_failures(results)


if __name__ == "__main__":
    sys.exit(main())
