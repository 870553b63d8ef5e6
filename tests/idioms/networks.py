"""Three whole networks written from plain torch modules only (no hbn_engine.nn):

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

from typing import Sequence

import torch
from torch import nn

from .common import ApproxSign, HardBinaryConv, RPReLU, RSign, SignSTE


def _act(kind: str, c: int) -> nn.Module:
    if kind == "rprelu":
        return RPReLU(c)
    if kind == "none":
        return nn.Identity()
    raise ValueError(kind)


def _downsample(cin: int, cout: int, stride: int) -> nn.Module:
    layers: list[nn.Module] = []
    if stride != 1:
        layers.append(nn.AvgPool2d(kernel_size=2, stride=stride))
    layers += [nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers)


class BiRealBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, act: str):
        super().__init__()
        self.binary_activation = ApproxSign()
        self.binary_conv = HardBinaryConv(cin, cout, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.downsample = _downsample(cin, cout, stride) if stride != 1 or cin != cout else None
        self.act = _act(act, cout)

    def forward(self, x):
        residual = x
        out = self.bn1(self.binary_conv(self.binary_activation(x)))
        if self.downsample is not None:
            residual = self.downsample(x)
        out += residual
        return self.act(out)


class ReActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, act: str):
        super().__init__()
        self.move1 = RSign(cin)
        self.conv3x3 = HardBinaryConv(cin, cout, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.shortcut = _downsample(cin, cout, stride) if stride != 1 or cin != cout else None
        self.act1 = _act(act, cout)
        self.move2 = RSign(cout)
        self.conv1x1 = HardBinaryConv(cout, cout, 1, 1, 0)
        self.bn2 = nn.BatchNorm2d(cout)
        self.act2 = _act(act, cout)

    def forward(self, x):
        out = self.bn1(self.conv3x3(self.move1(x)))
        out = out + (self.shortcut(x) if self.shortcut is not None else x)
        out = self.act1(out)
        out2 = self.bn2(self.conv1x1(self.move2(out)))
        return self.act2(out2 + out)


class BinaryResNet(nn.Module):
    def __init__(self, block: type, widths: Sequence[int], blocks: Sequence[int], act: str,
                 classes: int = 10, stem_stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, stem_stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers = []
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(block(cin, w, 2 if (i > 0 and j == 0) else 1, act))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.bn1(self.conv1(x))
        x = self.layers(x)
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


def birealnet(act: str = "none", widths=(16, 32, 64), blocks=(1, 1, 1), **kw) -> nn.Module:
    return BinaryResNet(BiRealBlock, widths, blocks, act, **kw)


def reactnet(act: str = "none", widths=(16, 32, 64), blocks=(1, 1, 1), **kw) -> nn.Module:
    return BinaryResNet(ReActBlock, widths, blocks, act, **kw)


class XnorBinConv2d(nn.Module):
    """XNOR-Net's BinConv2d: BN -> BinActive -> dropout -> conv -> ReLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, padding: int = 0,
                 dropout: float = 0.0):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin, eps=1e-4, momentum=0.1, affine=True)
        self.dropout_ratio = dropout
        if dropout != 0:
            self.dropout = nn.Dropout(dropout)
        self.conv = nn.Conv2d(cin, cout, k, stride, padding)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.bn(x)
        x = SignSTE.apply(x)
        if self.dropout_ratio != 0:
            x = self.dropout(x)
        x = self.conv(x)
        return self.relu(x)


class XnorNIN(nn.Module):
    """XNOR-Net's CIFAR NIN, widths scalable."""

    def __init__(self, w: Sequence[int] = (192, 160, 96), classes: int = 10):
        super().__init__()
        a, b, c = w
        self.xnor = nn.Sequential(
            nn.Conv2d(3, a, 5, 1, 2),
            nn.BatchNorm2d(a, eps=1e-4, momentum=0.1, affine=False),
            nn.ReLU(inplace=True),
            XnorBinConv2d(a, b, 1),
            XnorBinConv2d(b, c, 1),
            nn.MaxPool2d(3, 2, 1),
            XnorBinConv2d(c, a, 5, 1, 2, dropout=0.5),
            XnorBinConv2d(a, a, 1),
            XnorBinConv2d(a, a, 1),
            nn.AvgPool2d(3, 2, 1),
            XnorBinConv2d(a, a, 3, 1, 1, dropout=0.5),
            XnorBinConv2d(a, a, 1),
            nn.BatchNorm2d(a, eps=1e-4, momentum=0.1, affine=False),
            nn.Conv2d(a, classes, 1),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(8, 1, 0),
        )

    def forward(self, x):
        x = self.xnor(x)
        return x.view(x.size(0), -1)


def binop_binarize(model: nn.Module) -> nn.Module:
    """XNOR-Net's BinOp before evaluation: every conv of a BinConv2d gets sign(W) * mean|W|."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, XnorBinConv2d):
                w = m.conv.weight
                w.copy_(w.sign() * w.abs().mean(dim=(1, 2, 3), keepdim=True))
    return model


def xnor_nin(w: Sequence[int] = (48, 40, 24), classes: int = 10) -> nn.Module:
    return XnorNIN(w, classes)


