"""Selection strategies besides Algorithm 1: a MixBin-style budget and layer-wise priority."""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import torch
from torch import nn

from hbn_engine.partition.algorithm import validate_metrics

__all__ = [
    "BinReLU",
    "assignment_from_selection",
    "budgeted_selection",
    "layerwise_priority",
]

KINDS = ("fprec", "wbin", "fbin")


def _check_fraction(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number in [0, 1], got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0.0 or v > 1.0:
        raise ValueError(f"{what} must be in [0, 1], got {value!r}")
    return v


def _check_costs(names: Sequence[str], costs: Mapping[str, float]) -> dict[str, float]:
    c = validate_metrics(costs, "costs")
    missing = [n for n in names if n not in c]
    if missing:
        raise ValueError(f"costs lack layers {missing}")
    bad = [n for n in names if c[n] <= 0]
    if bad:
        raise ValueError(f"costs must be > 0; got <= 0 for {bad}")
    return {n: c[n] for n in names}


def _budget(total: float, binary_fraction: float | None, max_cost: float | None) -> float:
    """Cost the float-input (WeightBin) layers may use in all."""
    if (binary_fraction is None) == (max_cost is None):
        raise ValueError("give exactly one of binary_fraction (share of cost kept binary) "
                         "and max_cost (absolute cost allowed for float-input layers)")
    if binary_fraction is not None:
        return (1.0 - _check_fraction(binary_fraction, "binary_fraction")) * total
    m = float(max_cost)  # type: ignore[arg-type]
    if not math.isfinite(m) or m < 0:
        raise ValueError(f"max_cost must be finite and >= 0, got {max_cost!r}")
    return m


def budgeted_selection(errors: Mapping[str, float], costs: Mapping[str, float], *,
                       binary_fraction: float | None = None,
                       max_cost: float | None = None) -> list[str]:
    """MixBin-style budgeted binarization: which layers keep float inputs under a budget.

    ``costs`` is what keeping a layer's input float costs (its FLOPs, or measured seconds).
    The budget is either ``binary_fraction`` (at least this share of the total cost stays fully
    binary) or ``max_cost`` (the float-input layers may cost at most this much, e.g. a latency in
    seconds). Greedy knapsack: layers are taken by binarization error per unit cost, highest
    first, each one only if it still fits (so a cheap layer further down the list can fill the
    remainder). Ties go to the earlier layer. Returns the WeightBin layers in ``errors`` order.
    """
    e = validate_metrics(errors, "errors")
    names = list(e)
    c = _check_costs(names, costs)
    budget = _budget(sum(c.values()), binary_fraction, max_cost)
    order = sorted(range(len(names)), key=lambda i: (-e[names[i]] / c[names[i]], i))
    used = 0.0
    chosen: set[str] = set()
    for i in order:
        n = names[i]
        # A relative slack absorbs rounding in (1 - fraction) * total when the budget is exact.
        if used + c[n] <= budget * (1 + 1e-12):
            chosen.add(n)
            used += c[n]
    return [n for n in names if n in chosen]


def layerwise_priority(layers: Sequence[str], costs: Mapping[str, float], *,
                       binary_fraction: float) -> list[str]:
    """Layer-wise priority (Zhuang et al. 2017): binarize in inverse order of depth.

    ``layers`` are the candidates from shallowest to deepest. Starting at the deepest, layers are
    made fully binary until their share of the total cost reaches ``binary_fraction``; the rest
    keep float inputs. Returns those (WeightBin) layers, in ``layers`` order.
    """
    names = list(layers)
    if not names:
        raise ValueError("layers is empty")
    if len(set(names)) != len(names):
        raise ValueError("layers contains duplicates")
    c = _check_costs(names, costs)
    target = _check_fraction(binary_fraction, "binary_fraction") * sum(c.values())
    binary: set[str] = set()
    done = 0.0
    for n in reversed(names):
        if done >= target * (1 - 1e-12):
            break
        binary.add(n)
        done += c[n]
    return [n for n in names if n not in binary]


def assignment_from_selection(kinds: Mapping[str, str],
                              weight_binary: Collection[str]) -> dict[str, str]:
    """A ``layers=`` mapping for the zoo builders: the model's own ``kinds`` (layer -> "fprec" /
    "wbin" / "fbin", e.g. :func:`~hbn_engine.partition.layer_kinds` of the FBin model) with the
    selected layers made "wbin". Every other layer keeps its kind: a float classifier stays
    float, a FullBin layer stays FullBin."""
    if not isinstance(kinds, Mapping):
        raise TypeError("kinds must be a mapping layer -> kind (e.g. partition.layer_kinds(model)),"
                        f" got {type(kinds).__name__}")
    if not kinds:
        raise ValueError("kinds is empty")
    bad = {n: k for n, k in kinds.items() if k not in KINDS}
    if bad:
        raise ValueError(f"unknown kinds {bad}; expected one of {KINDS}")
    if isinstance(weight_binary, str):
        raise TypeError("weight_binary must be a collection of layer names, not one string")
    sel = set(weight_binary)
    unknown = sel - set(kinds)
    if unknown:
        raise ValueError(f"selected layers are not in the model: {sorted(unknown)}")
    return {n: ("wbin" if n in sel else k) for n, k in kinds.items()}


class BinReLU(nn.Module):
    """BinReLU(x) = min(max(x, 0), 1): a ReLU clipped to the range of a binary activation.

    The MixBin abstract names BinReLU without defining it; this is our definition (docs/
    partition.md). It keeps the ReLU's sparsity for the full-precision parts while bounding their
    outputs to [0, 1] like the {0, 1} bits the binary parts see, and its gradient (1 on (0, 1),
    0 elsewhere) matches the straight-through window, so float and binary components are trained
    under the same activation statistics.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, 0.0, 1.0)
