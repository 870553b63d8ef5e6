"""Three whole networks (built in hbn_engine.bench.plain_models, which the benchmark also
uses) written from plain torch modules only (no hbn_engine.nn):

* Bi-Real Net style ResNet: ApproxSign activation, HardBinaryConv (weights sign(W) * mean|W|
  in forward), BN, real-valued shortcut around every binary conv, downsampling shortcut
  AvgPool2d(2) + float 1x1 conv + BN, optional RPReLU after each add;
* ReActNet style: RSign (learnable threshold) before 3x3 and 1x1 binary convs, real-valued
  shortcuts with the same downsampling, RPReLU (or none) after each add;
* XNOR-Net NIN style: BN -> sign in an autograd.Function -> dropout -> nn.Conv2d whose weights
  a BinOp-like helper has replaced by sign(W) * mean|W| (as XNOR-Net's eval does) -> ReLU, float
  first and last layers.
"""
from __future__ import annotations

from hbn_engine.bench.plain_models import (  # noqa: F401
    BiRealBlock,
    BinaryResNet,
    ReActBlock,
    XnorBinConv2d,
    XnorNIN,
    binop_binarize,
    birealnet,
    reactnet,
    relusignnet,
    xnor_nin,
)
