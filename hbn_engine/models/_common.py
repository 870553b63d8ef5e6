"""Shared pieces of the model zoo: layer kinds, per-layer unit builders, validation."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Optional

from torch import nn

from hbn_engine.nn import FullBinConv2d, FullBinLinear, WeightBinConv2d, WeightBinLinear

KINDS = ("fprec", "wbin", "fbin")
Unit = list[tuple[str, nn.Module]]


def conv_unit(name: str, kind: str, cin: int, cout: int, kernel: int, stride: int = 1,
              padding: int = 0, *, relu: bool = True, classifier: bool = False) -> Unit:
    """One configurable convolution and the float modules that complete its block.

    Hidden layers follow the paper's blocks: Conv-BN-ReLU (fprec), WeightBinConv (conv-BN-ReLU
    inside the module) and FullBinConv (BN-sign-conv-ReLU inside the module), without bias
    ("We do not use a bias term ... for FullBinConv and WeightBinConv layers"; a float conv
    followed by BN does not need one either). A classifier conv has a bias and no BN, since no
    normalisation follows it to provide the per-class offset.
    The configurable module is always the first entry and is named ``name``; float siblings
    are ``name_bn`` / ``name_relu``.
    """
    act = "relu" if relu else None
    bias = classifier
    if kind == "fprec":
        unit: Unit = [(name, nn.Conv2d(cin, cout, kernel, stride, padding, bias=bias))]
        if not classifier:
            unit.append((f"{name}_bn", nn.BatchNorm2d(cout)))
        if relu:
            unit.append((f"{name}_relu", nn.ReLU()))
        return unit
    if kind == "wbin":
        return [(name, WeightBinConv2d(cin, cout, kernel, stride, padding, bias=bias,
                                       bn=not classifier, activation=act))]
    if kind == "fbin":
        return [(name, FullBinConv2d(cin, cout, kernel, stride, padding, bias=bias,
                                     activation=act))]
    raise ValueError(f"unknown layer kind {kind!r} for {name!r}; expected one of {KINDS}")


def linear_unit(name: str, kind: str, fin: int, fout: int, *, classifier: bool = False) -> Unit:
    """A configurable fully connected layer (hidden: X-BN-ReLU; classifier: bias, no BN/ReLU)."""
    if kind == "fprec":
        if classifier:
            return [(name, nn.Linear(fin, fout, bias=True))]
        return [(name, nn.Linear(fin, fout, bias=False)), (f"{name}_bn", nn.BatchNorm1d(fout)),
                (f"{name}_relu", nn.ReLU())]
    act = None if classifier else "relu"
    if kind == "wbin":
        return [(name, WeightBinLinear(fin, fout, bias=classifier, bn=not classifier,
                                       activation=act))]
    if kind == "fbin":
        return [(name, FullBinLinear(fin, fout, bias=classifier, activation=act))]
    raise ValueError(f"unknown layer kind {kind!r} for {name!r}; expected one of {KINDS}")


class HBNSequential(nn.Sequential):
    """A zoo model: an ``nn.Sequential`` whose children carry the paper's layer names.

    ``hbn_layers`` maps every configurable layer (qualified module name) to the kind built
    ("fprec" | "wbin" | "fbin"), in forward order; ``input_size`` is (C, H, W) of one image.
    """

    hbn_layers: dict[str, str]
    input_size: tuple[int, int, int]
    arch: str
    variant: str

    def __init__(self, modules: Unit) -> None:
        super().__init__(OrderedDict(modules))


def resolve_kinds(arch: str, names: list[str], defaults: Mapping[str, Mapping[str, str]],
                  variant: str, layers: Optional[Mapping[str, str]]) -> dict[str, str]:
    """The kind of every layer: the variant's defaults overridden by ``layers``."""
    if not isinstance(variant, str) or variant not in defaults:
        raise ValueError(f"unknown variant {variant!r} for {arch}; expected one of "
                         f"{sorted(defaults)}")
    kinds = dict(defaults[variant])
    if layers is None:
        return kinds
    if not isinstance(layers, Mapping):
        raise TypeError(f"layers must be a mapping of layer name -> kind, got "
                        f"{type(layers).__name__}")
    unknown = [n for n in layers if n not in kinds]
    if unknown:
        raise ValueError(f"unknown layer name(s) for {arch}: {unknown}; valid names: {names}")
    bad = {n: k for n, k in layers.items() if k not in KINDS}
    if bad:
        raise ValueError(f"unknown layer kind(s) {bad}; expected one of {KINDS}")
    first = names[0]
    if layers.get(first, "fprec") != "fprec":
        raise ValueError(f"the first layer {first!r} of {arch} is always 'fprec' (the paper never "
                         f"binarizes it), got {layers[first]!r}")
    kinds.update(layers)
    return kinds


def check_num_classes(num_classes: int) -> int:
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return num_classes


def uniform(names: list[str], kind: str, last: str) -> dict[str, str]:
    """First layer fprec, the last ``last``, everything in between ``kind``."""
    return {n: ("fprec" if i == 0 else last if i == len(names) - 1 else kind)
            for i, n in enumerate(names)}
