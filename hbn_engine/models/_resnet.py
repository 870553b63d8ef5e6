"""ResNet-18 (He et al.; torchvision's layout), 224x224 input.

Every 3x3 conv and the 1x1 stride-2 shortcut ("downsample") convs of layer2-4 are configurable:
Table 10 lists the shortcuts as their own rows (Conv8 etc.) with their own WBin/FBin columns.
"""
from __future__ import annotations

from torch import Tensor, nn

from hbn_engine.models._common import Unit, conv_unit, linear_unit, uniform

INPUT_SIZE = (3, 224, 224)
_STAGES = ((1, 64, 1), (2, 128, 2), (3, 256, 2), (4, 512, 2))


def _names() -> list[str]:
    names = ["conv1"]
    for stage, _, stride in _STAGES:
        for b in range(2):
            p = f"layer{stage}.{b}"
            names += [f"{p}.conv1", f"{p}.conv2"]
            if b == 0 and stride != 1:
                names.append(f"{p}.downsample")
    return names + ["fc"]


NAMES = _names()


def _uniform(kind: str) -> dict[str, str]:
    # The last layer is weight-binarized whenever anything is (Table 10's Bin column counts it
    # at 1/32 and its FBin FLOPs stay full; Table 4: 31.2x for WBin, FBin and Hybrid).
    last = "fprec" if kind == "fprec" else "wbin"
    return uniform(NAMES, kind, last)


def _hybrid() -> dict[str, str]:
    # Table 10 Hybrid column: rows 2-13 (layer1 .. layer3.0.downsample) keep FullBinConv FLOPs,
    # rows 14-20 (layer3.1 and layer4) carry WBin FLOPs, the Linear is weight-binarized.
    kinds = _uniform("fbin")
    wbin_from = NAMES.index("layer3.1.conv1")
    for n in NAMES[wbin_from:]:
        kinds[n] = "wbin"
    return kinds


DEFAULTS = {
    "fprec": _uniform("fprec"),
    "wbin": _uniform("wbin"),
    "fbin": _uniform("fbin"),
    "hybrid": _hybrid(),
}


class BasicBlock(nn.Module):
    """Two 3x3 convs plus identity or a 1x1 strided shortcut conv; ReLU after the add.

    Float convs are Conv-BN(-ReLU); binary ones carry their BN inside (see conv_unit). The
    block's second conv and the shortcut end without ReLU: the activation follows the sum.
    """

    def __init__(self, prefix: str, kinds: dict[str, str], cin: int, cout: int,
                 stride: int) -> None:
        super().__init__()
        units = [conv_unit("conv1", kinds[f"{prefix}.conv1"], cin, cout, 3, stride, 1),
                 conv_unit("conv2", kinds[f"{prefix}.conv2"], cout, cout, 3, 1, 1, relu=False)]
        if stride != 1 or cin != cout:
            units.append(conv_unit("downsample", kinds[f"{prefix}.downsample"], cin, cout, 1,
                                   stride, 0, relu=False))
        else:
            units.append([])
        for unit in units:
            for name, module in unit:
                self.add_module(name, module)
        self._main = tuple(name for unit in units[:2] for name, _ in unit)
        self._short = tuple(name for name, _ in units[2])
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for name in self._main:
            out = getattr(self, name)(out)
        identity = x
        for name in self._short:
            identity = getattr(self, name)(identity)
        return self.relu(out + identity)


def build(kinds: dict[str, str], num_classes: int) -> Unit:
    mods: Unit = [*conv_unit("conv1", kinds["conv1"], 3, 64, 7, 2, 3),
                  ("maxpool", nn.MaxPool2d(3, 2, 1))]
    cin = 64
    for stage, cout, stride in _STAGES:
        blocks = [BasicBlock(f"layer{stage}.0", kinds, cin, cout, stride),
                  BasicBlock(f"layer{stage}.1", kinds, cout, cout, 1)]
        mods.append((f"layer{stage}", nn.Sequential(*blocks)))
        cin = cout
    mods += [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
             *linear_unit("fc", kinds["fc"], 512, num_classes, classifier=True)]
    return mods
