"""8-bit edge layers: the quantization rules the exporter applies and a numpy reference of the
engine's ``conv_q8`` op (numpy only; the tests and the exporter share it).

``conv_q8`` (issue 14): float NHWC input ``x`` is quantized per tensor to uint8,
``q = clamp(nearbyint(x / in_scale) + in_zero, 0, 255)``; padding pads with ``in_zero`` (a
float 0); ``acc = sum (q - in_zero) * w`` in int32 (exact) with int8 weights in -127..127;
``y = act(acc * in_scale * w_scale[oc] + bias[oc])``.

Rules chosen here (docs/export.md, "8-bit edges"):

* weights: symmetric per output channel, ``w_scale = max|w| / 127`` (BatchNorm's scale folded
  into ``w`` first, so ``w_scale`` stays positive);
* activations: asymmetric per tensor, the range of the calibration batch widened to include 0
  (so the zero padding and a ReLU's zeros are exact codes); ``scale = (hi - lo) / 255``,
  ``zero = round(-lo / scale)``;
* an image input normalised by the model's ``input_norm``: the range is the normalised image of
  pixels 0..255 over all channels, no calibration needed (the rule that makes the pixel the
  quantized value when every channel has the same integer mean and the same std).

``conv_wbin_q8`` (a WeightBin layer on 8-bit input, ``export(wbin="int8")``): the same input
quantization; the weights are the layer's own +-1 signs (stored as bits, expanded to int8 +-1
at load) and ``scale`` = alpha x BN scale per output channel takes ``w_scale``'s place, so
nothing but the input is quantized: ``conv_wbin_q8_reference``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

__all__ = ["activation_params", "norm_activation_params", "quantize_weights",
           "quantize_activation", "conv_q8_reference", "sign_bits_to_int8", "check_wbin_q8",
           "conv_wbin_q8_reference", "MAX_K"]

# IC * KH * KW of an 8-bit layer, rounded up to 4, at most this (qgemm::kQMaxK): the int32 sums
# of (q - zero) * w stay exact.
MAX_K = 65536


def activation_params(lo: float, hi: float) -> tuple[float, int]:
    """(in_scale, in_zero) covering [min(lo, 0), max(hi, 0)] with 256 uint8 codes."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"activation range [{lo}, {hi}] is not finite")
    if hi - lo <= 0.0:
        return 1.0, 0  # a constant 0 input: any scale represents it exactly
    scale = (hi - lo) / 255.0
    zero = int(np.clip(np.round(-lo / scale), 0, 255))
    return float(scale), zero


def norm_activation_params(mean: Sequence[float], std: Sequence[float]) -> tuple[float, int]:
    """The exact-range rule for an image input normalised as ``(p - mean) / std``, p in 0..255.

    Uniform integer mean m and uniform std s give scale 1/s and zero m, so ``q = p`` exactly
    (``(p - m) / s / (1 / s)`` rounds back to ``p - m``). Per-channel means / stds cannot share
    one (scale, zero) that maps every channel's pixels to themselves; the union of the channels'
    ranges is used, a step of at most ``max(255 / std) / 255`` in the normalised domain."""
    m = np.asarray(mean, dtype=np.float64)
    s = np.asarray(std, dtype=np.float64)
    if np.all(m == m[0]) and np.all(s == s[0]) and m[0] == np.round(m[0]) and 0 <= m[0] <= 255:
        return float(1.0 / s[0]), int(m[0])
    lo = float(np.min((0.0 - m) / s))
    hi = float(np.max((255.0 - m) / s))
    return activation_params(lo, hi)


def quantize_weights(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Float weights [OC, ...] -> (int8 weights in -127..127, float32 w_scale [OC])."""
    w = np.asarray(w, dtype=np.float64)
    flat = w.reshape(w.shape[0], -1)
    amax = np.max(np.abs(flat), axis=1) if flat.shape[1] else np.zeros(w.shape[0])
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(w / scale.astype(np.float64).reshape(-1, *([1] * (w.ndim - 1)))),
                -127, 127)
    return q.astype(np.int8), scale


def quantize_activation(x: np.ndarray, scale: float, zero: int) -> np.ndarray:
    """``clamp(nearbyint(x / scale) + zero, 0, 255)`` as uint8, the op's arithmetic: a float32
    division by float32(scale), rounded half to even (np.rint, like nearbyint)."""
    with np.errstate(invalid="ignore"):
        d = np.asarray(x, dtype=np.float32) / np.float32(scale)
        q = np.rint(d.astype(np.float64)) + zero
    return np.clip(np.nan_to_num(q, nan=0.0), 0, 255).astype(np.uint8)


def conv_q8_reference(x: np.ndarray, weight: np.ndarray, w_scale: np.ndarray,
                      bias: Optional[np.ndarray], in_scale: float, in_zero: int,
                      stride: tuple[int, int] = (1, 1), pad: tuple[int, int] = (0, 0),
                      relu: bool = False) -> np.ndarray:
    """The op on NCHW float32 input ([N, C] for a linear layer with 1x1 weights): float64
    output of the exact integer sums (the engine's float32 epilogue differs by rounding)."""
    x = np.asarray(x, dtype=np.float32)
    linear = x.ndim == 2
    if linear:
        x = x[:, :, None, None]
    q = quantize_activation(x, in_scale, in_zero).astype(np.int64) - in_zero
    n, c, h, w = q.shape
    oc, ic, kh, kw = weight.shape
    if ic != c:
        raise ValueError(f"weight has {ic} input channels, input has {c}")
    ph, pw = pad
    sh, sw = stride
    qp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=np.int64)  # pads with in_zero -> 0
    qp[:, :, ph:ph + h, pw:pw + w] = q
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w + 2 * pw - kw) // sw + 1
    wi = weight.astype(np.int64)
    acc = np.zeros((n, oc, oh, ow), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = qp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            acc += np.einsum("nchw,oc->nohw", patch, wi[:, :, i, j])
    y = acc.astype(np.float64) * float(in_scale) \
        * w_scale.astype(np.float64)[None, :, None, None]
    if bias is not None:
        y = y + bias.astype(np.float64)[None, :, None, None]
    if relu:
        y = np.maximum(y, 0.0)
    return y[:, :, 0, 0] if linear else y


def sign_bits_to_int8(bits: np.ndarray, in_channels: int) -> np.ndarray:
    """Canonical sign bits uint64 [OC, KH, KW, words] (bit 1 = -1, channels LSB first) ->
    int8 +-1 [OC, IC, KH, KW]: what the engine expands a conv_wbin_q8 weight to at load."""
    bits = np.ascontiguousarray(bits, dtype="<u8")
    oc, kh, kw, words = bits.shape
    if words != (in_channels + 63) // 64:
        raise ValueError(f"{words} words per row do not hold {in_channels} channels")
    neg = np.unpackbits(bits.view(np.uint8), axis=-1, bitorder="little")[..., :in_channels]
    return np.ascontiguousarray((1 - 2 * neg.astype(np.int8)).transpose(0, 3, 1, 2))


def check_wbin_q8(layer: str, in_channels: int, weight_shape: Sequence[int]) -> None:
    """Refuses a WeightBin layer the 8-bit GEMM cannot run exactly (ValueError naming it)."""
    k = int(in_channels) * int(weight_shape[1]) * int(weight_shape[2])
    if (k + 3) // 4 * 4 > MAX_K:
        raise ValueError(f"wbin int8: layer {layer!r} has a receptive field of {k} values "
                         f"(in_channels x kernel), over the 8-bit GEMM's {MAX_K}: its int32 "
                         "sums would not be exact; keep it exact (leave it out of int8_layers)")


def conv_wbin_q8_reference(x: np.ndarray, bits: np.ndarray, in_channels: int,
                           scale: np.ndarray, bias: Optional[np.ndarray], in_scale: float,
                           in_zero: int, stride: tuple[int, int] = (1, 1),
                           pad: tuple[int, int] = (0, 0), relu: bool = False) -> np.ndarray:
    """conv_wbin_q8 on NCHW float32 input ([N, C] for a linear layer): conv_q8 with the +-1
    weights of the bits and ``scale`` (alpha x BN scale, any sign) as the weight scale."""
    w = sign_bits_to_int8(bits, in_channels)
    return conv_q8_reference(x, w, np.asarray(scale, dtype=np.float32), bias, in_scale, in_zero,
                             stride, pad, relu)
