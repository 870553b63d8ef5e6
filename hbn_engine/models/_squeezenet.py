"""SqueezeNet 1.0 (Iandola et al.; torchvision's layout, ceil-mode pooling), 224x224 input.

At 224 conv1 gives 109x109, which is what Table 11's conv1 FLOPs (16.77e7) count.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from hbn_engine.models._common import Unit, conv_unit, uniform

INPUT_SIZE = (3, 224, 224)
# fire name: (in, squeeze, expand1x1, expand3x3)
_FIRES = {
    "fire2": (96, 16, 64, 64), "fire3": (128, 16, 64, 64), "fire4": (128, 32, 128, 128),
    "fire5": (256, 32, 128, 128), "fire6": (256, 48, 192, 192), "fire7": (384, 48, 192, 192),
    "fire8": (384, 64, 256, 256), "fire9": (512, 64, 256, 256),
}
_PARTS = ("squeeze", "expand1x1", "expand3x3")
NAMES = ["conv1"] + [f"{f}.{p}" for f in _FIRES for p in _PARTS] + ["conv10"]


def _uniform(kind: str) -> dict[str, str]:
    # conv10 is weight-binarized whenever anything is: Table 11's Bin column counts it at 1/32,
    # its FBin FLOPs stay full, and Table 7 gives WBin, FBin and Hybrid the same 23.7x.
    last = "fprec" if kind == "fprec" else "wbin"
    return uniform(NAMES, kind, last)


def _hybrid() -> dict[str, str]:
    # Table 11 Hybrid column (and Figure 2's text): fire2 and fire9 entirely and every squeeze
    # layer WeightBinConv; the expand layers of fire3-fire8 FullBinConv.
    kinds = _uniform("fbin")
    for n in NAMES[1:-1]:
        fire, part = n.split(".")
        if fire in ("fire2", "fire9") or part == "squeeze":
            kinds[n] = "wbin"
    return kinds


DEFAULTS = {
    "fprec": _uniform("fprec"),
    "wbin": _uniform("wbin"),
    "fbin": _uniform("fbin"),
    "hybrid": _hybrid(),
}


class Fire(nn.Module):
    """squeeze 1x1 -> (expand 1x1 | expand 3x3), concatenated along channels."""

    def __init__(self, prefix: str, kinds: dict[str, str], cin: int, s: int, e1: int,
                 e3: int) -> None:
        super().__init__()
        units = [conv_unit("squeeze", kinds[f"{prefix}.squeeze"], cin, s, 1),
                 conv_unit("expand1x1", kinds[f"{prefix}.expand1x1"], s, e1, 1),
                 conv_unit("expand3x3", kinds[f"{prefix}.expand3x3"], s, e3, 3, 1, 1)]
        for unit in units:
            for name, module in unit:
                self.add_module(name, module)
        self._squeeze, self._e1, self._e3 = (tuple(n for n, _ in u) for u in units)

    def forward(self, x: Tensor) -> Tensor:
        for name in self._squeeze:
            x = getattr(self, name)(x)
        a = x
        for name in self._e1:
            a = getattr(self, name)(a)
        b = x
        for name in self._e3:
            b = getattr(self, name)(b)
        return torch.cat([a, b], 1)


def build(kinds: dict[str, str], num_classes: int) -> Unit:
    mods: Unit = [*conv_unit("conv1", kinds["conv1"], 3, 96, 7, 2, 0),
                  ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True))]
    for fire, (cin, s, e1, e3) in _FIRES.items():
        mods.append((fire, Fire(fire, kinds, cin, s, e1, e3)))
        if fire in ("fire4", "fire8"):
            mods.append((f"pool{fire[-1]}", nn.MaxPool2d(3, 2, ceil_mode=True)))
    mods += [
        # "a dropout of 0.2 before the last layer in SqueezeNet" (appendix B.2)
        ("drop10", nn.Dropout(0.2)),
        # torchvision's classifier: conv10 -> ReLU -> global average pool
        *conv_unit("conv10", kinds["conv10"], 512, num_classes, 1, classifier=True),
        ("avgpool", nn.AdaptiveAvgPool2d(1)),
        ("flatten", nn.Flatten()),
    ]
    return mods
