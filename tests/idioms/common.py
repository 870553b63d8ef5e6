"""Building blocks shared by the idiom models: the binarizers and binary convs as the
XNOR-Net / Bi-Real / ReActNet / BinaryNet / bnn-library codebases write them."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from hbn_engine.bench.plain_models import (  # noqa: F401 (re-exported for the idioms)
    ApproxSign,
    HardBinaryConv,
    LearnableBias,
    RPReLU,
    RSign,
    SignSTE,
)


class PlusOneSTE(torch.autograd.Function):
    """Another STE: forward (x >= 0) * 2 - 1 (sign(0) = +1), identity backward."""

    @staticmethod
    def forward(ctx, x):
        return (x >= 0).float() * 2 - 1

    @staticmethod
    def backward(ctx, grad):
        return grad


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
