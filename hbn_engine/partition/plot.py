"""A Figure-2-style plot: metric per layer, star = WeightBinConv, square = FullBinConv."""
from __future__ import annotations

import os
from collections.abc import Collection, Mapping

from hbn_engine.partition.algorithm import validate_metrics

__all__ = ["plot_metrics"]


def plot_metrics(metrics: Mapping[str, float], weight_binary: Collection[str],
                 path: str | os.PathLike[str], *, title: str | None = None) -> str:
    """Save the metric of each layer (in mapping order) to ``path`` (format from the suffix).

    Layers in ``weight_binary`` are drawn as stars (kept float input), the others as squares
    (FullBinConv), as in the paper's Figure 2. Needs matplotlib; uses the Agg backend so it works
    without a display. Returns the path written.
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
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * len(names) + 2), 3.2))
    try:
        ax.plot(xs, [vals[n] for n in names], color="0.6", lw=1, zorder=1)
        for kind, marker, label in (("fbin", "s", "FullBinConv"), ("wbin", "*", "WeightBinConv")):
            pick = [i for i, n in enumerate(names) if (n in weight_binary) == (kind == "wbin")]
            if pick:
                ax.scatter([xs[i] for i in pick], [vals[names[i]] for i in pick], marker=marker,
                           s=140 if marker == "*" else 50, label=label, zorder=2)
        ax.set_xticks(xs)
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("metric M = E + gamma / cost")
        ax.set_title(title or "Binarization-error metric per layer", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.fspath(path), dpi=120)
    finally:
        plt.close(fig)
    return os.fspath(path)
