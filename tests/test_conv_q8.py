"""conv_q8: the 8-bit convolution op, through hand-built .hbn files, against the numpy reference
of its definition (tests/q8_reference.py) on every ISA path; bit outputs for a binary consumer;
the bad-file errors."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import hbn_engine
from hbn_engine import _core
from hbn_engine.format import FormatError, Op, encode_hbn, read_hbn

sys.path.insert(0, str(Path(__file__).parent))
from q8_reference import conv_q8, q8_file  # noqa: E402


def _weights(rng: np.random.Generator, oc: int, ic: int, kh: int, kw: int) -> tuple[np.ndarray, np.ndarray]:
    w = rng.integers(-127, 128, (oc, ic, kh, kw)).astype(np.int8)
    return w, rng.uniform(0.001, 0.02, oc).astype(np.float32)


@pytest.mark.parametrize("ic, oc, k, stride, pad, n, zero", [
    (3, 16, 3, 1, 1, 1, 128), (1, 5, 5, 2, 2, 2, 0), (17, 33, 3, 2, 0, 1, 255), (5, 70, 1, 1, 0, 3, 7),
    (3, 24, 11, 4, 2, 1, 110), (8, 20, 1, 2, 0, 1, 0)])
def test_conv_q8_matches_reference(each_isa: str, ic: int, oc: int, k: int, stride: int, pad: int, n: int,
                                   zero: int) -> None:
    rng = np.random.default_rng(ic * 100 + oc)
    w, w_scale = _weights(rng, oc, ic, k, k)
    scale = rng.uniform(0.5, 2.0, oc).astype(np.float32)
    bias = rng.uniform(-1, 1, oc).astype(np.float32)
    in_scale = 0.0173
    attrs = {"stride_h": stride, "stride_w": stride, "pad_h": pad, "pad_w": pad, "act": 1,
             "in_scale": in_scale, "in_zero": zero}
    x = rng.uniform(-2.5, 2.5, (n, ic, 13, 12)).astype(np.float32)
    x[0, 0, 0, :4] = np.float32(in_scale) * np.array([0.5, 1.5, -2.5, 300], np.float32)  # ties, clamp
    m = hbn_engine.load(q8_file(w, w_scale, (ic, 13, 12), attrs, scale, bias))
    want = conv_q8(x, w, w_scale, in_scale, zero, stride, pad, scale, bias, relu=True)
    np.testing.assert_array_equal(m.run(x), want)
    assert [kind for _, kind in m.layers] == ["int8"]


def test_linear_q8_and_threads() -> None:
    rng = np.random.default_rng(5)
    w, w_scale = _weights(rng, 1000, 301, 1, 1)
    bias = rng.uniform(-1, 1, 1000).astype(np.float32)
    x = rng.uniform(-1, 1, (3, 301, 1, 1)).astype(np.float32)
    attrs = {"stride_h": 1, "stride_w": 1, "pad_h": 0, "pad_w": 0, "linear": 1, "in_scale": 0.01,
             "in_zero": 100}
    m = hbn_engine.load(q8_file(w, w_scale, (301, 1, 1), attrs, bias=bias, flat=True))
    want = conv_q8(x, w, w_scale, 0.01, 100, bias=bias)[:, :, 0, 0]
    np.testing.assert_array_equal(m.run(x), want)
    m.num_threads = 2
    np.testing.assert_array_equal(m.run(x), want)


def test_conv_q8_writes_bits_for_a_binary_consumer() -> None:
    """conv_q8 -> conv_fbin: with bit passing the q8 kernel thresholds its own output (the
    consumer's rule); without it the fbin packs the floats. Both must agree exactly."""
    rng = np.random.default_rng(6)
    w, w_scale = _weights(rng, 70, 3, 3, 3)
    bias = rng.uniform(-0.5, 0.5, 70).astype(np.float32)
    wb = _core.pack_weights_oihw(rng.standard_normal((8, 70, 3, 3)).astype(np.float32))
    thr = rng.uniform(-0.2, 0.2, 70).astype(np.float32)
    flip = (rng.random(70) < 0.5).astype(np.uint8)
    q8 = Op("conv_q8", "q", [0], [0, 1, None, 2],
            {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1, "in_scale": 0.02, "in_zero": 120})
    fb = Op("conv_fbin", "b", [1], [3, None, None, 4, 5],
            {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1, "in_channels": 70})
    data = encode_hbn([q8, fb], [w, w_scale, bias, wb, thr, flip], {}, (3, 9, 10), 2)
    x = rng.uniform(-2, 2, (2, 3, 9, 10)).astype(np.float32)
    m = hbn_engine.load(data)
    assert m.bit_passing_layers == ["q"]  # conv_q8 writes bits
    got = m.run(x)
    want = hbn_engine.load(data, bit_passing=False).run(x)
    np.testing.assert_array_equal(got, want)


def _bad(**over) -> bytes:
    rng = np.random.default_rng(7)
    w, w_scale = _weights(rng, 4, 3, 3, 3)
    attrs = {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1, "in_scale": 0.5, "in_zero": 3}
    attrs.update(over.pop("attrs", {}))
    w = over.pop("w", w)
    w_scale = over.pop("w_scale", w_scale)
    return q8_file(w, w_scale, (3, 6, 6), attrs, **over)


def test_conv_q8_bad_files() -> None:
    hbn_engine.load(_bad())  # the base file is valid
    with pytest.raises(FormatError, match="'q'.*tensor weight has the wrong dtype"):
        hbn_engine.load(_bad(w=np.zeros((4, 3, 3, 3), np.float32)))
    with pytest.raises(FormatError, match="'q'.*tensor weight has the wrong dtype"):
        hbn_engine.load(_bad(w=np.zeros((4, 3, 3, 3), np.uint8)))
    with pytest.raises(FormatError, match="'q'.*-127..127"):
        hbn_engine.load(_bad(w=np.full((4, 3, 3, 3), -128, np.int8)))
    with pytest.raises(FormatError, match="'q'.*in_zero = 256 not in"):
        hbn_engine.load(_bad(attrs={"in_zero": 256}))
    with pytest.raises(FormatError, match="'q'.*in_zero = -1 not in"):
        hbn_engine.load(_bad(attrs={"in_zero": -1}))
    for s in (0.0, -1.0, 1e-300, 1e300):
        with pytest.raises(FormatError, match="'q'.*in_scale must be a positive finite"):
            hbn_engine.load(_bad(attrs={"in_scale": s}))
    with pytest.raises(FormatError, match="'q'.*in_scale is not finite"):
        hbn_engine.load(_bad(attrs={"in_scale": float("nan")}))
    with pytest.raises(FormatError, match="'q'.*missing attribute in_scale"):
        hbn_engine.load(q8_file(*_weights(np.random.default_rng(0), 4, 3, 1, 1), (3, 6, 6),
                                {"stride_h": 1, "stride_w": 1, "pad_h": 0, "pad_w": 0}))
    with pytest.raises(FormatError, match="'q'.*w_scale holds a non-finite value"):
        hbn_engine.load(_bad(w_scale=np.array([1, np.nan, 1, 1], np.float32)))
    with pytest.raises(FormatError, match="'q'.*w_scale"):
        hbn_engine.load(_bad(w_scale=np.ones(5, np.float32)))
    with pytest.raises(FormatError, match="'q'.*overflows float32"):
        hbn_engine.load(_bad(attrs={"in_scale": 1e30}, w_scale=np.full(4, 1e30, np.float32)))
    with pytest.raises(FormatError, match="'q'.*exceeds 65536"):
        hbn_engine.load(q8_file(np.zeros((2, 65537, 1, 1), np.int8), np.ones(2, np.float32),
                                (65537, 1, 1), {"stride_h": 1, "stride_w": 1, "pad_h": 0, "pad_w": 0,
                                                "in_scale": 1.0}))


def test_i8_tensors_round_trip_through_the_python_reader() -> None:
    rng = np.random.default_rng(8)
    w, w_scale = _weights(rng, 4, 3, 3, 3)
    f = read_hbn(_bad())
    assert f.tensors[0].dtype == np.int8 and f.ops[0].type == "conv_q8"
    assert f.ops[0].attrs["in_zero"] == 3 and f.ops[0].attrs["in_scale"] == 0.5
