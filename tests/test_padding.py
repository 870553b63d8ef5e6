"""Convolution padding larger than the kernel (issue 11, item 1).

PyTorch accepts any padding >= 0, so an exported layer may have windows that lie wholly in the
padding and whole output rows and columns of pure padding. Every conv kind must then compute
exactly what PyTorch computes: FullBin pads the binarized input with 0 (docs/models.md), the
float and WeightBin convs pad the float input with 0. Checked at two levels:

* kernels (every compiled path; AVX2 in both popcount formulations for FullBin) against a
  float64 PyTorch convolution, on the issue's layer, named edge shapes and a seeded sweep of
  padding 0..2k+1 with asymmetric h/w, strides 1-3 and odd channel counts;
* models built from hbn_engine.nn / torch layers, exported, loaded and run, against the
  PyTorch eval forward (the issue's exact layer killed the process with SIGSEGV).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import hbn_engine  # noqa: E402
from hbn_engine import _core  # noqa: E402
from hbn_engine import nn as hnn  # noqa: E402

class Geo(NamedTuple):
    n: int
    h: int
    w: int
    ic: int
    oc: int
    k: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]


def geo_id(g: Geo) -> str:
    return (f"n{g.n}-{g.h}x{g.w}-ic{g.ic}-oc{g.oc}-k{g.k[0]}x{g.k[1]}-s{g.stride[0]}x{g.stride[1]}"
            f"-p{g.pad[0]}x{g.pad[1]}")


NAMED = [
    Geo(1, 4, 5, 3, 5, (1, 1), (1, 1), (3, 3)),      # 1x1, pad 3
    Geo(2, 4, 4, 5, 7, (3, 3), (1, 1), (5, 5)),      # 3x3, pad 5
    Geo(1, 3, 3, 1, 3, (5, 5), (1, 1), (11, 10)),    # pad > 2k
    Geo(1, 6, 7, 9, 11, (3, 3), (2, 3), (7, 1)),     # asymmetric: pad > k on h only
    Geo(1, 6, 7, 9, 11, (1, 3), (1, 2), (0, 4)),     # ... on w only
    Geo(1, 5, 6, 16, 20, (3, 3), (1, 1), (4, 4)),    # FullBin compact, 3-wide runs, 16 channels
    Geo(1, 6, 5, 32, 33, (3, 3), (1, 1), (5, 4)),    # ... 32 channels
    Geo(1, 9, 5, 64, 40, (2, 3), (3, 1), (5, 7)),    # FullBin zero-padded copy
    Geo(2, 5, 7, 130, 70, (1, 3), (2, 2), (4, 0)),   # three words per pixel
    Geo(1, 17, 17, 13, 16, (1, 1), (1, 1), (3, 3)),  # 32-bit lanes, >= 512 output pixels
    Geo(1, 9, 9, 200, 12, (3, 3), (1, 1), (4, 4)),   # narrow tiles
    Geo(3, 1, 1, 65, 33, (1, 1), (1, 1), (2, 2)),    # a 1x1 map: 24 of 25 outputs pure padding
]


def sweep(count: int, seed: int) -> list[Geo]:
    """Padding 0..2k+1 on each axis independently; kernels 1-4, strides 1-3, odd channels."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        kh = int(rng.integers(1, 5))
        kw = kh if i % 3 == 0 else int(rng.integers(1, 5))
        ph, pw = int(rng.integers(0, 2 * kh + 2)), int(rng.integers(0, 2 * kw + 2))
        h = max(int(rng.integers(1, 7)), kh - 2 * ph)
        w = max(int(rng.integers(1, 7)), kw - 2 * pw)
        out.append(Geo(int(rng.integers(1, 3)), h, w, int(rng.choice([1, 3, 5, 7, 15, 17, 33, 63, 65, 97])),
                       int(rng.integers(1, 41)), (kh, kw),
                       (int(rng.integers(1, 4)), int(rng.integers(1, 4))), (ph, pw)))
    return out


CASES = NAMED + sweep(20, seed=11)


def inputs(g: Geo, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """NHWC float input and OIHW float weights, with exact zeros (sign(0) = +1)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (g.n, g.h, g.w, g.ic)).astype(np.float32)
    w = rng.uniform(-1, 1, (g.oc, g.ic) + g.k).astype(np.float32)
    x.flat[::13] = 0.0
    w.flat[::11] = 0.0
    return x, w


def torch_conv(x: np.ndarray, w: np.ndarray, g: Geo) -> np.ndarray:
    """float64 PyTorch conv with zero padding; NHWC in and out."""
    xt = torch.from_numpy(x.astype(np.float64).transpose(0, 3, 1, 2).copy())
    y = torch.nn.functional.conv2d(xt, torch.from_numpy(w.astype(np.float64)), stride=g.stride, padding=g.pad)
    return y.numpy().transpose(0, 2, 3, 1)


def sign(a: np.ndarray) -> np.ndarray:
    return np.where(a < 0, -1.0, 1.0)


def tolerance(k: int) -> float:
    return 1e-5 * np.sqrt(k) + 1e-6 * k


@pytest.mark.parametrize("g", CASES, ids=geo_id)
def test_fullbin_kernel_matches_pytorch(bconv_row: str, g: Geo) -> None:
    x, w = inputs(g, hash(g) % 2**32)
    want = torch_conv(sign(x), sign(w), g)  # binarized input padded with 0
    xp, wp = _core.pack_rows(x), _core.pack_weights_oihw(w)
    ref = _core.bconv2d_reference(xp, wp, g.stride, g.pad, in_channels=g.ic)
    np.testing.assert_array_equal(ref, want)
    conv = _core.BConv2d(wp, g.ic, g.stride, g.pad)
    np.testing.assert_array_equal(conv.run(xp), want.astype(np.float32))
    np.testing.assert_array_equal(conv.run(xp, threads=2), want.astype(np.float32))
    # Bit output (the integer-threshold epilogue from 160 output pixels, 256 on the avx512 row) = packing the floats.
    rng = np.random.default_rng(3)
    scale = rng.uniform(0.05, 0.2, g.oc).astype(np.float32)
    bias = rng.uniform(-1, 1, g.oc).astype(np.float32)
    thr = rng.uniform(-1, 1, g.oc).astype(np.float32)
    floats = conv.run(xp, scale=scale, bias=bias, relu=False)
    np.testing.assert_array_equal(conv.run(xp, scale=scale, bias=bias, out_threshold=thr),
                                  _core.pack_rows_reference(floats, thr, None))


@pytest.mark.parametrize("g", CASES, ids=geo_id)
def test_float_and_weightbin_kernels_match_pytorch(each_isa: str, g: Geo) -> None:
    x, w = inputs(g, hash(g) % 2**32 + 1)
    k = g.ic * g.k[0] * g.k[1]
    want_f, want_b = torch_conv(x, w, g), torch_conv(x, sign(w), g)
    bits = _core.pack_weights_oihw(w)
    for algo in ("im2col", "direct"):
        got = _core.conv2d_f32(x, w, g.stride, g.pad, algo=algo)
        np.testing.assert_allclose(got, want_f, rtol=0, atol=tolerance(k), err_msg=f"float {algo}")
        for strategy in ("unpack", "direct", "lut"):
            got = _core.wbconv2d(x, bits, g.stride, g.pad, strategy=strategy, algo=algo)
            np.testing.assert_allclose(got, want_b, rtol=0, atol=tolerance(k), err_msg=f"wbin {algo}/{strategy}")
    np.testing.assert_allclose(_core.conv2d_f32_reference(x, w, g.stride, g.pad), want_f, rtol=0,
                               atol=tolerance(k))
    np.testing.assert_allclose(_core.wbconv2d_reference(x, bits, g.stride, g.pad), want_b, rtol=0,
                               atol=tolerance(k))


# --- models: export -> load -> run against the PyTorch eval forward --------------------------


def _export_and_load(net: torch.nn.Module, x: torch.Tensor, tmp_path) -> hbn_engine.Model:
    path = tmp_path / "net.hbn"
    hbn_engine.export(net.eval(), x[:1], str(path))
    return hbn_engine.load(path)


@pytest.fixture(scope="module")
def issue_11_layer(tmp_path_factory, one_torch_thread: None) -> tuple:
    torch.manual_seed(0)
    net = torch.nn.Sequential(hnn.FullBinConv2d(8, 4096, 1, padding=40)).eval()
    x = torch.randn(1, 8, 2, 2)
    path = tmp_path_factory.mktemp("issue11") / "net.hbn"
    hbn_engine.export(net, x, str(path))
    with torch.no_grad():
        want = net(x).numpy()
    return hbn_engine.load(path), x.numpy(), want


def test_issue_11_layer(each_isa: str, issue_11_layer: tuple) -> None:
    """The issue's exact layer, FullBinConv2d(8, 4096, 1, padding=40): exported, loaded and
    run it read past the padding-correction table and crashed the process."""
    model, x, want = issue_11_layer
    got = model.run(x)
    assert got.shape == want.shape == (1, 4096, 82, 82)
    # Integer dot products, then the same float operations in the same order as hbn_engine.nn.
    np.testing.assert_array_equal(got, want)


# (kernel, stride, padding) per layer; padding beyond the kernel on one or both axes.
LAYERS = [
    ((1, 1), (1, 1), (3, 3)),
    ((3, 3), (1, 1), (5, 5)),
    ((3, 3), (2, 2), (4, 1)),
    ((2, 3), (1, 3), (0, 7)),
    ((1, 1), (3, 1), (2, 6)),
]


def _layer_id(spec: tuple) -> str:
    (kh, kw), (sh, sw), (ph, pw) = spec
    return f"k{kh}x{kw}-s{sh}x{sw}-p{ph}x{pw}"


@pytest.mark.parametrize("spec", LAYERS, ids=_layer_id)
@pytest.mark.parametrize("kind", ["fullbin", "weightbin", "float"])
def test_single_layer_models(each_isa: str, kind: str, spec: tuple, tmp_path, one_torch_thread: None) -> None:
    kernel, stride, padding = spec
    torch.manual_seed(1)
    if kind == "fullbin":
        layer = hnn.FullBinConv2d(13, 17, kernel, stride, padding, activation=None)
    elif kind == "weightbin":
        layer = hnn.WeightBinConv2d(13, 17, kernel, stride, padding, bias=True)
    else:
        layer = torch.nn.Conv2d(13, 17, kernel, stride, padding)
    net = torch.nn.Sequential(layer)
    x = torch.randn(3, 13, 6, 5)
    model = _export_and_load(net, x, tmp_path)
    with torch.no_grad():
        want = net.eval()(x).numpy()
    got = model.run(x.numpy())
    assert got.shape == want.shape
    if kind == "fullbin":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(np.abs(want).max()))


def test_mixed_chain_model(each_isa: str, tmp_path, one_torch_thread: None) -> None:
    """Float -> FullBin -> FullBin (bits passed between them) -> WeightBin, each padding past
    its kernel. The FullBin layers keep the default BatchNorm (zero mean, unit variance) and no
    ReLU, so the sign the next layer takes is the sign of a float PyTorch computes in the same
    order: the whole chain is exact up to float round-off in the float and WeightBin layers."""
    torch.manual_seed(2)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, 1, 4),
        hnn.FullBinConv2d(16, 20, 3, 1, (5, 4), activation=None),
        hnn.FullBinConv2d(20, 9, 1, 2, 3, activation=None),
        hnn.WeightBinConv2d(9, 7, 3, (1, 2), (4, 2)),
    )
    x = torch.randn(2, 3, 7, 6)
    model = _export_and_load(net, x, tmp_path)
    with torch.no_grad():
        want = net.eval()(x).numpy()
    got = model.run(x.numpy())
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * float(np.abs(want).max()))
