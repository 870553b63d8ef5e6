"""FullBinConv with {0, 1} inputs (InputDomain::zero_one, the input of sign(relu(x))): bit 1 = 0,
bit 0 = 1, weights +-1. The scalar reference against a float64 PyTorch convolution of the {0, 1}
input with zero padding, every bconv kernel row against the reference (exact integers, 1 and 2
threads), and the output stage (float and bit output, the integer-threshold epilogue with ties)
against numpy applied to the reference's integers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import hbn_engine
from hbn_engine import _core
from test_bconv import CASES, MODEL_CASES, Case, case_id, edge_transform, transform_numpy

# Shapes beyond test_bconv's: odd channel counts, bits not a multiple of 64, stride with padding,
# batch > 1, compact fields (channels off the word size), 32-bit-lane fields, narrow tiles.
EXTRA_CASES = [
    Case(3, 7, (3, 3), (1, 1), (1, 1), 3, 9, 8),
    Case(33, 17, (3, 3), (2, 2), (1, 1), 2, 9, 11),
    Case(130, 65, (3, 3), (1, 1), (1, 1), 1, 13, 13),
    Case(24, 96, (3, 3), (1, 1), (1, 1), 2, 13, 13),
    Case(7, 9, (1, 1), (1, 1), (0, 0), 2, 13, 13),
]
ALL = CASES + MODEL_CASES + EXTRA_CASES


def make_01(case: Case, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A {0, 1} input (about 40% zeros, as sign(relu(x)) gives) and +-1 weights, plus their bits:
    input bit 1 where the value is 0 (pack_rows' bit of x < 0.5 with thresholds 0.5)."""
    rng = np.random.default_rng(seed)
    a = (rng.random((case.n, case.h, case.w, case.c)) > 0.4).astype(np.float32)
    w = np.where(rng.standard_normal((case.oc, case.c) + case.k) < 0, -1.0, 1.0).astype(np.float32)
    xp = _core.pack_rows(a, np.full(case.c, 0.5, np.float32))
    return a, w, xp, _core.pack_weights_oihw(w)


def torch_conv_01(a: np.ndarray, w: np.ndarray, case: Case) -> np.ndarray:
    at = torch.from_numpy(a.astype(np.float64).transpose(0, 3, 1, 2).copy())
    y = torch.nn.functional.conv2d(at, torch.from_numpy(w.astype(np.float64)), stride=case.stride, padding=case.pad)
    return y.numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("case", ALL, ids=case_id)
def test_reference_matches_pytorch(case: Case) -> None:
    a, w, xp, wp = make_01(case)
    ref = _core.bconv2d_reference(xp, wp, case.stride, case.pad, in_channels=case.c, input_domain="zero_one")
    assert ref.dtype == np.int32
    np.testing.assert_array_equal(ref, torch_conv_01(a, w, case))


@pytest.mark.parametrize("case", ALL, ids=case_id)
def test_paths_match_reference(bconv_row: str, case: Case) -> None:
    _, _, xp, wp = make_01(case, seed=1)
    ref = _core.bconv2d_reference(xp, wp, case.stride, case.pad, in_channels=case.c, input_domain="zero_one")
    conv = _core.BConv2d(wp, case.c, case.stride, case.pad, input_domain="zero_one")
    assert conv.input_domain == "zero_one"
    np.testing.assert_array_equal(conv.run(xp), ref.astype(np.float32))
    np.testing.assert_array_equal(conv.run(xp, threads=2), ref.astype(np.float32))


@pytest.mark.parametrize("case", MODEL_CASES + EXTRA_CASES + [CASES[1], CASES[7]], ids=case_id)
def test_output_stage_float_and_bits(bconv_row: str, case: Case) -> None:
    """The transform applied to the {0, 1} dot products, bit for bit (the kernels halve the
    scale of twice the dot product: exact), and bit outputs with thresholds on reachable values
    (ties), scales of both signs and +-0, ReLU, a per-pixel scale and infinite thresholds."""
    _, _, xp, wp = make_01(case, seed=2)
    ref = _core.bconv2d_reference(xp, wp, case.stride, case.pad, in_channels=case.c, input_domain="zero_one")
    rng = np.random.default_rng(5)
    scale, bias, thr, flip = edge_transform(rng, case, tiny_normal=True)
    ps = rng.uniform(0.5, 1.5, ref.shape[:3]).astype(np.float32)
    conv = _core.BConv2d(wp, case.c, case.stride, case.pad, input_domain="zero_one")
    for kwargs in [dict(scale=scale, bias=bias, relu=False), dict(scale=scale, bias=bias, relu=True),
                   dict(scale=scale, bias=bias, pixel_scale=ps, relu=False), dict(bias=bias, relu=True)]:
        want = transform_numpy(ref, kwargs.get("scale"), kwargs.get("bias"), kwargs.get("pixel_scale"),
                               kwargs["relu"])
        np.testing.assert_array_equal(conv.run(xp, **kwargs), want)
        for f in (flip, None):
            got = conv.run(xp, **kwargs, out_threshold=thr, out_flip=f)
            np.testing.assert_array_equal(got, _core.pack_rows_reference(want, thr, f))
            np.testing.assert_array_equal(conv.run(xp, **kwargs, out_threshold=thr, out_flip=f, threads=2), got)


def test_domains_differ_and_pm1_is_default() -> None:
    case = CASES[0]
    _, _, xp, wp = make_01(case)
    pm1 = _core.bconv2d_reference(xp, wp, case.stride, case.pad, in_channels=case.c)
    assert _core.BConv2d(wp, case.c, case.stride, case.pad).input_domain == "pm1"
    np.testing.assert_array_equal(_core.BConv2d(wp, case.c, case.stride, case.pad).run(xp), pm1)
    z = _core.bconv2d_reference(xp, wp, case.stride, case.pad, in_channels=case.c, input_domain="zero_one")
    assert not np.array_equal(pm1, z)


def test_bad_domain_and_subnormal_scale_raise() -> None:
    case = CASES[0]
    _, _, xp, wp = make_01(case)
    with pytest.raises(ValueError, match="input_domain must be"):
        _core.BConv2d(wp, case.c, case.stride, case.pad, input_domain="01")
    with pytest.raises(ValueError, match="input_domain must be"):
        _core.bconv2d_reference(xp, wp, case.stride, case.pad, in_channels=case.c, input_domain="")
    conv = _core.BConv2d(wp, case.c, case.stride, case.pad, input_domain="zero_one")
    scale = np.ones(case.oc, np.float32)
    scale[2] = np.float32(1e-45)
    with pytest.raises(ValueError, match="subnormal scale"):
        conv.run(xp, scale=scale)


# --- the conv_fbin op with input_domain = 1, through the runtime --------------------------------
from hbn_engine.exporter import pack_sign_bits  # noqa: E402
from hbn_engine.format import FormatError, Op, encode_hbn  # noqa: E402

TINY = np.float32(np.nextafter(np.float32(0), np.float32(1)))  # bit 1 (the value 0) iff x <= 0


def _conv01(a: np.ndarray, neg: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Exact integer conv (float64) of a {0, 1} NCHW input with +-1 weights, zero padding."""
    w = torch.from_numpy(np.where(neg, -1.0, 1.0))
    return torch.nn.functional.conv2d(torch.from_numpy(a.astype(np.float64)), w, stride=stride,
                                      padding=pad).numpy()


def _two_layer_file(rng: np.random.Generator, domain_attr: dict) -> tuple[bytes, dict]:
    """conv_fbin 13 -> 20 (3x3, pad 1) then conv_fbin 20 -> 9 (3x3, stride 2, pad 1): the first
    layer's output reaches the second as bits thresholded by its producer (225 pixels: the
    integer-threshold epilogue)."""
    n1 = rng.random((20, 13, 3, 3)) < 0.5
    n2 = rng.random((9, 20, 3, 3)) < 0.5
    p = {"n1": n1, "n2": n2,
         "s1": (rng.standard_normal(20) * 0.1).astype(np.float32),
         "b1": rng.standard_normal(20).astype(np.float32),
         "t2": (rng.standard_normal(20) * 0.5).astype(np.float32),
         "f2": (rng.random(20) < 0.3).astype(np.uint8),
         "s2": (rng.standard_normal(9) * 0.1).astype(np.float32),
         "b2": rng.standard_normal(9).astype(np.float32)}
    tensors = [pack_sign_bits(n1), p["s1"], p["b1"], np.full(13, TINY, np.float32), np.zeros(13, np.uint8),
               pack_sign_bits(n2), p["s2"], p["b2"], p["t2"], p["f2"]]
    conv = {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1, "in_channels": 13, **domain_attr}
    conv2 = {"stride_h": 2, "stride_w": 2, "pad_h": 1, "pad_w": 1, "in_channels": 20, **domain_attr}
    ops = [Op("conv_fbin", "c1", [0], [0, 1, 2, 3, 4], conv), Op("conv_fbin", "c2", [1], [5, 6, 7, 8, 9], conv2)]
    return encode_hbn(ops, tensors, {}, (13, 15, 15), 2), p


def test_runtime_two_layers_exact() -> None:
    rng = np.random.default_rng(7)
    data, p = _two_layer_file(rng, {"input_domain": 1})
    x = rng.standard_normal((3, 13, 15, 15)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = 0.0  # relu-like exact zeros: value 0
    x[0, 0, 0, :4] = [-0.0, TINY, -TINY, 0.0]
    a0 = (x > 0).astype(np.float64)
    y1 = (_conv01(a0, p["n1"], 1, 1).astype(np.float32) * p["s1"][:, None, None]) + p["b1"][:, None, None]
    bit = np.where(p["f2"][:, None, None] == 1, y1 > p["t2"][:, None, None], y1 < p["t2"][:, None, None])
    y2 = (_conv01((~bit).astype(np.float64), p["n2"], 2, 1).astype(np.float32) * p["s2"][:, None, None]
          + p["b2"][:, None, None])
    for bit_passing in (True, False):
        m = hbn_engine.load(data, bit_passing=bit_passing)
        for threads in (1, 2):
            m.num_threads = threads
            np.testing.assert_array_equal(m.run(x), y2)
            np.testing.assert_array_equal(m.run(x[1:2]), y2[1:2])
    # the +-1 reading of the same bits differs (the attribute is what makes it exact)
    pm1, _ = _two_layer_file(np.random.default_rng(7), {})
    assert not np.array_equal(hbn_engine.load(pm1).run(x), y2)


def test_runtime_bad_files() -> None:
    rng = np.random.default_rng(7)
    with pytest.raises(FormatError, match="'c1'.*input_domain = 2 not in"):
        hbn_engine.load(_two_layer_file(rng, {"input_domain": 2})[0])
    n1 = rng.random((4, 3, 1, 1)) < 0.5
    scale = np.array([1, 3 * TINY, 1, 1], np.float32)  # odd multiple of the smallest subnormal
    data = encode_hbn([Op("conv_fbin", "c", [0], [0, 1], {"stride_h": 1, "stride_w": 1, "pad_h": 0, "pad_w": 0,
                                                          "in_channels": 3, "input_domain": 1})],
                      [pack_sign_bits(n1), scale], {}, (3, 2, 2), 1)
    with pytest.raises(FormatError, match="'c'.*channel 1 has a subnormal scale"):
        hbn_engine.load(data)
