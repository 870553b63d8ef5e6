"""Leaf modules the front end rewrites recognised patterns into.

Each describes its own engine op through ``hbn_op()`` (type, attributes, parameters), which is
all the exporter's lowering needs, and its ``forward`` is the exact computation that op
performs, so a normalised graph can be run and compared in PyTorch.
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BinaryConv", "ChannelAffine", "SignActivation", "FRONTEND_LEAVES"]


class BinaryConv(nn.Module):
    """A conv / linear layer with +-1 weights and one scale per output channel.

    ``kind="wbin"``: float input, ``y = conv(x, s) * scale + bias``.
    ``kind="fbin"``: input bit per channel ``c`` is ``flip[c] ? x > thr[c] : x < thr[c]``
    (bit 1 = -1), ``y = conv(bits as +-1, s) * scale + bias`` with zero padding; with
    ``zero_one`` the bits stand for {0, 1} inputs instead (bit 1 = 0: ``torch.sign`` of a
    non-negative value, e.g. ``sign(relu(x))``), ``y = conv(bits as 0 / 1, s) * scale + bias``.
    With an input scale (XNOR-Net's K, fbin convs only) ``y = conv(bits, s) * scale * K +
    bias``. ``negative`` is the weight sign mask (True = -1), shape [OC, IC, KH, KW] ([OC, IC] for
    linear layers, whose input is [N, IC]).
    """

    def __init__(self, kind: str, negative: Tensor, scale: Tensor, bias: Optional[Tensor],
                 stride: tuple[int, int] = (1, 1), padding: tuple[int, int] = (0, 0),
                 threshold: Optional[Tensor] = None, flip: Optional[Tensor] = None,
                 linear: bool = False, zero_one: bool = False) -> None:
        super().__init__()
        if kind not in ("fbin", "wbin"):
            raise ValueError(f"kind must be fbin or wbin, got {kind!r}")
        if kind == "fbin" and (threshold is None or flip is None):
            raise ValueError("a FullBin layer needs input thresholds and flips")
        if zero_one and kind != "fbin":
            raise ValueError("zero_one (a {0, 1} input domain) is a FullBin layer's")
        self.kind, self.linear, self.zero_one = kind, bool(linear), bool(zero_one)
        self.stride, self.padding = tuple(stride), tuple(padding)
        self.register_buffer("negative", negative.to(torch.bool).clone())
        self.register_buffer("scale", scale.detach().to(torch.float32).clone())
        self.register_buffer("bias", None if bias is None
                             else bias.detach().to(torch.float32).clone())
        self.register_buffer("threshold", None if threshold is None
                             else threshold.to(torch.float32).clone())
        self.register_buffer("flip", None if flip is None else flip.to(torch.bool).clone())
        # XNOR-Net's input scale (set by Normalizer.fold_input_scale): K = avg_pool over the
        # conv window (zero padding counted) of mean_c |x * in_scale + in_shift|
        self.register_buffer("in_scale", None)
        self.register_buffer("in_shift", None)

    def set_input_scale(self, scale: np.ndarray, shift: np.ndarray) -> None:
        self.in_scale = torch.as_tensor(np.asarray(scale, np.float32))
        self.in_shift = torch.as_tensor(np.asarray(shift, np.float32))

    def input_scale_k(self, x: Tensor) -> Tensor:
        shape = (1, -1, 1, 1)
        xn = x * self.in_scale.to(x.dtype).view(shape) + self.in_shift.to(x.dtype).view(shape)
        return F.avg_pool2d(xn.abs().mean(dim=1, keepdim=True), tuple(self.negative.shape[2:]),
                            self.stride, self.padding, count_include_pad=True)

    def input_signs(self, x: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        thr, flip = self.threshold.view(shape), self.flip.view(shape)
        neg = torch.where(flip, x > thr, x < thr)
        return torch.where(neg, 0.0 if self.zero_one else -1.0, 1.0).to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        k = self.input_scale_k(x) if self.in_scale is not None else None
        if self.kind == "fbin":
            x = self.input_signs(x)
        w = torch.where(self.negative, -1.0, 1.0).to(x.dtype)
        if self.linear:
            y = F.linear(x, w) * self.scale
        else:
            y = F.conv2d(x, w, None, self.stride, self.padding) * self.scale.view(1, -1, 1, 1)
        if k is not None:
            y = y * k
        if self.bias is not None:
            y = y + (self.bias if self.linear else self.bias.view(1, -1, 1, 1))
        return y

    def hbn_op(self) -> tuple[str, dict[str, int], dict[str, np.ndarray]]:
        """(op type, attributes, parameters) of the engine op (see docs/format.md)."""
        from hbn_engine.exporter import pack_sign_bits

        neg = self.negative.cpu().numpy()
        if self.linear:
            neg = neg[:, :, None, None]
        attrs = {"stride_h": int(self.stride[0]), "stride_w": int(self.stride[1]),
                 "pad_h": int(self.padding[0]), "pad_w": int(self.padding[1]), "act": 0,
                 "in_channels": int(neg.shape[1])}
        if self.linear:
            attrs["linear"] = 1
        params = {"weight": pack_sign_bits(neg), "scale": self.scale.cpu().numpy()}
        if self.bias is not None:
            params["bias"] = self.bias.cpu().numpy()
        if self.kind == "fbin":
            params["in_threshold"] = self.threshold.cpu().numpy()
            params["in_flip"] = self.flip.cpu().numpy().astype(np.uint8)
            if self.zero_one:
                attrs["input_domain"] = 1
            if self.in_scale is not None:
                attrs["input_scale"] = 1
                params["bn_scale"] = self.in_scale.cpu().numpy()
                params["bn_shift"] = self.in_shift.cpu().numpy()
            return "conv_fbin", attrs, params
        return "conv_wbin", attrs, params

    def extra_repr(self) -> str:
        oc, ic = self.negative.shape[:2]
        return (f"{self.kind}, {ic}->{oc}, linear={self.linear}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}"
                + (", input {0, 1}" if self.zero_one else ""))


class ChannelAffine(nn.Module):
    """``y = x * scale[c] + shift[c]`` per channel (dim 1): folded elementwise arithmetic with
    parameters (a learned scale, a bias, a BatchNorm with parameters computed in forward).
    Lowered to the engine's per-channel affine op, which folds into a preceding conv."""

    def __init__(self, scale: Union[Tensor, np.ndarray], shift: Union[Tensor, np.ndarray]) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, np.float64)))
        self.register_buffer("shift", torch.as_tensor(np.asarray(shift, np.float64)))

    def forward(self, x: Tensor) -> Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.to(x.dtype).view(shape) + self.shift.to(x.dtype).view(shape)

    def hbn_op(self) -> tuple[str, dict[str, int], dict[str, np.ndarray]]:
        return "batchnorm", {}, {"scale": self.scale.numpy().astype(np.float32),
                                 "shift": self.shift.numpy().astype(np.float32)}


class SignActivation(nn.Module):
    """A standalone sign to +-1 floats with the model's value at the threshold: ``x > t -> 1,
    x < t -> -1, x == t -> zero`` (torch.sign: zero = 0). For a binarized tensor a float layer
    or anything but a +-alpha conv consumes. Lowered to the engine's ``sign`` op."""

    def __init__(self, zero: int, threshold: float = 0.0) -> None:
        super().__init__()
        if zero not in (-1, 0, 1):
            raise ValueError(f"zero must be -1, 0 or 1, got {zero!r}")
        self.zero = int(zero)
        self.threshold = float(np.float32(threshold))

    def forward(self, x: Tensor) -> Tensor:
        one = torch.ones_like(x)
        return torch.where(x > self.threshold, one,
                           torch.where(x < self.threshold, -one, one * self.zero))

    def hbn_op(self) -> tuple[str, dict[str, Union[int, float]], dict[str, np.ndarray]]:
        attrs: dict[str, Union[int, float]] = {"zero": self.zero}
        if self.threshold != 0.0:
            attrs["threshold"] = self.threshold
        return "sign", attrs, {}

    def extra_repr(self) -> str:
        return f"zero={self.zero}, threshold={self.threshold}"


FRONTEND_LEAVES = (BinaryConv, ChannelAffine, SignActivation)
