"""Building blocks shared by the idiom models: the binarizers and binary convs as the
XNOR-Net / Bi-Real / ReActNet / BinaryNet / bnn-library codebases write them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn


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


class PlusOneSTE(torch.autograd.Function):
    """Another STE: forward (x >= 0) * 2 - 1 (sign(0) = +1), identity backward."""

    @staticmethod
    def forward(ctx, x):
        return (x >= 0).float() * 2 - 1

    @staticmethod
    def backward(ctx, grad):
        return grad


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


class WeightBinarizer(nn.Module):
    """bnn-library style weight_pre_process: XNOR weights."""

    def forward(self, w):
        return w.sign() * w.abs().mean(dim=(1, 2, 3), keepdim=True)


class InputBinarizer(nn.Module):
    def forward(self, x):
        return SignSTE.apply(x)


class PreprocConv2d(nn.Conv2d):
    """A Conv2d subclass with activation_pre_process / weight_pre_process modules (the bnn
    library's layer shape)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.activation_pre_process = InputBinarizer()
        self.weight_pre_process = WeightBinarizer()

    def forward(self, x):
        x = self.activation_pre_process(x)
        return self._conv_forward(x, self.weight_pre_process(self.weight), self.bias)


@dataclass
class Idiom:
    name: str
    build: Callable[[], nn.Module]
    shape: tuple[int, int, int]
    kinds: dict[str, str] = field(default_factory=dict)  # layer -> fbin / wbin / fprec
    refuse: Optional[str] = None  # regex the ExportError must match
    sign_zero: str = "exact"
    # inputs with exact zeros (to exercise sign(0) rules)
    zeros_in_input: bool = False
    # a reference with different semantics than model(x) (e.g. sign(0) = +1 accepted)
    reference: Optional[Callable[[nn.Module], nn.Module]] = None
    note: str = ""
