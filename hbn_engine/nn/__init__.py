"""Binary layers for hybrid binary networks (needs torch).

``FullBinConv2d`` / ``FullBinLinear`` binarize inputs and weights (XNOR-Net blocks),
``WeightBinConv2d`` / ``WeightBinLinear`` binarize the weights only (BWN blocks). Their eval
forward is the exact computation the engine reproduces; see :mod:`hbn_engine.nn.layers`.
"""
from __future__ import annotations

from hbn_engine.nn.layers import (
    BINARY_LAYERS,
    BinActive,
    FullBinConv2d,
    FullBinLinear,
    WeightBinConv2d,
    WeightBinLinear,
    binarize,
)

__all__ = [
    "BINARY_LAYERS",
    "BinActive",
    "FullBinConv2d",
    "FullBinLinear",
    "WeightBinConv2d",
    "WeightBinLinear",
    "binarize",
]
