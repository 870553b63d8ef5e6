"""Binary layers: the PyTorch definition of what the engine computes.

Conventions shared with the engine (csrc/hbn/types.h):

* ``sign(x) = +1 if x >= 0 else -1``. Exactly zero (and ``-0.0``) maps to **+1**, so a value is
  never left at 0 and every binarized tensor is strictly +-1.
* Convolution padding is applied to the already binarized input and pads with **0**, not with
  +-1: a padded tap contributes nothing to the dot product (the engine corrects its popcount for
  the padded taps accordingly).
* Binary weights are ``sign(W)`` with one scale per output channel, ``alpha = mean(|W|)`` over
  the channel's filter (XNOR-Net / BWN).

The eval-mode forward of every layer in this module is the reference the engine must reproduce;
the order of the floating-point operations is part of that definition (``dot * alpha * K + bias``).
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "binarize",
    "BinActive",
    "FullBinConv2d",
    "WeightBinConv2d",
    "FullBinLinear",
    "WeightBinLinear",
    "BINARY_LAYERS",
]

_IntOrPair = Union[int, tuple[int, int]]
_ACTIVATIONS = ("relu", None)


class _SignSTE(torch.autograd.Function):
    """sign with sign(0) = +1; straight-through gradient, zeroed where |x| > 1 (BNN / XNOR-Net)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        # (x >= 0) is true for +0.0 and -0.0 alike, which is exactly the engine's bit rule.
        # 2 * mask - 1 makes one allocation; torch.where(mask, 1., -1.) is ~1.5x slower on the
        # 37M-weight fc6 of AlexNet.
        return (x >= 0).to(x.dtype).mul_(2).sub_(1)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def binarize(x: Tensor) -> Tensor:
    """+-1 tensor of x's dtype and shape: +1 where x >= 0 (including -0.0), -1 elsewhere.

    The gradient is the straight-through estimator clipped to |x| <= 1. In models use
    :class:`BinActive` (a module, hence an fx leaf) rather than calling this in a forward.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"binarize expects a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"binarize expects a floating-point tensor, got {x.dtype}")
    return _SignSTE.apply(x)


class BinActive(nn.Module):
    """Module form of :func:`binarize` (any shape in, same shape of +-1 out)."""

    def forward(self, x: Tensor) -> Tensor:
        return binarize(x)


def _pair(value: _IntOrPair, what: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        pair = (value, value)
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{what} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value!r}")
    return pair


def _positive(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return value


def _check_activation(activation: Optional[str]) -> Optional[str]:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be 'relu' or None, got {activation!r}")
    return activation


class _BinaryWeightMixin:
    """Real-valued ``weight`` binarized on the fly: ``sign(W)`` and per-output-channel alpha."""

    weight: nn.Parameter
    bias: Optional[nn.Parameter]

    def binary_weight(self) -> tuple[Tensor, Tensor]:
        """``(sign_w, alpha)``: sign_w = binarize(weight) (+-1, weight's shape; sign(0) = +1) and
        alpha = mean |weight| over all dims but the first (shape [out])."""
        w = self.weight
        sign_w = binarize(w)
        alpha = w.abs().mean(dim=tuple(range(1, w.dim())))
        return sign_w, alpha

    def _reset_weight_and_bias(self, fan_in: int) -> None:
        # nn.Conv2d / nn.Linear's default initialisation, so binary and float layers start alike.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)


class _BinConvBase(_BinaryWeightMixin, nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: _IntOrPair,
                 stride: _IntOrPair, padding: _IntOrPair, bias: bool,
                 activation: Optional[str]) -> None:
        super().__init__()
        self.in_channels = _positive(in_channels, "in_channels")
        self.out_channels = _positive(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        self.activation = _check_activation(activation)
        kh, kw = self.kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._reset_weight_and_bias(in_channels * kh * kw)

    def _conv_sign(self, x: Tensor) -> Tensor:
        """conv2d(x, sign_w) * alpha, zero padding, no bias."""
        sign_w, alpha = self.binary_weight()
        y = F.conv2d(x, sign_w, None, self.stride, self.padding)
        return y * alpha.view(1, -1, 1, 1)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects input [N, {self.in_channels}, H, W], "
                             f"got {tuple(x.shape)}")

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
                f"activation={self.activation!r}")


class FullBinConv2d(_BinConvBase):
    """XNOR-Net convolution block: BatchNorm -> sign -> binary conv -> (xK) -> +bias -> ReLU.

    ``bn=False`` leaves the BatchNorm out (``xn = x``: Bi-Real style sign straight into the conv).

    Input [N, in_channels, H, W] float; output [N, out_channels, H', W'] with torch's conv
    output size. Eval forward::

        xn = bn(x); xb = sign(xn)
        y  = conv2d(xb, sign(W), stride, padding)   # padding adds 0, not +-1
        y  = y * alpha[oc]
        y  = y * K        if input_scale, K = avg_pool2d(mean_c |xn|, kernel, stride, padding,
                                                         count_include_pad=True)
        y  = y + bias[oc] if bias
        y  = relu(y)      if activation == "relu"
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _IntOrPair,
                 stride: _IntOrPair = 1, padding: _IntOrPair = 0, bias: bool = True,
                 input_scale: bool = False, activation: Optional[str] = "relu",
                 bn: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, activation)
        self.input_scale = bool(input_scale)
        # bn=False: Bi-Real style, sign(x) straight into the conv (xn = x below).
        self.bn = nn.BatchNorm2d(in_channels) if bn else None

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        xn = self.bn(x) if self.bn is not None else x
        y = self._conv_sign(binarize(xn))
        if self.input_scale:
            k = F.avg_pool2d(xn.abs().mean(dim=1, keepdim=True), self.kernel_size, self.stride,
                             self.padding, count_include_pad=True)
            y = y * k
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        if self.activation == "relu":
            y = F.relu(y)
        return y

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", input_scale={self.input_scale}"
                + ("" if self.bn is not None else ", bn=False"))


class WeightBinConv2d(_BinConvBase):
    """BWN convolution block: binary-weight conv on a float input -> +bias -> BatchNorm -> ReLU.

    Eval forward: ``y = conv2d(x, sign(W), stride, padding) * alpha[oc] (+ bias[oc]);
    y = bn(y) if bn; relu(y) if activation == "relu"``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: _IntOrPair,
                 stride: _IntOrPair = 1, padding: _IntOrPair = 0, bias: bool = False,
                 bn: bool = True, activation: Optional[str] = "relu") -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, activation)
        self.bn = nn.BatchNorm2d(out_channels) if bn else None

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        y = self._conv_sign(x)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        if self.bn is not None:
            y = self.bn(y)
        if self.activation == "relu":
            y = F.relu(y)
        return y


class _BinLinearBase(_BinaryWeightMixin, nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool,
                 activation: Optional[str]) -> None:
        super().__init__()
        self.in_features = _positive(in_features, "in_features")
        self.out_features = _positive(out_features, "out_features")
        self.activation = _check_activation(activation)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self._reset_weight_and_bias(in_features)

    def _linear_sign(self, x: Tensor) -> Tensor:
        sign_w, alpha = self.binary_weight()
        return F.linear(x, sign_w) * alpha

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{type(self).__name__} expects input [N, {self.in_features}], "
                             f"got {tuple(x.shape)}")

    def _finish(self, y: Tensor) -> Tensor:
        if self.activation == "relu":
            y = F.relu(y)
        return y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, activation={self.activation!r}")


class FullBinLinear(_BinLinearBase):
    """XNOR-Net fully connected block: BatchNorm1d -> sign -> binary matmul -> +bias -> ReLU.

    Input [N, in_features]; eval forward:
    ``relu(sign(bn(x)) @ sign(W).T * alpha + bias)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation: Optional[str] = "relu") -> None:
        super().__init__(in_features, out_features, bias, activation)
        self.bn = nn.BatchNorm1d(in_features)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        y = self._linear_sign(binarize(self.bn(x)))
        if self.bias is not None:
            y = y + self.bias
        return self._finish(y)


class WeightBinLinear(_BinLinearBase):
    """BWN fully connected block: ``relu(bn(x @ sign(W).T * alpha + bias))`` (bn optional)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, bn: bool = False,
                 activation: Optional[str] = "relu") -> None:
        super().__init__(in_features, out_features, bias, activation)
        self.bn = nn.BatchNorm1d(out_features) if bn else None

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        y = self._linear_sign(x)
        if self.bias is not None:
            y = y + self.bias
        if self.bn is not None:
            y = self.bn(y)
        return self._finish(y)


# Every module type of this package that the exporter treats as one fx leaf.
BINARY_LAYERS: tuple[type[nn.Module], ...] = (
    BinActive, FullBinConv2d, WeightBinConv2d, FullBinLinear, WeightBinLinear)
