"""The headline benchmark: every model x variant in the engine beside PyTorch and ONNX Runtime
fp32 running the FPrec network of the same architecture; a per-layer breakdown; and the
XNOR-Net setting (one 3x3 conv, 256 -> 256 channels, 14x14) measured against the 58x claim."""
from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import numpy as np

from hbn_engine.bench import runners
from hbn_engine.bench.timing import Timing, time_callable

ARCHS = ("alexnet", "resnet18", "sketchanet", "squeezenet")
VARIANTS = ("fprec", "wbin", "fbin", "hybrid")
BASELINES = ("torch", "onnxruntime")


@dataclass
class BenchConfig:
    models: tuple[str, ...] = ARCHS
    variants: tuple[str, ...] = VARIANTS
    batches: tuple[int, ...] = (1, 8)
    threads: tuple[int, ...] = field(default_factory=lambda: tuple(sorted({1, os.cpu_count() or 1})))
    baselines: tuple[str, ...] = BASELINES
    num_classes: int = 1000
    min_time: float = 0.5
    max_time: float = 20.0
    per_layer: bool = True
    per_layer_variants: tuple[str, ...] = ("hybrid",)
    xnor_layer: bool = True
    plain: bool = True  # the networks of plain_models (written without hbn_engine.nn)
    # FBin / Hybrid with 8-bit edges (export(edges="int8")) and ONNX Runtime int8 FPrec, timed
    # in the same interleaved rounds as the exact rows (when the engine has conv_q8)
    int8: bool = True
    calibration_images: int = 8
    seed: int = 0


@dataclass
class Row:
    section: str  # "model", "layer", "xnor" or "plain"
    model: str
    variant: str  # the network variant (for baselines: "fprec")
    runtime: str  # "hbn", "torch", "onnxruntime"
    batch: int
    threads: int
    median_s: float
    runs: int
    layer: str = ""
    layer_kind: str = ""


@dataclass
class BenchResults:
    config: BenchConfig
    machine: dict
    rows: list[Row] = field(default_factory=list)
    # arch -> variant -> {"float": MACs of float-input layers, "fbin": MACs of FullBin layers}
    flop_counts: dict = field(default_factory=dict)
    # plain network -> {"input": [C, H, W], "kinds": {kind: layers}, "onnx_error": str or None}
    plain_info: dict = field(default_factory=dict)
    # arch -> why ONNX Runtime int8 has no figure (its quantization tooling failed)
    int8_errors: dict = field(default_factory=dict)

    def find(self, **kw) -> list[Row]:
        return [r for r in self.rows if all(getattr(r, k) == v for k, v in kw.items())]

    def median(self, **kw) -> Optional[float]:
        rows = self.find(**kw)
        return rows[0].median_s if rows else None

    def to_dict(self) -> dict:
        return {"config": asdict(self.config), "machine": self.machine,
                "flop_counts": self.flop_counts, "plain_info": self.plain_info,
                "int8_errors": self.int8_errors,
                "rows": [asdict(r) for r in self.rows]}


Progress = Callable[[str], None]


def _build(arch: str, variant: str, num_classes: int, seed: int):
    import torch

    from hbn_engine import models

    torch.manual_seed(seed)
    model = getattr(models, arch)(variant=variant, num_classes=num_classes)
    _randomize_bn(model, seed)
    return model.eval()


def _randomize_bn(model, seed: int) -> None:
    """Non-trivial BN statistics, so folded thresholds and scales are not all 0 / 1."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)


def _flop_split(model) -> dict[str, int]:
    from hbn_engine import flops

    table = flops.layer_table(model)
    return {"float": sum(l.flops for l in table if l.kind != "fbin"),
            "fbin": sum(l.flops for l in table if l.kind == "fbin")}


def _input(model, batch: int, seed: int) -> np.ndarray:
    c, h, w = model.input_size
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, c, h, w), dtype=np.float32)


# Rounds per comparison. The shared 2-core machines here lose a core to other tenants for
# ~100 ms at a time (a 2-thread run then takes its 1-thread time); more, shorter rounds keep
# one such window from owning a runtime's samples.
ROUNDS = 5


def _time_interleaved(point: dict, min_time: float, max_time: float, progress: Progress,
                      label: str, rounds: int = ROUNDS) -> dict:
    """Times every runtime of one comparison in several rounds, one block per runtime per round,
    and pools each runtime's samples. A shared machine drifts over seconds; sequential blocks
    would hand one runtime the quiet minute and another the busy one. Within a block the calls
    are back to back (a warm-up call first), so a runtime's own idle threads settle before its
    samples count and never spin through another runtime's samples."""
    samples: dict = {k: [] for k in point}
    for r in range(rounds):
        for key, run in point.items():
            progress(f"{label} {key[0]} {key[1]} (round {r + 1}/{rounds})")
            t = time_callable(run, min_time=min_time / rounds, min_runs=2, warmup=1,
                              max_time=max_time / rounds)
            samples[key] += t.samples
    return {k: Timing(tuple(v)) for k, v in samples.items()}


INT8_VARIANTS = ("fbin", "hybrid")
# Hybrid with int8 edges and its WeightBin convs on 8-bit input too (export(wbin="int8"))
WBIN_INT8_VARIANT = "hybrid_wbin_int8"


def _wbin_int8_enabled(cfg: BenchConfig) -> bool:
    from hbn_engine.format import OP_TYPES

    return "hybrid" in _int8_variants(cfg) and "conv_wbin_q8" in OP_TYPES


def int8_enabled(cfg: BenchConfig) -> bool:
    from hbn_engine.format import OP_TYPES

    return cfg.int8 and "conv_q8" in OP_TYPES


def _int8_variants(cfg: BenchConfig) -> list[str]:
    return [v for v in INT8_VARIANTS if v in cfg.variants] if int8_enabled(cfg) else []


def _calibration(model, cfg: BenchConfig) -> np.ndarray:
    """Calibration images for both int8 paths: random N(0, 1) images like the timed input
    (the zoo models here have random weights; docs/benchmarks.md)."""
    c, h, w = model.input_size
    rng = np.random.default_rng(cfg.seed + 1)
    return rng.standard_normal((cfg.calibration_images, c, h, w), dtype=np.float32)


def count_tasks(cfg: BenchConfig) -> int:
    extra = len(_int8_variants(cfg)) + (1 if _wbin_int8_enabled(cfg) else 0)
    extra += 1 if extra and "onnxruntime" in cfg.baselines else 0
    per_point = 1 + ROUNDS * (len(cfg.variants) + len(cfg.baselines))  # prepare + rounds
    n = len(cfg.models) * len(cfg.batches) * len(cfg.threads) * per_point
    if 1 in cfg.batches:
        n += len(cfg.models) * len(cfg.threads) * ROUNDS * extra
    if cfg.per_layer:
        n += len(cfg.models) * len(cfg.per_layer_variants)
    if cfg.xnor_layer:
        n += 1
    if cfg.plain:
        from hbn_engine.bench.plain_models import BENCH_NETWORKS

        n += len(BENCH_NETWORKS) * (1 + ROUNDS * (1 + len(cfg.baselines)))
    return n


def run_suite(cfg: BenchConfig, machine: dict, progress: Optional[Progress] = None) -> BenchResults:
    progress = progress or (lambda _msg: None)
    res = BenchResults(cfg, machine)
    with tempfile.TemporaryDirectory(prefix="hbn_bench_") as work:
        if cfg.xnor_layer:
            progress("XNOR-Net layer 256->256 3x3 14x14")
            res.rows += xnor_layer_rows(cfg, work)
        if cfg.plain:
            res.rows += plain_rows(cfg, work, res.plain_info, progress)
        for arch in cfg.models:
            nets = {v: _build(arch, v, cfg.num_classes, cfg.seed) for v in cfg.variants}
            if "fprec" not in nets:
                nets["fprec"] = _build(arch, "fprec", cfg.num_classes, cfg.seed)
            res.flop_counts[arch] = {v: _flop_split(net) for v, net in nets.items()}
            for batch in cfg.batches:
                x = _input(nets["fprec"], batch, cfg.seed)
                for threads in cfg.threads:
                    progress(f"{arch} batch={batch} threads={threads}: preparing runtimes")
                    point = {}
                    for base in cfg.baselines:
                        if base == "torch":
                            point[("fprec", base)] = runners.make_torch(nets["fprec"], x, threads)
                        else:
                            point[("fprec", base)] = runners.make_onnxruntime(
                                nets["fprec"], x, threads, work, name=f"{arch}_fprec")
                    for variant in cfg.variants:
                        point[(variant, "hbn")] = runners.make_engine(
                            nets[variant], x, threads, work, name=f"{arch}_{variant}")
                    # The int8 targets are batch 1: the other batches would cost bench time
                    int8_vs = _int8_variants(cfg) if batch == 1 else []
                    if int8_vs:
                        import torch

                        cal = _calibration(nets["fprec"], cfg)
                        for variant in int8_vs:
                            point[(variant + "_int8", "hbn")] = runners.make_engine(
                                nets[variant], x, threads, work, name=f"{arch}_{variant}_int8",
                                export_kwargs={"edges": "int8",
                                               "calibration": torch.from_numpy(cal)})
                        if _wbin_int8_enabled(cfg):
                            point[(WBIN_INT8_VARIANT, "hbn")] = runners.make_engine(
                                nets["hybrid"], x, threads, work, name=f"{arch}_{WBIN_INT8_VARIANT}",
                                export_kwargs={"edges": "int8", "wbin": "int8",
                                               "calibration": torch.from_numpy(cal)})
                        if "onnxruntime" in cfg.baselines and arch not in res.int8_errors:
                            try:
                                point[("fprec_int8", "onnxruntime")] = \
                                    runners.make_onnxruntime_int8(nets["fprec"], x, threads, work,
                                                                  f"{arch}_fprec", cal)
                            except Exception as e:  # e.g. an onnxruntime without its tooling
                                res.int8_errors[arch] = (f"{type(e).__name__}: "
                                                         f"{str(e).splitlines()[0][:200]}")
                    timings = _time_interleaved(point, cfg.min_time, cfg.max_time, progress,
                                                f"{arch} b={batch} t={threads}")
                    for (variant, runtime), t in timings.items():
                        res.rows.append(Row("model", arch, variant, runtime, batch, threads, t.median, t.runs))
                    del point
            if cfg.per_layer:
                for variant in cfg.per_layer_variants:
                    progress(f"{arch} {variant} per-layer breakdown")
                    res.rows += layer_rows(arch, variant, nets.get(variant) or
                                           _build(arch, variant, cfg.num_classes, cfg.seed), cfg, work)
    return res


def _standalone(module, in_shape: tuple[int, ...]):
    """The layer alone as an exportable network, and its input shape (NCHW; linear layers take a
    [N, F, 1, 1] input through a Flatten so every runtime sees a 4-D tensor)."""
    import torch

    layer = copy.deepcopy(module).eval()
    if len(in_shape) == 2:
        return torch.nn.Sequential(torch.nn.Flatten(), layer), (in_shape[0], in_shape[1], 1, 1)
    return torch.nn.Sequential(layer), tuple(in_shape)


def _float_twin(module):
    """A plain fp32 torch layer with the same geometry: the baseline each layer is compared with."""
    import torch

    if isinstance(module, torch.nn.Linear) or hasattr(module, "in_features"):
        return torch.nn.Linear(module.in_features, module.out_features)
    return torch.nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size,
                           module.stride, module.padding)


def layer_rows(arch: str, variant: str, model, cfg: BenchConfig, work: str) -> list[Row]:
    import torch

    names = list(model.hbn_layers)
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    mods = dict(model.named_modules())
    for name in names:
        hooks.append(mods[name].register_forward_pre_hook(
            lambda _m, args, name=name: shapes.__setitem__(name, tuple(args[0].shape))))
    with torch.inference_mode():
        model(torch.from_numpy(_input(model, 1, cfg.seed)))
    for h in hooks:
        h.remove()
    rows = []
    threads = 1
    for name in names:
        kind = model.hbn_layers[name]
        net, in_shape = _standalone(mods[name], shapes[name])
        twin, _ = _standalone(_float_twin(mods[name]), shapes[name])
        x = np.random.default_rng(cfg.seed).standard_normal(in_shape, dtype=np.float32)
        point = {"hbn": runners.make_engine(net, x, threads, work),
                 "torch": runners.make_torch(twin, x, threads)}
        timed = _time_interleaved(point, cfg.min_time, cfg.max_time, lambda _m: None, name)
        t_hbn, t_torch = timed["hbn"], timed["torch"]
        rows.append(Row("layer", arch, variant, "hbn", 1, threads, t_hbn.median, t_hbn.runs, name, kind))
        rows.append(Row("layer", arch, variant, "torch", 1, threads, t_torch.median, t_torch.runs, name, "fprec"))
    return rows


def xnor_layer_rows(cfg: BenchConfig, work: str) -> list[Row]:
    """XNOR-Net's setting: 3x3 conv, 256 in / 256 out channels, 14x14 input, batch 1, 1 thread."""
    import torch

    from hbn_engine import nn as hnn

    torch.manual_seed(cfg.seed)
    fbin = torch.nn.Sequential(hnn.FullBinConv2d(256, 256, 3, padding=1, activation=None)).eval()
    _randomize_bn(fbin, cfg.seed)
    fconv = torch.nn.Sequential(torch.nn.Conv2d(256, 256, 3, padding=1)).eval()
    x = np.random.default_rng(cfg.seed).standard_normal((1, 256, 14, 14), dtype=np.float32)
    point = {
        ("fbin", "hbn"): runners.make_engine(fbin, x, 1, work),
        ("fprec", "hbn"): runners.make_engine(fconv, x, 1, work),
        ("fprec", "torch"): runners.make_torch(fconv, x, 1),
    }
    if "onnxruntime" in cfg.baselines:
        point[("fprec", "onnxruntime")] = runners.make_onnxruntime(fconv, x, 1, work)
    timings = _time_interleaved(point, max(cfg.min_time, 1.0) * 3, cfg.max_time, lambda _m: None,
                                "xnor")
    rows = [Row("xnor", "conv256_3x3_14", variant, runtime, 1, 1, t.median, t.runs)
            for (variant, runtime), t in timings.items()]
    return rows


def plain_rows(cfg: BenchConfig, work: str, info: dict, progress: Progress) -> list[Row]:
    """The networks written from plain torch modules (plain_models.BENCH_NETWORKS, no
    hbn_engine.nn): exported as written, timed in the engine beside the same model in PyTorch
    fp32 (binarizing its weights in every forward, as written) and ONNX Runtime fp32 (what the
    ONNX exporter makes of it), batch 1, interleaved rounds, medians."""
    import torch

    import hbn_engine
    from hbn_engine.bench.plain_models import BENCH_NETWORKS

    rows: list[Row] = []
    for name, (build, shape) in BENCH_NETWORKS.items():
        progress(f"{name} (plain torch): exporting")
        torch.manual_seed(cfg.seed)
        model = build().eval()
        _randomize_bn(model, cfg.seed)
        x = np.random.default_rng(cfg.seed).standard_normal((1, *shape), dtype=np.float32)
        path = os.path.join(work, f"plain_{name}.hbn")
        report = hbn_engine.export(model, torch.from_numpy(x), path)
        kinds: dict[str, int] = {}
        for k in report.kinds().values():
            kinds[k] = kinds.get(k, 0) + 1
        entry: dict = {"input": list(shape), "kinds": kinds, "onnx_error": None}
        info[name] = entry
        for threads in cfg.threads[:1]:  # one thread: the per-core comparison
            point = {("plain", "hbn"): runners.make_engine(model, x, threads, work,
                                                          name=f"plain_{name}")}
            for base in cfg.baselines:
                if base == "torch":
                    point[("plain", base)] = runners.make_torch(model, x, threads)
                    continue
                try:
                    point[("plain", base)] = runners.make_onnxruntime(model, x, threads, work,
                                                                      name=f"plain_{name}")
                except Exception as e:  # the model as written may not export to ONNX
                    entry["onnx_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            timings = _time_interleaved(point, cfg.min_time, cfg.max_time, progress,
                                        f"{name} (plain)")
            for (variant, runtime), t in timings.items():
                rows.append(Row("plain", name, variant, runtime, 1, threads, t.median, t.runs))
    return rows
