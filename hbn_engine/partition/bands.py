"""How sensitive Algorithm 1's pick is to gamma: the gamma intervals over which it stays the same.

With M_i(gamma) = E_i + gamma / cost_i every metric is linear in gamma, so the pick of
:func:`~hbn_engine.partition.partition` is piecewise constant in gamma. Its breakpoints are where
two metrics cross (known exactly) or where the optimal k-means segmentation for some N changes
(SSE of two segmentations equal: roots of quadratics in gamma, one set per segmentation pair).
Rather than enumerate those, the pick is evaluated on a log grid that also holds every crossing,
and each change between neighbouring grid points is located by bisection.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hbn_engine.partition.algorithm import partition
from hbn_engine.partition.metric import GAMMA_RULES, _check_pair, default_gamma

__all__ = ["GammaBand", "band_of", "gamma_bands", "rule_gammas"]


@dataclass(frozen=True)
class GammaBand:
    """Every gamma in [lo, hi) gives the same pick (hi = inf for the last band)."""

    lo: float
    hi: float
    weight_binary: tuple[str, ...]

    @property
    def decades(self) -> float:
        """Width of the band in decades of gamma (inf for the first and the last band)."""
        if self.lo <= 0 or math.isinf(self.hi):
            return math.inf
        return math.log10(self.hi / self.lo)


def rule_gammas(errors: Mapping[str, float], costs: Mapping[str, float]) -> dict[str, float]:
    """gamma under every rule of :data:`GAMMA_RULES`."""
    return {r: default_gamma(errors, costs, r) for r in GAMMA_RULES}


def band_of(bands: Sequence[GammaBand], gamma: float) -> GammaBand:
    """The band holding ``gamma``."""
    for b in bands:
        if b.lo <= gamma < b.hi:
            return b
    raise ValueError(f"gamma {gamma!r} is outside the bands (must be finite and >= 0)")


def gamma_bands(errors: Mapping[str, float], costs: Mapping[str, float], ratio: float, *,
                steps_per_decade: int = 40, rel_tol: float = 1e-6) -> list[GammaBand]:
    """The intervals of gamma in [0, inf) over which Algorithm 1 picks the same layers.

    The grid spans from where every cost term is 1e-3 of the smallest gap between two errors
    (below it the pick is the error-only pick) to where the cost terms differ by 1e3 times the
    whole error spread (above it, the cost-only pick), ``steps_per_decade`` points a decade,
    plus every gamma at which two metrics cross. A band narrower than one grid step that is not
    bounded by a crossing can be missed; boundaries are exact to ``rel_tol`` (relative).
    """
    e, c = _check_pair(errors, costs)
    if steps_per_decade < 1 or not 0 < rel_tol < 1:
        raise ValueError("steps_per_decade must be >= 1 and rel_tol in (0, 1)")
    names = list(e)
    inv = {n: 1.0 / c[n] for n in names}
    memo: dict[float, tuple[str, ...]] = {}

    def pick(g: float) -> tuple[str, ...]:
        if g not in memo:
            memo[g] = tuple(partition({n: e[n] + g * inv[n] for n in names}, ratio))
        return memo[g]

    ev = sorted(set(e.values()))
    iv = sorted(set(inv.values()))
    if len(iv) < 2:  # equal costs: gamma shifts every metric alike and never changes the pick
        return [GammaBand(0.0, math.inf, pick(0.0))]
    gaps_e = [b - a for a, b in zip(ev, ev[1:])]
    gaps_i = [b - a for a, b in zip(iv, iv[1:])]
    lo = 1e-3 * (min(gaps_e) if gaps_e else 1.0) / iv[-1]
    hi = 1e3 * (ev[-1] - ev[0] if gaps_e else 1.0) / min(gaps_i)
    hi = max(hi, lo * 10)
    n = max(2, int(math.ceil(math.log10(hi / lo) * steps_per_decade)) + 1)
    grid = {lo * (hi / lo) ** (k / (n - 1)) for k in range(n)}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if inv[a] != inv[b]:
                g = (e[b] - e[a]) / (inv[a] - inv[b])
                if lo < g < hi:
                    grid.update((g * (1 - 1e-9), g, g * (1 + 1e-9)))
    points = [0.0, *sorted(grid)]
    floor = lo * rel_tol  # a change closer to 0 than this is reported at this gamma

    def first_change(a: float, b: float) -> float:
        """Smallest gamma in (a, b] whose pick differs from pick(a), to rel_tol."""
        target = pick(a)
        while b - a > rel_tol * b and b > floor:
            mid = math.sqrt(a * b) if a > 0 else b / 2
            if a > 0 and not a < mid < b:
                break
            if pick(mid) == target:
                a = mid
            else:
                b = mid
        return b

    edges: list[float] = []
    for a, b in zip(points, points[1:]):
        while pick(a) != pick(b):
            a = first_change(a, b)
            edges.append(a)
    bounds = [0.0, *edges, math.inf]
    return [GammaBand(x, y, pick(x)) for x, y in zip(bounds, bounds[1:])]
