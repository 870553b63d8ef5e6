"""Figures quoted from the paper, kept in one place so the report cites them consistently."""
from __future__ import annotations

# XNOR-Net's measured binary-vs-float convolution speedup, which the paper's FLOP model uses:
# one FullBinConv FLOP counts as 1/58 of a float FLOP.
XNOR_NET_SPEEDUP = 58.0

# Totals of the FLOPs columns of the paper's appendix Tables 8-11 (units of 10 MFLOPs).
PAPER_FLOP_TOTALS: dict[str, dict[str, float]] = {
    "alexnet": {"fprec": 113.53, "wbin": 78.01, "fbin": 12.11, "hybrid": 17.47},
    "sketchanet": {"fprec": 60.84, "wbin": 40.68, "fbin": 7.89, "hybrid": 8.54},
    "resnet18": {"fprec": 181.41, "wbin": 103.02, "fbin": 13.42, "hybrid": 35.89},
    "squeezenet": {"fprec": 61.09, "wbin": 41.26, "fbin": 9.22, "hybrid": 16.40},
}

# The speedup the paper's FLOP model predicts for each variant: FPrec FLOPs / variant FLOPs.
PAPER_FLOP_SPEEDUPS: dict[str, dict[str, float]] = {
    arch: {v: t["fprec"] / t[v] for v in t} for arch, t in PAPER_FLOP_TOTALS.items()
}
