"""The paper's layer metric M = E + gamma / cost (Eq. 4), with cost = FLOPs or measured time."""
from __future__ import annotations

import statistics
from collections.abc import Mapping

from hbn_engine.partition.algorithm import validate_metrics

__all__ = ["DEFAULT_GAMMA_RULE", "GAMMA_RULES", "default_gamma", "layer_metrics", "resolve_gamma"]


def _check_pair(errors: Mapping[str, float], costs: Mapping[str, float]) -> tuple[dict, dict]:
    e = validate_metrics(errors, "errors")
    c = validate_metrics(costs, "costs")
    missing = [n for n in e if n not in c]
    if missing:
        raise ValueError(f"costs lack layers {missing}")
    bad = [n for n in e if c[n] <= 0]
    if bad:
        raise ValueError(f"costs must be > 0 (FLOPs or seconds); got <= 0 for {bad}")
    neg = [n for n in e if e[n] < 0]
    if neg:
        raise ValueError(f"binarization errors must be >= 0; got < 0 for {neg}")
    return e, {n: c[n] for n in e}


GAMMA_RULES = ("mean", "median", "range")
DEFAULT_GAMMA_RULE = "mean"


def default_gamma(errors: Mapping[str, float], costs: Mapping[str, float],
                  rule: str = DEFAULT_GAMMA_RULE) -> float:
    """The trade-off ratio gamma of Eq. 4, "which ensures that both the terms are of comparable
    magnitude" (the paper's only words on it).

    ``"mean"`` (default): gamma = mean(E) / mean(1/cost), so the two terms have the same mean
    over the candidates - the paper's sentence taken literally. ``"median"``: gamma =
    median(E) / median(1/cost), the same with medians (a layer of median cost gets a cost term
    equal to the median error; less swayed by one very cheap layer). ``"range"``: gamma =
    (max E - min E) / (max 1/cost - min 1/cost): comparable *spread* rather than magnitude;
    with 1/cost spanning decades it gives the cheapest layer a bonus of the whole error spread
    and every other layer a cost term of ~0 (docs/partition.md). All rules are unit-free in cost
    (MACs, FLOPs or seconds). If all costs are equal the cost term cannot separate layers and
    gamma is 0; so is it for "range" when all errors are equal.
    """
    e, c = _check_pair(errors, costs)
    inv = [1.0 / v for v in c.values()]
    if max(inv) - min(inv) <= 0:
        return 0.0
    if rule == "mean":
        return statistics.fmean(e.values()) / statistics.fmean(inv)
    if rule == "median":
        return statistics.median(e.values()) / statistics.median(inv)
    if rule == "range":
        return (max(e.values()) - min(e.values())) / (max(inv) - min(inv))
    raise ValueError(f"unknown gamma rule {rule!r}; expected one of {GAMMA_RULES}")


def resolve_gamma(errors: Mapping[str, float], costs: Mapping[str, float],
                  gamma: float | str | None) -> float:
    """None -> the default rule, a rule name -> :func:`default_gamma`, a number -> itself."""
    if gamma is None or isinstance(gamma, str):
        return default_gamma(errors, costs, gamma or DEFAULT_GAMMA_RULE)
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)):
        raise TypeError(f"gamma must be a number, a rule name or None, got {gamma!r}")
    g = float(gamma)
    if not g >= 0 or g == float("inf"):
        raise ValueError(f"gamma must be finite and >= 0, got {gamma!r}")
    return g


def layer_metrics(errors: Mapping[str, float], costs: Mapping[str, float],
                  gamma: float | str | None = None) -> dict[str, float]:
    """M = E + gamma / cost per layer (paper Eq. 4 with cost = NF, FLOPs of the layer).

    ``costs`` may be FLOPs or any per-layer cost that grows with the price of keeping the layer's
    input float (e.g. measured seconds: the latency-aware variant). ``gamma``: a number (finite,
    >= 0), or None / a rule of :data:`GAMMA_RULES` for :func:`default_gamma`.
    """
    e, c = _check_pair(errors, costs)
    g = resolve_gamma(e, c, gamma)
    return {n: e[n] + g / c[n] for n in e}
