"""Sketch-A-Net (Yu et al., BMVC 2015 / IJCV 2017), single-channel 225x225 input.

L1 15x15/3 64 -> pool -> L2 5x5 128 -> pool -> L3-L5 3x3 256 -> pool -> L6 7x7 512 (an FC on
the 7x7 map) -> L7 512 -> L8 classes. Table 9's FLOPs column counts exactly this network; its
parameter column repeats AlexNet's conv rows (see docs/models.md).
"""
from __future__ import annotations

from torch import nn

from hbn_engine.models._common import Unit, conv_unit, linear_unit, uniform

INPUT_SIZE = (1, 225, 225)
NAMES = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]

# Table 4 / Table 6: WBin and Hybrid have the last layer weight-binarized (29.2x), FBin (XNOR)
# keeps it float (19.7x). Hybrid per Table 9 / Figure 5: conv2-5 FullBinConv, FCs WeightBin.
DEFAULTS = {
    "fprec": uniform(NAMES, "fprec", "fprec"),
    "wbin": uniform(NAMES, "wbin", "wbin"),
    "fbin": uniform(NAMES, "fbin", "fprec"),
    "hybrid": {"conv1": "fprec", **{f"conv{i}": "fbin" for i in range(2, 6)},
               "fc6": "wbin", "fc7": "wbin", "fc8": "wbin"},
}


def build(kinds: dict[str, str], num_classes: int) -> Unit:
    k = kinds
    return [
        *conv_unit("conv1", k["conv1"], 1, 64, 15, 3, 0),
        ("pool1", nn.MaxPool2d(3, 2)),
        *conv_unit("conv2", k["conv2"], 64, 128, 5, 1, 0),
        ("pool2", nn.MaxPool2d(3, 2)),
        *conv_unit("conv3", k["conv3"], 128, 256, 3, 1, 1),
        *conv_unit("conv4", k["conv4"], 256, 256, 3, 1, 1),
        *conv_unit("conv5", k["conv5"], 256, 256, 3, 1, 1),
        ("pool5", nn.MaxPool2d(3, 2)),
        ("flatten", nn.Flatten()),
        *linear_unit("fc6", k["fc6"], 256 * 7 * 7, 512),
        ("drop7", nn.Dropout(0.2)),
        *linear_unit("fc7", k["fc7"], 512, 512),
        ("drop8", nn.Dropout(0.2)),
        *linear_unit("fc8", k["fc8"], 512, num_classes, classifier=True),
    ]
