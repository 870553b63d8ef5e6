"""Bit-packing (csrc/bitpack): every compiled path against the scalar reference and against
the documented rule (bit 1 = -1; bit = x < 0, or flip ? x > thr : x < thr)."""
from __future__ import annotations

import numpy as np
import pytest

from hbn_engine import _core

CHANNELS = [1, 7, 63, 64, 65, 127, 200]


def pack_numpy(x: np.ndarray, thr: np.ndarray | None = None, flip: np.ndarray | None = None) -> np.ndarray:
    """The packing rule written with numpy only: LSB-first uint64 words along the last axis."""
    if thr is None:
        bits = x < 0
    else:
        f = np.zeros(x.shape[-1], bool) if flip is None else flip.astype(bool)
        bits = np.where(f, x > thr, x < thr)
    c = x.shape[-1]
    words = (c + 63) // 64
    padded = np.zeros(x.shape[:-1] + (words * 64,), bool)
    padded[..., :c] = bits
    return np.packbits(padded, axis=-1, bitorder="little").view("<u8").astype(np.uint64)


def special_input(rng: np.random.Generator, rows: int, c: int) -> np.ndarray:
    x = rng.standard_normal((rows, c)).astype(np.float32)
    x.flat[0] = 0.0
    if x.size > 1:
        x.flat[1] = -0.0
    return x


@pytest.mark.parametrize("c", CHANNELS)
def test_pack_rows_matches_rule_and_reference(each_isa: str, c: int) -> None:
    rng = np.random.default_rng(c)
    x = special_input(rng, 29, c)
    thr = (rng.standard_normal(c) * 0.5).astype(np.float32)
    thr[:: max(1, c // 3)] = np.inf
    if c > 2:
        thr[1] = -np.inf
        thr[2] = x[5, 2]  # equal to an input: strict comparisons give +1
    flip = (rng.random(c) < 0.4).astype(np.uint8) * rng.integers(1, 255, c).astype(np.uint8)
    for t, f in [(None, None), (thr, None), (thr, flip), (thr, flip.astype(bool))]:
        want = pack_numpy(x, t, f)
        np.testing.assert_array_equal(_core.pack_rows_reference(x, t, f), want)
        np.testing.assert_array_equal(_core.pack_rows(x, t, f), want)


def test_pack_rows_flip_edge_values(each_isa: str) -> None:
    """Flipped channels (x > thr) at signed zeros, infinities and NaN, on both sides."""
    edge = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0], np.float32)
    c = 37
    x = np.array([[edge[(r + 3 * ch) % 7] for ch in range(c)] for r in range(21)], np.float32)
    thr = np.array([edge[(2 * ch) % 7] if edge[(2 * ch) % 7] == edge[(2 * ch) % 7] else 0.5
                    for ch in range(c)], np.float32)
    for flip in (np.ones(c, np.uint8), (np.arange(c) % 2).astype(np.uint8)):
        want = pack_numpy(x, thr, flip)
        np.testing.assert_array_equal(_core.pack_rows_reference(x, thr, flip), want)
        np.testing.assert_array_equal(_core.pack_rows(x, thr, flip), want)


def test_pack_rows_nd_and_threads(each_isa: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 17, 19, 96)).astype(np.float32)
    want = pack_numpy(x)
    out = _core.pack_rows(x)
    assert out.shape == (3, 17, 19, 2) and out.dtype == np.uint64
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(_core.pack_rows(x, threads=2), want)


def test_pack_rows_non_contiguous_input() -> None:
    x = np.random.default_rng(2).standard_normal((10, 130)).astype(np.float32)[:, ::2]
    np.testing.assert_array_equal(_core.pack_rows(x), pack_numpy(x))


def test_pack_weights_oihw() -> None:
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 70, 3, 2)).astype(np.float32)
    w[0, 0, 0, 0] = 0.0  # sign(0) = +1
    got = _core.pack_weights_oihw(w)
    assert got.shape == (5, 3, 2, 2)
    np.testing.assert_array_equal(got, pack_numpy(np.ascontiguousarray(w.transpose(0, 2, 3, 1))))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: _core.pack_rows(np.zeros((2, 3), np.float64)), "dtype"),
        (lambda: _core.pack_rows([[1.0]]), "numpy array"),
        (lambda: _core.pack_rows(np.zeros((2, 3), np.float32), np.zeros(4, np.float32)), "3 elements"),
        (lambda: _core.pack_rows(np.zeros((2, 3), np.float32), None, np.zeros(3, np.uint8)), "thresholds"),
        (lambda: _core.pack_rows(np.zeros((2, 0), np.float32)), "channel"),
        (lambda: _core.pack_rows(np.zeros((2, 3), np.float32), np.zeros(3, np.float32), np.zeros(3, np.int32)), "uint8"),
        (lambda: _core.pack_weights_oihw(np.zeros((2, 3, 3), np.float32)), "OC, IC"),
    ],
)
def test_pack_rows_rejects_bad_input(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("ic", [1, 3, 63, 64, 65, 130])
def test_weight_binarizers_agree(ic: int) -> None:
    """The C++ core's one weight binarizer (pack_weights_oihw, bitpack/binarize.h) and the
    exporter's (exporter.pack_sign_bits, which writes the .hbn weights) give the same bits, on
    random weights and on the edges: +0.0 and -0.0 (both +1), tiny negatives, +-inf, NaN."""
    pytest.importorskip("torch")
    from hbn_engine.exporter import pack_sign_bits

    rng = np.random.default_rng(ic)
    w = rng.standard_normal((5, ic, 3, 2)).astype(np.float32)
    edges = np.array([0.0, -0.0, 1e-45, -1e-45, np.inf, -np.inf, np.nan, -1.0, 1.0], np.float32)
    w.flat[::3] = edges[np.arange(w.size)[::3] % edges.size]
    native = _core.pack_weights_oihw(w)
    assert native.dtype == np.uint64 and native.shape == (5, 3, 2, (ic + 63) // 64)
    np.testing.assert_array_equal(native, pack_sign_bits(w))
    zeros = np.zeros((2, ic, 1, 1), np.float32)
    zeros[1] = -0.0
    np.testing.assert_array_equal(_core.pack_weights_oihw(zeros), np.zeros((2, 1, 1, (ic + 63) // 64), np.uint64))
    np.testing.assert_array_equal(pack_sign_bits(zeros), _core.pack_weights_oihw(zeros))
