"""Layer selection for hybrid binary networks.

The paper's partition algorithm (binarization error + FLOPs metric, Algorithm 1), its
latency-aware variant, a MixBin-style budgeted selection and layer-wise priority. The candidates
are the FullBin layers of a trained FBin model; every strategy returns the candidates to make
WeightBinConv (float inputs), and :func:`assignment_from_selection` turns that into a
``layers=`` mapping for ``hbn_engine.models`` builders in which every other layer keeps its
kind. See docs/partition.md.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Union

from torch import nn

from hbn_engine.partition.algorithm import kmeans_1d, partition, validate_metrics
from hbn_engine.partition.bands import GammaBand, band_of, gamma_bands, rule_gammas
from hbn_engine.partition.errors import (
    ArrayLike,
    binarizable_layers,
    binarization_error_pair,
    binarization_errors,
    layer_flops,
    layer_kinds,
    measure_layer_times,
)
from hbn_engine.partition.latency import engine_layer_costs
from hbn_engine.partition.metric import (
    DEFAULT_GAMMA_RULE,
    GAMMA_RULES,
    default_gamma,
    layer_metrics,
    resolve_gamma,
)
from hbn_engine.partition.plot import plot_metrics
from hbn_engine.partition.strategies import (
    BinReLU,
    assignment_from_selection,
    budgeted_selection,
    layerwise_priority,
)

__all__ = [
    "BinReLU",
    "DEFAULT_GAMMA_RULE",
    "GAMMA_RULES",
    "GammaBand",
    "PartitionResult",
    "analyze",
    "assignment_from_selection",
    "band_of",
    "binarizable_layers",
    "binarization_error_pair",
    "binarization_errors",
    "budgeted_selection",
    "default_gamma",
    "engine_layer_costs",
    "gamma_bands",
    "hybrid_assignment",
    "kmeans_1d",
    "layer_flops",
    "layer_kinds",
    "layer_metrics",
    "layerwise_priority",
    "measure_layer_times",
    "partition",
    "plot_metrics",
    "resolve_gamma",
    "rule_gammas",
    "validate_metrics",
]

Costs = Union[None, str, Mapping[str, float], Callable[[str, nn.Module], float]]


@dataclass(frozen=True)
class PartitionResult:
    """Everything Algorithm 1 saw and decided, for reports and plots."""

    layers: list[str]              # all binarizable layers, forward order
    kinds: dict[str, str]          # layer -> kind in the analysed model ("fprec"/"wbin"/"fbin")
    candidates: list[str]          # the layers Algorithm 1 may convert (P = len(candidates))
    errors: dict[str, float]       # E per candidate, the form the metric used (see `scaled`)
    errors_scaled: dict[str, float]   # E with I_B = alpha * sign(I) (default)
    errors_literal: dict[str, float]  # E with I_B = sign(I) (Eq. 2/3 as written)
    scaled: bool
    costs: dict[str, float]        # NF (FLOPs) or measured seconds per candidate
    gamma_rule: str | None         # rule that gave gamma, None if it was given as a number
    gamma: float
    rule_gammas: dict[str, float]  # gamma under every rule, for comparison
    metrics: dict[str, float]      # M = E + gamma / cost
    weight_binary: list[str]       # chosen WeightBinConv layers
    assignment: dict[str, str]     # layer -> kind of the hybrid: kinds with the chosen -> "wbin"
    bands: list[GammaBand]         # gamma intervals over which the pick stays the same

    @property
    def band(self) -> GammaBand:
        """The band holding the gamma used."""
        return band_of(self.bands, self.gamma)


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
            *, costs: Costs = None, scaled: bool = True,
            candidates: Sequence[str] | None = None) -> PartitionResult:
    """Run the whole partition procedure on a trained FBin model.

    ``candidates`` (default): the model's FullBin layers - the inputs an FBin network binarizes
    and Algorithm 1 may give back in float; P counts them. Float layers (the first conv, an
    XNOR-Net float classifier) and WeightBin layers are not candidates and keep their kind in
    the resulting assignment. Give ``candidates`` to choose other layers explicitly.
    ``costs``: None or "flops" -> NF from :func:`layer_flops` (the paper); "latency" -> seconds
    from :func:`measure_layer_times`; a mapping name -> cost (e.g. per-layer engine timings) or a
    callable ``(name, module) -> cost`` for the latency-aware variant. ``gamma``: a number, or
    None / a rule of :data:`GAMMA_RULES` for :func:`default_gamma` (None = "mean").
    ``scaled`` picks which error the metric uses; both are measured and returned.
    """
    kinds = layer_kinds(model)
    layers = list(kinds)
    if candidates is None:
        cand = [n for n in layers if kinds[n] == "fbin"]
        if not cand:
            raise ValueError("the model has no FullBin layers: Algorithm 1 starts from a trained "
                             "FBin model (pass candidates= to choose layers explicitly)")
    else:
        if isinstance(candidates, str):
            raise TypeError("candidates must be a sequence of layer names, not one string")
        cand = list(dict.fromkeys(candidates))
        unknown = [n for n in cand if n not in kinds]
        if unknown:
            raise ValueError(f"candidates are not binarizable layers of the model: {unknown}")
        if not cand:
            raise ValueError("candidates is empty")
        cand = [n for n in layers if n in set(cand)]  # forward order
    scaled_all, literal_all = binarization_error_pair(model, images)
    e_scaled = {n: scaled_all[n] for n in cand}
    e_literal = {n: literal_all[n] for n in cand}
    errors = e_scaled if scaled else e_literal
    cost = _resolve_costs(model, images, costs, cand)
    g = resolve_gamma(errors, cost, gamma)
    rule = (gamma or DEFAULT_GAMMA_RULE) if gamma is None or isinstance(gamma, str) else None
    metrics = layer_metrics(errors, cost, g)
    chosen = partition(metrics, ratio)
    return PartitionResult(
        layers=layers, kinds=kinds, candidates=cand, errors=errors, errors_scaled=e_scaled,
        errors_literal=e_literal, scaled=scaled, costs=cost, gamma_rule=rule, gamma=g,
        rule_gammas=rule_gammas(errors, cost), metrics=metrics, weight_binary=chosen,
        assignment=assignment_from_selection(kinds, chosen),
        bands=gamma_bands(errors, cost, ratio))


def hybrid_assignment(model: nn.Module, images: ArrayLike, ratio: float = 0.4,
                      gamma: float | str | None = None, *, costs: Costs = None,
                      scaled: bool = True) -> dict[str, str]:
    """Layer -> kind for the hybrid model Algorithm 1 picks; pass it as ``layers=`` to the zoo
    builders. The chosen FullBin layers become "wbin"; every other layer keeps its kind."""
    return analyze(model, images, ratio, gamma, costs=costs, scaled=scaled).assignment
