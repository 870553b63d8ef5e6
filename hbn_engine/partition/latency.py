"""Per-layer costs measured in the engine, for the latency-aware metric."""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

__all__ = ["engine_layer_costs"]


def _best_time(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: first-touch of buffers, thread pool start
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def engine_layer_costs(build: Callable[[Mapping[str, str]], nn.Module],
                       layers: Union[Mapping[str, str], Sequence[str]],
                       example: np.ndarray, *, repeats: int = 5,
                       num_threads: int = 1, floor: float = 1e-3,
                       workdir: Optional[str] = None) -> dict[str, float]:
    """Engine seconds it costs to keep each layer's input float.

    ``build(assignment)`` must return a model for a ``{layer: kind}`` mapping (a zoo builder
    with ``layers=``, or ``demo.mini_sketchanet``). ``layers`` is the FBin model's kinds
    (layer -> kind, e.g. :func:`~hbn_engine.partition.layer_kinds`): that model is the baseline
    and its "fbin" layers are the candidates. A plain sequence of layer names means the first
    layer float and all others FullBin. For every candidate L the model with only L made
    WeightBin is exported and timed on ``example`` (float32 NCHW), and the cost of L is the
    difference to the baseline (best of ``repeats`` runs each). The
    weights are whatever ``build`` initialises: timing does not depend on them. Differences
    below ``floor`` times the baseline time (timing noise) are clamped to that floor, since a
    cost must be positive.
    """
    try:
        from hbn_engine.exporter import export  # noqa: PLC0415
        from hbn_engine.runtime import load  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError("engine_layer_costs needs the hbn_engine runtime and exporter") from exc
    if isinstance(layers, Mapping):
        base = dict(layers)
    else:
        base = {n: ("fprec" if i == 0 else "fbin") for i, n in enumerate(layers)}
    candidates = [n for n, k in base.items() if k == "fbin"]
    if len(base) < 2 or not candidates:
        raise ValueError("need the first layer and at least one FullBin candidate layer")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    x = np.ascontiguousarray(np.asarray(example, dtype=np.float32))
    if x.ndim != 4 or x.shape[0] < 1:
        raise ValueError(f"example must be a float32 NCHW batch, got shape {x.shape}")

    def timed(assignment: Mapping[str, str], path: str) -> float:
        model = build(assignment)
        model.eval()
        export(model, torch.from_numpy(x[:1]), path)
        engine = load(path)
        engine.num_threads = num_threads
        return _best_time(lambda: engine.run(x), repeats)

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        t_base = timed(base, os.path.join(tmp, "base.hbn"))
        costs = {}
        for n in candidates:
            t = timed({**base, n: "wbin"}, os.path.join(tmp, f"{n}.hbn"))
            costs[n] = max(t - t_base, floor * t_base)
    return costs
