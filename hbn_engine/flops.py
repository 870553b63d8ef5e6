"""Per-layer parameter, memory and FLOP accounting with the paper's cost model (needs torch).

Definitions (Prabhu et al., WACV'18, appendix C; checked against Tables 8-11 in
tests/test_flops.py):

* **params**: elements of a conv/linear layer's weight (the paper's #Params: Table 10's Linear
  row is 5.12e5 = 512*1000, without the 1000 biases). Biases, BatchNorm parameters and the
  per-channel alphas are not counted either; :class:`ModelSummary` reports the model's other
  parameters as ``other_params``.
* **binary_params**: ``params / 32`` for a layer with binarized weights (one bit instead of 32),
  ``params`` for a float layer. Memory = 4 bytes per float parameter, so
  ``memory_bytes = 4 * binary_params``.
* **flops**: multiply-accumulates of one image (Table 8's conv1 of AlexNet, 10.54e7 =
  96*3*11*11*55*55, counts one per MAC). Bias adds, BN, pooling and activations are not counted.
* **equivalent_flops**: float layers count their flops; WeightBin layers count
  ``flops * (1 - repeats)``; FullBin layers count ``flops * (1 - repeats) / 58`` (XNOR-Net's
  measured speed-up of XNOR/popcount over float MACs). ``repeats`` is the paper's fraction of
  repeated binary 3x3 filters, a property of trained weights, not of the architecture: it
  defaults to 0 and can be passed per layer (the paper's "Repeats" column).
* **speedup**: ``flops / equivalent_flops`` (the FLOP model's speed-up over the float model).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import nn

from hbn_engine.nn import FullBinConv2d, FullBinLinear, WeightBinConv2d, WeightBinLinear

__all__ = ["XNOR_SPEEDUP", "LayerStats", "ModelSummary", "layer_table", "summary", "format_table"]

XNOR_SPEEDUP = 58.0

_KIND_OF: tuple[tuple[tuple[type, ...], str], ...] = (
    ((FullBinConv2d, FullBinLinear), "fbin"),
    ((WeightBinConv2d, WeightBinLinear), "wbin"),
    ((nn.Conv2d, nn.Linear), "fprec"),
)


@dataclass(frozen=True)
class LayerStats:
    """Accounting of one conv/linear layer for one input image."""

    name: str
    kind: str  # "fprec" | "wbin" | "fbin"
    params: int
    binary_params: float
    flops: int
    equivalent_flops: float
    output_shape: tuple[int, ...]  # per image, without the batch dimension


@dataclass(frozen=True)
class ModelSummary:
    """Totals over :func:`layer_table`; memory counts only conv/linear weights (paper's rule)."""

    params: int
    binary_params: float
    memory_bytes: float
    fp32_memory_bytes: int
    compression: float
    flops: int
    equivalent_flops: float
    speedup: float
    other_params: int
    layers: list[LayerStats] = field(repr=False)


def _kind(module: nn.Module) -> Optional[str]:
    for types, kind in _KIND_OF:
        if isinstance(module, types):
            return kind
    return None


def _macs(module: nn.Module, out: torch.Tensor) -> int:
    per_image = out[0].numel()
    if isinstance(module, (nn.Conv2d, FullBinConv2d, WeightBinConv2d)):
        kh, kw = module.kernel_size
        groups = getattr(module, "groups", 1)
        return per_image * (module.in_channels // groups) * kh * kw
    return per_image * module.in_features


def layer_table(model: nn.Module, repeats: Optional[Mapping[str, float]] = None,
                input_size: Optional[tuple[int, ...]] = None) -> list[LayerStats]:
    """Accounting of every conv/linear layer of ``model`` (float or binary), in call order.

    Runs one eval-mode forward on zeros of ``input_size`` (default ``model.input_size``, (C, H,
    W)) with batch 1; the model's training mode is restored afterwards. ``repeats`` maps layer
    names to the fraction in [0, 1) of a binarized layer's FLOPs saved by filter repetition.
    """
    size = input_size if input_size is not None else getattr(model, "input_size", None)
    if size is None:
        raise ValueError("layer_table needs input_size=(C, H, W): the model has no input_size")
    size = tuple(int(s) for s in size)
    modules = {name: m for name, m in model.named_modules() if _kind(m) is not None}
    repeats = dict(repeats or {})
    unknown = [n for n in repeats if n not in modules]
    if unknown:
        raise ValueError(f"repeats names layers the model does not have: {unknown}")
    bad = {n: r for n, r in repeats.items() if not 0.0 <= float(r) < 1.0}
    if bad:
        raise ValueError(f"repeats must be fractions in [0, 1), got {bad}")

    calls: dict[str, list] = {}  # name -> [macs, output shape], in first-call order

    def hook(name: str):
        def record(module: nn.Module, _inputs, output: torch.Tensor) -> None:
            entry = calls.setdefault(name, [0, tuple(output.shape[1:])])
            entry[0] += _macs(module, output)
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]
    was_training = model.training
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *size), dtype=dtype, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    rows = []
    for name, (macs, shape) in calls.items():
        m = modules[name]
        kind = _kind(m)
        n_weight = m.weight.numel()
        if kind == "fprec":
            bin_params = float(n_weight)
            eq = float(macs)
        else:
            bin_params = n_weight / 32.0
            eq = macs * (1.0 - float(repeats.get(name, 0.0)))
            if kind == "fbin":
                eq /= XNOR_SPEEDUP
        rows.append(LayerStats(name, kind, n_weight, bin_params, macs, eq, shape))
    return rows


def summary(model: nn.Module, repeats: Optional[Mapping[str, float]] = None,
            input_size: Optional[tuple[int, ...]] = None) -> ModelSummary:
    """Totals of :func:`layer_table`: parameters, memory and its compression vs fp32, FLOPs,
    equivalent FLOPs and the FLOP-model speed-up."""
    rows = layer_table(model, repeats, input_size)
    params = sum(r.params for r in rows)
    bin_params = sum(r.binary_params for r in rows)
    flops = sum(r.flops for r in rows)
    eq = sum(r.equivalent_flops for r in rows)
    modules = dict(model.named_modules())
    counted = {id(modules[r.name].weight) for r in rows}
    other = sum(p.numel() for p in model.parameters() if id(p) not in counted)
    return ModelSummary(
        params=params,
        binary_params=bin_params,
        memory_bytes=4.0 * bin_params,
        fp32_memory_bytes=4 * params,
        compression=params / bin_params if bin_params else float("nan"),
        flops=flops,
        equivalent_flops=eq,
        speedup=flops / eq if eq else float("nan"),
        other_params=other,
        layers=rows,
    )


def format_table(model: nn.Module, repeats: Optional[Mapping[str, float]] = None,
                 input_size: Optional[tuple[int, ...]] = None) -> str:
    """The per-layer table in the paper's units (params in 1e5, FLOPs in 1e7) plus totals."""
    s = summary(model, repeats, input_size)
    lines = [f"{'layer':<22} {'kind':<6} {'params/1e5':>11} {'bin/1e5':>9} "
             f"{'FLOPs/1e7':>10} {'equiv/1e7':>10}"]
    for r in s.layers:
        lines.append(f"{r.name:<22} {r.kind:<6} {r.params / 1e5:>11.2f} "
                     f"{r.binary_params / 1e5:>9.3f} {r.flops / 1e7:>10.2f} "
                     f"{r.equivalent_flops / 1e7:>10.2f}")
    lines.append(f"{'total':<22} {'':<6} {s.params / 1e5:>11.2f} {s.binary_params / 1e5:>9.3f} "
                 f"{s.flops / 1e7:>10.2f} {s.equivalent_flops / 1e7:>10.2f}")
    lines.append(f"memory {s.memory_bytes / 2**20:.2f} MiB (fp32 {s.fp32_memory_bytes / 2**20:.2f}"
                 f" MiB, {s.compression:.1f}x), FLOP-model speed-up {s.speedup:.1f}x")
    return "\n".join(lines)
