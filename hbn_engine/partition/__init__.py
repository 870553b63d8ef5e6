"""Layer selection for hybrid binary networks.

The paper's partition algorithm (binarization error + FLOPs metric, Algorithm 1), its
latency-aware variant, a MixBin-style budgeted selection and layer-wise priority. All strategies
return the layers to make WeightBinConv (float inputs); :func:`assignment_from_selection` turns
that into a ``layers=`` mapping for ``hbn_engine.models`` builders (first layer full precision).
See docs/partition.md.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Union

from torch import nn

from hbn_engine.partition.algorithm import kmeans_1d, partition, validate_metrics
from hbn_engine.partition.errors import (
    ArrayLike,
    binarizable_layers,
    binarization_errors,
    layer_flops,
    measure_layer_times,
)
from hbn_engine.partition.latency import engine_layer_costs
from hbn_engine.partition.metric import GAMMA_RULES, default_gamma, layer_metrics, resolve_gamma
from hbn_engine.partition.plot import plot_metrics
from hbn_engine.partition.strategies import (
    BinReLU,
    assignment_from_selection,
    budgeted_selection,
    layerwise_priority,
)

__all__ = [
    "BinReLU",
    "GAMMA_RULES",
    "PartitionResult",
    "analyze",
    "assignment_from_selection",
    "binarizable_layers",
    "binarization_errors",
    "budgeted_selection",
    "default_gamma",
    "engine_layer_costs",
    "hybrid_assignment",
    "kmeans_1d",
    "layer_flops",
    "layer_metrics",
    "layerwise_priority",
    "measure_layer_times",
    "partition",
    "plot_metrics",
    "resolve_gamma",
    "validate_metrics",
]

Costs = Union[None, str, Mapping[str, float], Callable[[str, nn.Module], float]]


@dataclass(frozen=True)
class PartitionResult:
    """Everything Algorithm 1 saw and decided, for reports and plots."""

    layers: list[str]            # all binarizable layers, forward order (layers[0] stays fprec)
    errors: dict[str, float]     # E per candidate (layers[1:])
    costs: dict[str, float]      # NF (FLOPs) or measured seconds per candidate
    gamma: float
    metrics: dict[str, float]    # M = E + gamma / cost
    weight_binary: list[str]     # chosen WeightBinConv layers
    assignment: dict[str, str]   # layer -> "fprec" | "wbin" | "fbin"


def _resolve_costs(model: nn.Module, images: ArrayLike, costs: Costs,
                   names: list[str]) -> dict[str, float]:
    if costs is None or costs == "flops":
        table = layer_flops(model, images)
    elif costs == "latency":
        table = measure_layer_times(model, images[:64])
    elif isinstance(costs, str):
        raise ValueError(f"costs must be None, 'flops', 'latency', a mapping or a callable, got {costs!r}")
    elif isinstance(costs, Mapping):
        table = dict(costs)
    elif callable(costs):
        modules = binarizable_layers(model)
        table = {n: float(costs(n, modules[n])) for n in names}
    else:
        raise TypeError(f"unsupported costs: {type(costs).__name__}")
    missing = [n for n in names if n not in table]
    if missing:
        raise ValueError(f"costs lack layers {missing}")
    return {n: float(table[n]) for n in names}


def analyze(model: nn.Module, images: ArrayLike, ratio: float = 0.4,
            gamma: float | str | None = None,
            *, costs: Costs = None, scaled: bool = True) -> PartitionResult:
    """Run the whole partition procedure on a (trained FBin) model.

    ``costs``: None or "flops" -> NF from :func:`layer_flops` (the paper); "latency" -> seconds
    from :func:`measure_layer_times`; a mapping name -> cost (e.g. per-layer engine timings) or a
    callable ``(name, module) -> cost`` for the latency-aware variant. ``gamma``: a number, or
    None / "range" / "median" for the rule of :func:`default_gamma`.
    """
    layers = list(binarizable_layers(model))
    candidates = layers[1:]
    if not candidates:
        return PartitionResult(layers, {}, {}, 0.0, {}, [], {layers[0]: "fprec"})
    all_errors = binarization_errors(model, images, scaled=scaled)
    errors = {n: all_errors[n] for n in candidates}
    cost = _resolve_costs(model, images, costs, candidates)
    g = resolve_gamma(errors, cost, gamma)
    metrics = layer_metrics(errors, cost, g)
    chosen = partition(metrics, ratio)
    return PartitionResult(layers, errors, cost, g, metrics, chosen,
                           assignment_from_selection(layers, chosen))


def hybrid_assignment(model: nn.Module, images: ArrayLike, ratio: float = 0.4,
                      gamma: float | str | None = None, *, costs: Costs = None,
                      scaled: bool = True) -> dict[str, str]:
    """Layer -> kind for the hybrid model Algorithm 1 picks; pass it as ``layers=`` to the zoo
    builders. The first layer is "fprec", chosen layers "wbin", the rest "fbin"."""
    return analyze(model, images, ratio, gamma, costs=costs, scaled=scaled).assignment
