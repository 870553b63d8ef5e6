"""Algorithm 1 of the hybrid-binary paper: choose the layers whose inputs stay float.

The clustering is exact 1-D k-means (dynamic programming over the sorted distinct values), not
Lloyd's iteration: Lloyd's answer depends on its seeds, and the algorithm must give the same
partition for the same metrics every time, whatever order the layers are listed in.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["kmeans_1d", "partition", "validate_metrics"]


def validate_metrics(metrics: Mapping[str, float], what: str = "metrics") -> dict[str, float]:
    """Check a layer -> value mapping (non-empty, string keys, finite numbers); return a copy."""
    if not isinstance(metrics, Mapping):
        raise TypeError(f"{what} must be a mapping of layer name -> float, got {type(metrics).__name__}")
    if len(metrics) == 0:
        raise ValueError(f"{what} is empty: there are no layers to partition")
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"{what}: layer names must be str, got {name!r}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{what}[{name!r}] is not a number: {value!r}") from None
        if not math.isfinite(v):
            raise ValueError(f"{what}[{name!r}] is not finite ({v}); binarization errors and "
                             "costs must be finite")
        out[name] = v
    return out


def kmeans_1d(values: Sequence[float], n_clusters: int) -> list[int]:
    """Globally optimal 1-D k-means; returns a cluster label per value.

    Labels are ordered by cluster mean (0 = lowest). Equal values always share a cluster, so the
    result does not depend on the order of ``values``. If there are fewer distinct values than
    ``n_clusters``, every distinct value gets its own cluster.
    """
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    vals = [float(v) for v in values]
    if not vals:
        return []
    if any(not math.isfinite(v) for v in vals):
        raise ValueError("kmeans_1d: values must be finite")
    distinct = sorted(set(vals))
    weight = {v: 0 for v in distinct}
    for v in vals:
        weight[v] += 1
    m = len(distinct)
    k = min(n_clusters, m)
    # Weighted prefix sums over the distinct values: SSE of a contiguous run in O(1).
    w = [0.0] * (m + 1)
    s = [0.0] * (m + 1)
    s2 = [0.0] * (m + 1)
    for i, v in enumerate(distinct):
        c = weight[v]
        w[i + 1] = w[i] + c
        s[i + 1] = s[i] + c * v
        s2[i + 1] = s2[i] + c * v * v

    def sse(i: int, j: int) -> float:  # run distinct[i:j]
        cnt = w[j] - w[i]
        tot = s[j] - s[i]
        return max(0.0, (s2[j] - s2[i]) - tot * tot / cnt)

    inf = float("inf")
    # cost[c][j]: best SSE of distinct[:j] split into c runs; start[c][j]: where the last run begins.
    cost = [[inf] * (m + 1) for _ in range(k + 1)]
    start = [[0] * (m + 1) for _ in range(k + 1)]
    cost[0][0] = 0.0
    for c in range(1, k + 1):
        for j in range(c, m + 1):
            best, arg = inf, c - 1
            # Ties keep the earliest split point, so the answer is reproducible bit for bit.
            for i in range(c - 1, j):
                v = cost[c - 1][i] + sse(i, j)
                if v < best:
                    best, arg = v, i
            cost[c][j], start[c][j] = best, arg
    label_of: dict[float, int] = {}
    j = m
    for c in range(k, 0, -1):
        i = start[c][j]
        for t in range(i, j):
            label_of[distinct[t]] = c - 1
        j = i
    return [label_of[v] for v in vals]


def partition(metrics: Mapping[str, float], ratio: float) -> list[str]:
    """Algorithm 1: the layers to turn into WeightBinConv (their inputs stay float).

    ``metrics`` maps each candidate layer (every configurable layer except the first, which stays
    full precision) to its metric M. For N = 2..P (P = number of layers), the metrics are split
    into N clusters by exact 1-D k-means; at the first N where the highest-mean cluster holds K
    layers with K / P <= ``ratio`` (the hybridization ratio R), that cluster is returned. If no N
    qualifies (P < 2, R < 1/P, or the top value is shared by too many layers) nothing is
    converted and the list is empty. Names come back in the order of ``metrics``.
    """
    vals = validate_metrics(metrics)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise TypeError(f"ratio must be a float in [0, 1], got {ratio!r}")
    r = float(ratio)
    if not math.isfinite(r) or r < 0.0 or r > 1.0:
        raise ValueError(f"ratio (hybridization ratio R) must be in [0, 1], got {ratio!r}")
    names = list(vals)
    values = [vals[n] for n in names]
    p = len(names)
    n_distinct = len(set(values))
    for n in range(2, p + 1):
        labels = kmeans_1d(values, n)
        top = max(labels)
        chosen = [name for name, lab in zip(names, labels) if lab == top]
        if len(chosen) / p <= r:
            return chosen
        if n >= n_distinct:
            break  # more clusters cannot split equal values any further
    return []
