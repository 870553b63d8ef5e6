"""FullBinConv (csrc/bconv): every compiled path against the scalar reference (exact
integers), the reference against a float64 PyTorch convolution of sign(x), sign(w) with zero
padding, and the fused output stage (float and bit output) against numpy."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch

import hbn_engine
from hbn_engine import _core

class Case(NamedTuple):
    c: int
    oc: int
    k: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    n: int
    h: int
    w: int


# Covers channels 1/8/16/48/63/64/65/96/127/200, kernels 1/3/5/7/11, strides 1/2/4, paddings 0/1/2, odd
# sizes, batch > 1, output channels that are not a multiple of any tile (1, 5, 7, 9, 33, 37, 70).
CASES = [
    Case(1, 5, (3, 3), (1, 1), (1, 1), 2, 7, 9),
    Case(63, 33, (5, 5), (2, 2), (2, 2), 1, 11, 9),
    Case(64, 32, (1, 1), (1, 1), (0, 0), 2, 5, 5),
    Case(65, 40, (7, 7), (4, 4), (2, 2), 1, 15, 13),
    Case(127, 7, (11, 11), (2, 2), (1, 1), 1, 15, 15),
    Case(200, 70, (3, 3), (1, 1), (0, 0), 3, 5, 7),
    Case(200, 9, (1, 1), (4, 4), (0, 0), 1, 9, 9),
    Case(256, 37, (3, 3), (1, 1), (1, 1), 1, 7, 7),
    Case(96, 1, (3, 1), (2, 1), (1, 0), 2, 5, 4),
    Case(8, 10, (3, 3), (1, 1), (2, 2), 1, 4, 4),
    # Compact receptive fields (channels not a multiple of 64): SqueezeNet- and AlexNet-like.
    Case(16, 64, (3, 3), (1, 1), (1, 1), 2, 6, 5),
    Case(48, 40, (3, 3), (2, 2), (1, 1), 1, 7, 8),
    Case(96, 33, (5, 5), (1, 1), (2, 2), 1, 6, 6),
]


def case_id(c: Case) -> str:
    return f"c{c.c}-oc{c.oc}-k{c.k[0]}x{c.k[1]}-s{c.stride[0]}-p{c.pad[0]}-n{c.n}-{c.h}x{c.w}"


def make_case(case: Case, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Float input (NHWC) and weights (OIHW) with exact zeros, plus their packed forms."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.n, case.h, case.w, case.c)).astype(np.float32)
    w = rng.standard_normal((case.oc, case.c) + case.k).astype(np.float32)
    x.flat[:: 17] = 0.0  # sign(0) = +1 on both sides
    w.flat[:: 13] = 0.0
    return x, w, _core.pack_rows(x), _core.pack_weights_oihw(w)


def torch_binary_conv(x: np.ndarray, w: np.ndarray, case: Case) -> np.ndarray:
    """float64 conv of sign(x), sign(w) (sign(0) = +1) with zero padding, NHWC out."""
    sx = torch.from_numpy(np.where(x < 0, -1.0, 1.0).transpose(0, 3, 1, 2).copy())
    sw = torch.from_numpy(np.where(w < 0, -1.0, 1.0))
    y = torch.nn.functional.conv2d(sx, sw, stride=case.stride, padding=case.pad)
    return y.numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_reference_matches_pytorch(case: Case) -> None:
    x, w, xp, wp = make_case(case)
    ref = _core.bconv2d_reference(xp, wp, case.stride, case.pad, in_channels=case.c)
    assert ref.dtype == np.int32
    np.testing.assert_array_equal(ref, torch_binary_conv(x, w, case))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_paths_match_reference(bconv_row: str, case: Case) -> None:
    _, _, xp, wp = make_case(case)
    ref = _core.bconv2d_reference(xp, wp, case.stride, case.pad, in_channels=case.c)
    conv = _core.BConv2d(wp, case.c, case.stride, case.pad)
    np.testing.assert_array_equal(conv.run(xp), ref.astype(np.float32))
    np.testing.assert_array_equal(conv.run(xp, threads=2), ref.astype(np.float32))


def edge_transform(rng: np.random.Generator, case: Case, tiny_normal: bool = False):
    """scale (with +-0 entries; the smallest normal too if tiny_normal), bias, output thresholds
    (the transformed value of a random dot the layer can produce, and +-inf / 0 entries) and
    flips: the edges of the integer-threshold derivation."""
    oc = case.oc
    scale = (rng.standard_normal(oc) * 0.05).astype(np.float32)
    scale[::7] = 0.0
    scale[1::7] = -0.0
    if tiny_normal:
        scale[2::7] = np.float32(2.0**-126)  # the smallest normal: its half is exact
    bias = rng.standard_normal(oc).astype(np.float32)
    k = case.c * case.k[0] * case.k[1]
    d0 = rng.integers(-k, k + 1, oc).astype(np.float32)
    thr = (d0 * scale + bias).astype(np.float32)
    thr[3::9] = np.inf
    thr[4::9] = -np.inf
    thr[5::9] = 0.0
    flip = (rng.random(oc) < 0.5).astype(np.uint8)
    return scale, bias, thr, flip


def transform_numpy(dot: np.ndarray, scale, bias, ps, relu: bool) -> np.ndarray:
    """apply_transform in float32, same operation order: ((dot * scale) * ps) + bias, ReLU."""
    y = dot.astype(np.float32)
    if scale is not None:
        y = y * scale
    if ps is not None:
        y = y * ps.reshape(y.shape[:3] + (1,))
    if bias is not None:
        y = y + bias
    if relu:
        y = np.where(y > 0, y, np.float32(0))
    return y.astype(np.float32)


@pytest.mark.parametrize("case", [CASES[1], CASES[5], CASES[7]], ids=case_id)
def test_output_transform_and_bits(bconv_row: str, case: Case) -> None:
    _, _, xp, wp = make_case(case, seed=1)
    ref = _core.bconv2d_reference(xp, wp, case.stride, case.pad, in_channels=case.c)
    rng = np.random.default_rng(2)
    oc = case.oc
    scale = (rng.standard_normal(oc) * 0.05).astype(np.float32)
    bias = rng.standard_normal(oc).astype(np.float32)
    ps = rng.uniform(0.5, 1.5, ref.shape[:3]).astype(np.float32)
    thr = (rng.standard_normal(oc) * 0.5).astype(np.float32)
    thr[::5] = np.inf
    thr[2::5] = -np.inf
    flip = (rng.random(oc) < 0.5).astype(np.uint8)
    conv = _core.BConv2d(wp, case.c, case.stride, case.pad)
    for kwargs in [
        dict(scale=scale, bias=bias, relu=True),
        dict(scale=scale, bias=bias, pixel_scale=ps, relu=False),
        dict(bias=bias, relu=True),
    ]:
        want = transform_numpy(ref, kwargs.get("scale"), kwargs.get("bias"), kwargs.get("pixel_scale"), kwargs["relu"])
        np.testing.assert_array_equal(conv.run(xp, **kwargs), want)
        # Bit output = the next layer's packing of the same floats.
        for f in (flip, None):
            got = conv.run(xp, **kwargs, out_threshold=thr, out_flip=f)
            assert got.dtype == np.uint64 and got.shape == ref.shape[:3] + ((oc + 63) // 64,)
            np.testing.assert_array_equal(got, _core.pack_rows_reference(want, thr, f))
            np.testing.assert_array_equal(conv.run(xp, **kwargs, out_threshold=thr, out_flip=f, threads=2), got)


# Layer shapes of the model-zoo networks in small: >= 256 output pixels, so bit outputs take the
# integer-threshold epilogue; at most 16 output channels (narrow tiles); fields of <= 32 bits
# (32-bit lanes); 3-wide compact fields on 16/32 channels; short K with all weight blocks in one
# multi-block tile; a strided 1x1 downsample.
MODEL_CASES = [
    Case(96, 16, (1, 1), (1, 1), (0, 0), 1, 23, 23),
    Case(16, 64, (1, 1), (1, 1), (0, 0), 1, 23, 23),
    Case(32, 40, (1, 1), (1, 1), (0, 0), 2, 17, 16),
    Case(16, 64, (3, 3), (1, 1), (1, 1), 1, 24, 22),
    Case(32, 48, (3, 3), (1, 1), (1, 1), 1, 23, 23),
    Case(48, 48, (3, 3), (1, 1), (1, 1), 2, 17, 16),
    Case(64, 64, (3, 3), (1, 1), (1, 1), 1, 23, 23),
    Case(64, 128, (1, 1), (2, 2), (0, 0), 1, 46, 45),
    # 169 output pixels: the float rule's plain epilogue on the avx512 row (integer cut at 256).
    Case(64, 64, (3, 3), (1, 1), (1, 1), 1, 13, 13),
]


@pytest.mark.parametrize("case", MODEL_CASES, ids=case_id)
def test_model_shapes_float_and_bits(bconv_row: str, case: Case) -> None:
    """Float and bit outputs of model-like shapes, with thresholds that sit exactly on reachable
    values (ties), scales of both signs and +-0, ReLU's flat region and infinite thresholds:
    the edges of the integer-threshold derivation."""
    _, _, xp, wp = make_case(case, seed=3)
    ref = _core.bconv2d_reference(xp, wp, case.stride, case.pad, in_channels=case.c)
    rng = np.random.default_rng(5)
    oc = case.oc
    scale, bias, thr, flip = edge_transform(rng, case)
    conv = _core.BConv2d(wp, case.c, case.stride, case.pad)
    np.testing.assert_array_equal(conv.run(xp), ref.astype(np.float32))
    for relu in (False, True):
        want = transform_numpy(ref, scale, bias, None, relu)
        np.testing.assert_array_equal(conv.run(xp, scale=scale, bias=bias, relu=relu), want)
        for f in (flip, None):
            got = conv.run(xp, scale=scale, bias=bias, relu=relu, out_threshold=thr, out_flip=f)
            np.testing.assert_array_equal(got, _core.pack_rows_reference(want, thr, f))
            np.testing.assert_array_equal(
                conv.run(xp, scale=scale, bias=bias, relu=relu, out_threshold=thr, out_flip=f, threads=2), got
            )


def test_linear_layer_and_threads(bconv_row: str) -> None:
    """A fully connected layer is a 1x1 conv on a 1x1 map; few rows split over channels."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 1, 1, 700)).astype(np.float32)
    w = rng.standard_normal((300, 700, 1, 1)).astype(np.float32)
    xp, wp = _core.pack_rows(x), _core.pack_weights_oihw(w)
    want = (np.where(x[:, 0, 0] < 0, -1.0, 1.0) @ np.where(w[:, :, 0, 0] < 0, -1.0, 1.0).T).astype(np.float32)
    conv = _core.BConv2d(wp, 700)
    np.testing.assert_array_equal(conv.run(xp)[:, 0, 0], want)
    np.testing.assert_array_equal(conv.run(xp, threads=2)[:, 0, 0], want)


def test_bad_input_raises() -> None:
    _, _, xp, wp = make_case(CASES[0])
    with pytest.raises(ValueError, match="dtype"):
        _core.bconv2d(xp.astype(np.int64), wp, in_channels=1)
    with pytest.raises(ValueError, match="words"):
        _core.bconv2d(np.zeros((1, 5, 5, 2), np.uint64), wp, in_channels=1)
    with pytest.raises(ValueError, match="tail bits"):
        _core.bconv2d(np.full((1, 5, 5, 1), 2, np.uint64), wp, in_channels=1)
    with pytest.raises(ValueError, match="stride"):
        _core.bconv2d(xp, wp, stride=0, in_channels=1)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        _core.bconv2d(np.zeros((1, 1, 1, 1), np.uint64), wp, in_channels=1)
    with pytest.raises(ValueError, match="elements"):
        _core.bconv2d(xp, wp, in_channels=1, scale=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="out_threshold"):
        _core.bconv2d(xp, wp, in_channels=1, out_flip=np.ones(5, np.uint8))
    with pytest.raises(ValueError, match="channels"):
        _core.BConv2d(wp, 65)
    with pytest.raises(ValueError, match="unknown ISA"):
        _core.peak_binary_macs("sse9", 0.01)


def test_peak_loops_report_rates() -> None:
    for isa in hbn_engine.supported_isas():
        assert _core.peak_binary_macs(isa, 0.02) > 1e8
        assert _core.peak_fma_macs(isa, 0.02) > 1e7
