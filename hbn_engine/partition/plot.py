"""A Figure-2-style plot: metric per layer (star = WeightBinConv, square = FullBinConv) and,
optionally, the gamma bands over which Algorithm 1's pick stays the same."""
from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Collection, Mapping, Sequence
from typing import Optional

from hbn_engine.partition.algorithm import validate_metrics
from hbn_engine.partition.bands import GammaBand

__all__ = ["plot_metrics"]


def _band_label(band: GammaBand) -> str:
    return "+".join(band.weight_binary) or "none"


def _draw_bands(ax, bands: Sequence[GammaBand], gamma: Optional[float],  # type: ignore[no-untyped-def]
                rules: Mapping[str, float]) -> None:
    # Log axis: the first band starts at gamma = 0 and the last ends at infinity, so both are
    # drawn one decade beyond the outermost finite boundary.
    finite = [b.lo for b in bands if b.lo > 0] + [v for v in rules.values() if v > 0]
    if gamma:
        finite.append(gamma)
    lo = min(finite) / 10 if finite else 1e-3
    hi = max(finite) * 10 if finite else 1e3
    colours = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
               "#ff9da7", "#9c755f", "#bab0ac"]
    span = math.log10(hi / lo)
    colour_of: dict[tuple[str, ...], str] = {}  # one colour per pick, also for split bands
    for i, b in enumerate(bands):
        x0 = max(b.lo, lo)
        x1 = hi if math.isinf(b.hi) else b.hi
        if x1 <= x0:
            continue
        colour = colour_of.setdefault(b.weight_binary, colours[len(colour_of) % len(colours)])
        ax.axvspan(x0, x1, color=colour, alpha=0.35, lw=0)
        narrow = math.log10(x1 / x0) < 0.12 * span  # label would spill over its neighbours
        ax.text(math.sqrt(x0 * x1), 0.5 if narrow else 0.5 + 0.25 * ((i % 3) - 1),
                _band_label(b), ha="center", va="center", fontsize=5 if narrow else 6,
                rotation=90 if narrow else 0)
    for name, g in rules.items():
        if g > 0:
            ax.axvline(g, color="0.3", lw=0.8, ls=":")
            ax.text(g, 0.02, name, fontsize=6, rotation=90, va="bottom", ha="right")
    if gamma and gamma > 0:
        ax.axvline(gamma, color="k", lw=1.5)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_xlabel("gamma (bands: WeightBin pick of Algorithm 1; solid line: gamma used)",
                  fontsize=7)


def plot_metrics(metrics: Mapping[str, float], weight_binary: Collection[str],
                 path: str | os.PathLike[str], *, title: str | None = None,
                 bands: Sequence[GammaBand] | None = None, gamma: float | None = None,
                 rule_gammas: Mapping[str, float] | None = None) -> str:
    """Save the metric of each layer (in mapping order) to ``path`` (format from the suffix).

    Layers in ``weight_binary`` are drawn as stars (kept float input), the others as squares
    (FullBinConv), as in the paper's Figure 2. With ``bands`` (from
    :func:`~hbn_engine.partition.gamma_bands`) a second panel shows, on a log gamma axis, which
    layers Algorithm 1 picks in each band, the ``gamma`` used and the gammas of the
    ``rule_gammas`` rules. Needs matplotlib; uses the Agg backend so it works without a display.
    Returns the path written.
    """
    vals = validate_metrics(metrics)
    unknown = set(weight_binary) - set(vals)
    if unknown:
        raise ValueError(f"weight_binary names layers without a metric: {sorted(unknown)}")
    try:
        import matplotlib  # noqa: PLC0415 (optional dependency)
        matplotlib.use("Agg", force=True)
        from matplotlib import pyplot as plt  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError("plot_metrics needs matplotlib (pip install matplotlib)") from exc
    names = list(vals)
    xs = list(range(1, len(names) + 1))
    width = max(5.0, 0.45 * len(names) + 2)
    if bands:
        fig, (ax, axb) = plt.subplots(2, 1, figsize=(width, 4.8),
                                      gridspec_kw={"height_ratios": [3, 1.2]})
    else:
        fig, ax = plt.subplots(figsize=(width, 3.2))
    try:
        ax.plot(xs, [vals[n] for n in names], color="0.6", lw=1, zorder=1)
        for kind, marker, label in (("fbin", "s", "FullBinConv"), ("wbin", "*", "WeightBinConv")):
            pick = [i for i, n in enumerate(names) if (n in weight_binary) == (kind == "wbin")]
            if pick:
                ax.scatter([xs[i] for i in pick], [vals[names[i]] for i in pick], marker=marker,
                           s=140 if marker == "*" else 50, label=label, zorder=2)
        ax.set_xticks(xs)
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("metric M = E + gamma / cost", fontsize=8)
        ax.set_title(textwrap.fill(title or "Binarization-error metric per layer", 80), fontsize=8)
        ax.legend(fontsize=8)
        if bands:
            _draw_bands(axb, bands, gamma, dict(rule_gammas or {}))
        fig.tight_layout()
        fig.savefig(os.fspath(path), dpi=120)
    finally:
        plt.close(fig)
    return os.fspath(path)
