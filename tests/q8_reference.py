"""A numpy reference of conv_q8 (the op's definition, csrc/runtime/ops/conv_q8.cc) and a
builder of hand-made .hbn files holding one, shared by test_conv_q8 and test_kernel_tables."""
from __future__ import annotations

from typing import Optional

import numpy as np

from hbn_engine.format import Op, encode_hbn


def quantize(x: np.ndarray, in_scale: float, in_zero: int) -> np.ndarray:
    """q = clamp(round_half_even(x / f32(in_scale)) + in_zero, 0, 255) in float32 arithmetic."""
    v = np.round(x.astype(np.float32) / np.float32(in_scale)) + np.float32(in_zero)
    return np.clip(v, 0, 255).astype(np.uint8)


def conv_q8(x_nchw: np.ndarray, w: np.ndarray, w_scale: np.ndarray, in_scale: float, in_zero: int,
            stride: int = 1, pad: int = 0, scale: Optional[np.ndarray] = None,
            bias: Optional[np.ndarray] = None, relu: bool = False) -> np.ndarray:
    """The op on a float NCHW batch -> float32 NCHW."""
    q = quantize(x_nchw, in_scale, in_zero).astype(np.int64) - in_zero  # padding below adds 0
    n, c, h, wd = q.shape
    oc, ic, kh, kw = w.shape
    qp = np.pad(q, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    acc = np.zeros((n, oc, oh, ow), np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = qp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            acc += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j].astype(np.int64))
    assert np.abs(acc).max(initial=0) < 2**31
    s = np.float64(in_scale) * w_scale.astype(np.float64)
    if scale is not None:
        s = s * scale.astype(np.float64)
    y = acc.astype(np.int32).astype(np.float32) * s.astype(np.float32)[None, :, None, None]
    if bias is not None:
        y = y + bias.astype(np.float32)[None, :, None, None]
    if relu:
        y = np.where(y > 0, y, np.float32(0))
    return y.astype(np.float32)


def q8_file(w: np.ndarray, w_scale: np.ndarray, in_shape: tuple[int, int, int], attrs: dict,
            scale: Optional[np.ndarray] = None, bias: Optional[np.ndarray] = None,
            flat: bool = False) -> bytes:
    """One conv_q8 (after a flatten when flat) over an input of in_shape (C, H, W)."""
    tensors = [w, w_scale] + [t for t in (scale, bias) if t is not None]
    slots: list[Optional[int]] = [0, 1, None, None]
    k = 2
    if scale is not None:
        slots[2], k = k, k + 1
    if bias is not None:
        slots[3] = k
    ops = [Op("flatten", "f", [0], [])] if flat else []
    ops.append(Op("conv_q8", "q", [len(ops)], slots, attrs))
    return encode_hbn(ops, tensors, {}, in_shape, len(ops))
