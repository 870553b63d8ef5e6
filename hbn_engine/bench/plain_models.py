"""Binary networks written from plain torch modules only (no hbn_engine.nn), the way public
BNN code writes them; the benchmark's "models written without hbn_engine.nn" section and the
export tests (tests/idioms) build them from here.

* Bi-Real Net style ResNet: ApproxSign activation, HardBinaryConv (weights sign(W) * mean|W|
  in forward), BN, real-valued shortcut around every binary conv, downsampling shortcut
  AvgPool2d(2) + float 1x1 conv + BN, optional RPReLU after each add;
* ReActNet style: RSign (learnable threshold) before 3x3 and 1x1 binary convs, real-valued
  shortcuts with the same downsampling, RPReLU (or none) after each add;
* XNOR-Net NIN style: BN -> sign in an autograd.Function -> dropout -> nn.Conv2d whose weights
  a BinOp-like helper has replaced by sign(W) * mean|W| (as XNOR-Net's eval does) -> ReLU, float
  first and last layers;
* {0, 1}-activation ResNet: basic blocks whose binary convs take torch.sign(relu(bn(x)))
  (torch.sign(0) = 0: {0, 1}-valued activations, exported to the {0, 1} FullBin kernel), float
  shortcuts with the same downsampling.

Building blocks (the binarizers and binary convs of those codebases): SignSTE, ApproxSign,
LearnableBias, RSign, RPReLU, HardBinaryConv. Needs torch.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SignSTE", "ApproxSign", "LearnableBias", "RSign", "RPReLU", "HardBinaryConv",
           "BiRealBlock", "ReActBlock", "BinaryResNet", "birealnet", "reactnet", "XnorBinConv2d",
           "XnorNIN", "binop_binarize", "xnor_nin", "ReluSignBlock", "relusignnet",
           "BENCH_NETWORKS"]


class SignSTE(torch.autograd.Function):
    """XNOR-Net's BinActive: forward x.sign(), backward the clipped straight-through gradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sign()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        g = grad.clone()
        g[x.ge(1)] = 0
        g[x.le(-1)] = 0
        return g


class ApproxSign(nn.Module):
    """Bi-Real Net's activation: forward is sign(x); the backward of a piecewise quadratic
    rides along through the detach trick (so the forward is sign up to an ulp)."""

    def forward(self, x):
        out_forward = torch.sign(x)
        mask1 = x < -1
        mask2 = x < 0
        mask3 = x < 1
        out1 = (-1) * mask1.type(torch.float32) + (x * x + 2 * x) * (1 - mask1.type(torch.float32))
        out2 = out1 * mask2.type(torch.float32) + (-x * x + 2 * x) * (1 - mask2.type(torch.float32))
        out3 = out2 * mask3.type(torch.float32) + 1 * (1 - mask3.type(torch.float32))
        return out_forward.detach() - out3.detach() + out3


class LearnableBias(nn.Module):
    """ReActNet's per-channel shift (RSign's threshold, RPReLU's shifts)."""

    def __init__(self, c: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x):
        return x + self.bias.expand_as(x)


class RSign(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.move = LearnableBias(c)

    def forward(self, x):
        return torch.sign(self.move(x))


class RPReLU(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.shift_in = LearnableBias(c)
        self.prelu = nn.PReLU(c)
        self.shift_out = LearnableBias(c)

    def forward(self, x):
        return self.shift_out(self.prelu(self.shift_in(x)))


class HardBinaryConv(nn.Module):
    """Bi-Real / ReActNet binary conv: weights binarized in every forward,
    sign(W) * mean|W| per output channel, then F.conv2d."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        self.stride, self.padding = stride, padding
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k) * 0.1)

    def forward(self, x):
        w = self.weight
        scaling = torch.mean(torch.mean(torch.mean(abs(w), dim=3, keepdim=True), dim=2,
                                        keepdim=True), dim=1, keepdim=True).detach()
        bw = scaling * torch.sign(w)
        cliped = torch.clamp(w, -1.0, 1.0)
        bw = bw.detach() - cliped.detach() + cliped
        return F.conv2d(x, bw, stride=self.stride, padding=self.padding)


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


class ReluSignBlock(nn.Module):
    """A ResNet basic block with {0, 1} activations: each binary conv takes
    torch.sign(relu(bn(x))) (the sign of a non-negative value, 0 where relu is 0), weights
    binarized in forward; float shortcut (AvgPool2d + 1x1 conv + BN when downsampling)."""

    def __init__(self, cin: int, cout: int, stride: int, act: str = "none"):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(cin)
        self.conv1 = HardBinaryConv(cin, cout, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = HardBinaryConv(cout, cout, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = _downsample(cin, cout, stride) if stride != 1 or cin != cout else None
        self.act = _act(act, cout)

    def forward(self, x):
        out = self.conv1(torch.sign(F.relu(self.bn0(x))))
        out = self.bn2(self.conv2(torch.sign(F.relu(self.bn1(out)))))
        return self.act(out + (self.downsample(x) if self.downsample is not None else x))


def relusignnet(act: str = "none", widths=(16, 32, 64), blocks=(1, 1, 1), **kw) -> nn.Module:
    return BinaryResNet(ReluSignBlock, widths, blocks, act, **kw)


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




# The benchmark's sizes (hbn bench, "models written without hbn_engine.nn"): ResNet-18 layouts
# at 224x224 with the stem straight to 56x56 (16 binary convs each), XNOR-Net's CIFAR NIN at
# its own widths. name -> (builder, per-image input shape)
BENCH_NETWORKS = {
    "birealnet": (lambda: birealnet("none", (64, 128, 256, 512), (4, 4, 4, 4), classes=1000,
                                    stem_stride=4), (3, 224, 224)),
    "reactnet": (lambda: reactnet("none", (64, 128, 256, 512), (2, 2, 2, 2), classes=1000,
                                  stem_stride=4), (3, 224, 224)),
    "xnor_nin": (lambda: binop_binarize(xnor_nin((192, 160, 96))), (3, 32, 32)),
    "relusignnet": (lambda: relusignnet("none", (64, 128, 256, 512), (2, 2, 2, 2), classes=1000,
                                        stem_stride=4), (3, 224, 224)),
}
