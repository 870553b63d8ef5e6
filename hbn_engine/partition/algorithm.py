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


class _Segmenter:
    """Exact 1-D k-means for every k up to a limit, sharing one dynamic programme.

    Optimal 1-D clusters are contiguous runs of the sorted distinct values (weighted by
    multiplicity); row c of the table holds the best SSE of every prefix split into c runs, and
    row c only needs row c - 1, so asking for k = 2, 3, ... (as Algorithm 1 does) costs one more
    row each instead of a fresh programme.
    """

    def __init__(self, values: Sequence[float]) -> None:
        vals = [float(v) for v in values]
        if any(not math.isfinite(v) for v in vals):
            raise ValueError("kmeans_1d: values must be finite")
        self.values = vals
        self.distinct = sorted(set(vals))
        weight = {v: 0 for v in self.distinct}
        for v in vals:
            weight[v] += 1
        m = len(self.distinct)
        # Weighted prefix sums over the distinct values: SSE of a contiguous run in O(1).
        self._w = [0.0] * (m + 1)
        self._s = [0.0] * (m + 1)
        self._s2 = [0.0] * (m + 1)
        for i, v in enumerate(self.distinct):
            c = weight[v]
            self._w[i + 1] = self._w[i] + c
            self._s[i + 1] = self._s[i] + c * v
            self._s2[i + 1] = self._s2[i] + c * v * v
        inf = float("inf")
        # cost[c][j]: best SSE of distinct[:j] in c runs; start[c][j]: where the last run begins.
        self._cost = [[0.0] + [inf] * m]
        self._start = [[0] * (m + 1)]

    def _sse(self, i: int, j: int) -> float:  # run distinct[i:j]
        cnt = self._w[j] - self._w[i]
        tot = self._s[j] - self._s[i]
        return max(0.0, (self._s2[j] - self._s2[i]) - tot * tot / cnt)

    def _grow(self, k: int) -> None:
        m = len(self.distinct)
        inf = float("inf")
        while len(self._cost) <= k:
            c = len(self._cost)
            prev = self._cost[c - 1]
            row, start = [inf] * (m + 1), [0] * (m + 1)
            for j in range(c, m + 1):
                best, arg = inf, c - 1
                # Ties keep the earliest split point, so the answer is reproducible bit for bit.
                for i in range(c - 1, j):
                    v = prev[i] + self._sse(i, j)
                    if v < best:
                        best, arg = v, i
                row[j], start[j] = best, arg
            self._cost.append(row)
            self._start.append(start)

    def labels(self, n_clusters: int) -> list[int]:
        if not self.values:
            return []
        k = min(n_clusters, len(self.distinct))
        self._grow(k)
        label_of: dict[float, int] = {}
        j = len(self.distinct)
        for c in range(k, 0, -1):
            i = self._start[c][j]
            for t in range(i, j):
                label_of[self.distinct[t]] = c - 1
            j = i
        return [label_of[v] for v in self.values]


def kmeans_1d(values: Sequence[float], n_clusters: int) -> list[int]:
    """Globally optimal 1-D k-means; returns a cluster label per value.

    Labels are ordered by cluster mean (0 = lowest). Equal values always share a cluster, so the
    result does not depend on the order of ``values``. If there are fewer distinct values than
    ``n_clusters``, every distinct value gets its own cluster.
    """
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    return _Segmenter(values).labels(n_clusters)


def partition(metrics: Mapping[str, float], ratio: float) -> list[str]:
    """Algorithm 1: the layers to turn into WeightBinConv (their inputs stay float).

    ``metrics`` maps each candidate layer (the FullBin layers of the trained FBin model, see
    :func:`hbn_engine.partition.analyze`) to its metric M. For N = 2..P (P = number of
    candidates), the metrics are split
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
    seg = _Segmenter(values)
    for n in range(2, p + 1):
        labels = seg.labels(n)
        top = max(labels)
        chosen = [name for name, lab in zip(names, labels) if lab == top]
        if len(chosen) / p <= r:
            return chosen
        if n >= n_distinct:
            break  # more clusters cannot split equal values any further
    return []
