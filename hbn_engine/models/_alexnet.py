"""AlexNet as in XNOR-Net's reference implementation: 96-256-384-384-256 channels, no groups.

This is the architecture whose multiply-accumulates Table 8's FLOPs column counts (conv1 at a
227x227 input gives 55x55, conv2 has 96 input channels, conv4 384); see docs/models.md for why
Table 8's parameter column (torchvision's 64-192-384-256-256 AlexNet) is not reproduced.
"""
from __future__ import annotations

from torch import nn

from hbn_engine.models._common import Unit, conv_unit, linear_unit, uniform

INPUT_SIZE = (3, 227, 227)
NAMES = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]


def _hybrid(last: str) -> dict[str, str]:
    # Table 8 Hybrid column: conv2-5 FullBinConv, the FC layers WeightBinConv. Hybrid-1 keeps
    # fc8 float, Hybrid-2 weight-binarizes it (Table 3: 10.4x vs 31.6x memory).
    kinds = {"conv1": "fprec", **{f"conv{i}": "fbin" for i in range(2, 6)},
             "fc6": "wbin", "fc7": "wbin", "fc8": last}
    return kinds


# WBin (BWN) and FBin (XNOR) keep fc8 float: Table 3 gives them the same 10.4x memory as
# Hybrid-1, which is XNOR-Net's first-and-last-layer-float convention.
DEFAULTS = {
    "fprec": uniform(NAMES, "fprec", "fprec"),
    "wbin": uniform(NAMES, "wbin", "fprec"),
    "fbin": uniform(NAMES, "fbin", "fprec"),
    "hybrid": _hybrid("fprec"),
    "hybrid2": _hybrid("wbin"),
}


def build(kinds: dict[str, str], num_classes: int) -> Unit:
    k = kinds
    return [
        *conv_unit("conv1", k["conv1"], 3, 96, 11, 4, 0),
        ("pool1", nn.MaxPool2d(3, 2)),
        *conv_unit("conv2", k["conv2"], 96, 256, 5, 1, 2),
        ("pool2", nn.MaxPool2d(3, 2)),
        *conv_unit("conv3", k["conv3"], 256, 384, 3, 1, 1),
        *conv_unit("conv4", k["conv4"], 384, 384, 3, 1, 1),
        *conv_unit("conv5", k["conv5"], 384, 256, 3, 1, 1),
        ("pool5", nn.MaxPool2d(3, 2)),
        ("flatten", nn.Flatten()),
        *linear_unit("fc6", k["fc6"], 256 * 6 * 6, 4096),
        # "a dropout of 0.2 before the last two convolutional layers" (appendix B.2)
        ("drop7", nn.Dropout(0.2)),
        *linear_unit("fc7", k["fc7"], 4096, 4096),
        ("drop8", nn.Dropout(0.2)),
        *linear_unit("fc8", k["fc8"], 4096, num_classes, classifier=True),
    ]
