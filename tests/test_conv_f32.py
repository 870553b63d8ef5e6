"""Float conv (FPrec layers, first conv) and SGEMM: every compiled path against a float64
numpy convolution, with the fused transform, edge shapes, threads and input validation."""
from __future__ import annotations

import numpy as np
import pytest

import hbn_engine
from hbn_engine import _core


def conv_nhwc_f64(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: tuple[int, int]) -> np.ndarray:
    """Float64 NHWC conv with OIHW weights and zero padding (PyTorch semantics)."""
    n, h, wd, c = x.shape
    oc, ic, kh, kw = w.shape
    assert ic == c
    sh, sw = stride
    ph, pw = padding
    xp = np.zeros((n, h + 2 * ph, wd + 2 * pw, c), dtype=np.float64)
    xp[:, ph : ph + h, pw : pw + wd, :] = x
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, oh, ow, oc), dtype=np.float64)
    w64 = w.astype(np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
            out += np.einsum("nhwc,oc->nhwo", patch, w64[:, :, i, j])
    return out


def tolerance(k: int) -> float:
    """Float32 accumulation of k products of magnitude <= 1 (inputs and weights in [-1, 1])."""
    return 1e-5 * np.sqrt(k) + 1e-6 * k


# (n, h, w, ic, oc, k, stride, pad): channels 1/3/63/64/65/200, OC 1/17/64/65, kernels
# 1/3/5/7/11, strides 1/2/4, paddings 0/1/2, odd sizes, batches > 1, K not a tile multiple.
CASES = [
    (1, 5, 5, 1, 1, 1, 1, 0),
    (2, 7, 9, 3, 17, 3, 1, 1),
    (1, 9, 8, 63, 64, 3, 2, 1),
    (1, 6, 7, 64, 65, 1, 1, 0),
    (2, 5, 5, 65, 33, 5, 1, 2),
    (1, 11, 10, 3, 16, 7, 2, 2),
    (1, 23, 23, 3, 20, 11, 4, 2),
    (1, 6, 6, 200, 31, 3, 1, 0),
    (2, 2, 3, 5, 7, 5, 1, 2),  # kernel overhangs both sides of the image
    (3, 4, 4, 37, 64, 1, 2, 0),
    (1, 3, 3, 300, 9, 3, 1, 1),
    # First-layer shapes for the direct path: output rows that are not a multiple of any ISA's
    # tile height (29, 31), kernel rows split over several K blocks (15 x 15, one channel).
    (2, 31, 61, 3, 40, 7, 2, 3),
    (1, 45, 93, 1, 33, 15, 3, 0),
]
# "direct" falls back to im2col where a kernel row does not fit the K block (300 channels).
ALGOS = ["im2col", "direct"]


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "n{}_{}x{}_ic{}_oc{}_k{}_s{}_p{}".format(*c))
def test_conv2d_f32_matches_float64(each_isa: str, case: tuple[int, ...], algo: str) -> None:
    n, h, w, ic, oc, k, s, p = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.uniform(-1, 1, (n, h, w, ic)).astype(np.float32)
    wt = rng.uniform(-1, 1, (oc, ic, k, k)).astype(np.float32)
    got = _core.conv2d_f32(x, wt, stride=(s, s), padding=(p, p), algo=algo)
    ref = conv_nhwc_f64(x, wt, (s, s), (p, p))
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=0, atol=tolerance(ic * k * k))


def test_direct_and_im2col_agree_across_image_sizes(restore_isa: None) -> None:
    """One layer object run on images of growing size: the direct path's padded copy lives in
    the workspace, which must follow the image (a stale, smaller one would overflow)."""
    rng = np.random.default_rng(11)
    wt = rng.uniform(-1, 1, (24, 3, 7, 7)).astype(np.float32)
    for isa in hbn_engine.supported_isas():
        hbn_engine.set_isa(isa)
        direct = _core.Conv2dF32(wt, (2, 2), (3, 3), algo="direct")
        im2col = _core.Conv2dF32(wt, (2, 2), (3, 3), algo="im2col")
        for n, size in ((1, 9), (2, 40), (1, 77)):
            x = rng.uniform(-1, 1, (n, size, size + 3, 3)).astype(np.float32)
            np.testing.assert_allclose(direct.run(x), im2col.run(x), rtol=0, atol=tolerance(147),
                                       err_msg=f"{isa} {size}")


def test_unknown_algo_is_rejected() -> None:
    with pytest.raises(ValueError, match="algo"):
        _core.Conv2dF32(np.zeros((4, 3, 3, 3), np.float32), algo="winograd")


@pytest.mark.parametrize("algo", ALGOS)
def test_conv2d_f32_transform(each_isa: str, algo: str) -> None:
    rng = np.random.default_rng(1)
    n, h, w, ic, oc = 2, 6, 5, 19, 45
    x = rng.uniform(-1, 1, (n, h, w, ic)).astype(np.float32)
    wt = rng.uniform(-1, 1, (oc, ic, 3, 3)).astype(np.float32)
    scale = rng.uniform(0.5, 2, oc).astype(np.float32)
    bias = rng.uniform(-1, 1, oc).astype(np.float32)
    m = n * h * w  # stride 1, pad 1 keeps the size
    pixel_scale = rng.uniform(0.5, 1.5, m).astype(np.float32)
    got = _core.conv2d_f32(x, wt, (1, 1), (1, 1), scale=scale, bias=bias, pixel_scale=pixel_scale,
                           relu=True, algo=algo)
    acc = conv_nhwc_f64(x, wt, (1, 1), (1, 1))
    ref = np.maximum(acc * scale * pixel_scale.reshape(n, h, w, 1) + bias, 0.0)
    np.testing.assert_allclose(got, ref, rtol=0, atol=3 * tolerance(ic * 9))
    assert (got >= 0).all() and (got == 0).any() and (got > 0).any()
    # The native reference applies the same transform definition.
    ref_native = _core.conv2d_f32_reference(x, wt, (1, 1), (1, 1), scale=scale, bias=bias, relu=True,
                                            pixel_scale=pixel_scale)
    np.testing.assert_allclose(got, ref_native, rtol=0, atol=3 * tolerance(ic * 9))


def test_paths_agree_with_native_reference(restore_isa: None) -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (2, 13, 11, 70)).astype(np.float32)
    wt = rng.uniform(-1, 1, (67, 70, 3, 3)).astype(np.float32)
    ref = _core.conv2d_f32_reference(x, wt, (2, 1), (1, 0))
    for isa in hbn_engine.supported_isas():
        hbn_engine.set_isa(isa)
        got = _core.conv2d_f32(x, wt, (2, 1), (1, 0))
        np.testing.assert_allclose(got, ref, rtol=0, atol=tolerance(630), err_msg=isa)


def test_large_input_runs_in_bounded_blocks(each_isa: str) -> None:
    """Many row blocks and K blocks (im2col is materialised one block at a time)."""
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (1, 40, 37, 40)).astype(np.float32)
    wt = rng.uniform(-1, 1, (40, 40, 3, 3)).astype(np.float32)
    got = _core.Conv2dF32(wt, (1, 1), (1, 1)).run(x)
    np.testing.assert_allclose(got, conv_nhwc_f64(x, wt, (1, 1), (1, 1)), rtol=0, atol=tolerance(360))


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (1, 700, 70), (5, 129, 33), (100, 300, 64), (29, 1000, 200)])
def test_sgemm(each_isa: str, m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(m * 1000 + n)
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    bias = rng.uniform(-1, 1, n).astype(np.float32)
    scale = rng.uniform(0.5, 2, n).astype(np.float32)
    got = _core.sgemm(a, b, scale=scale, bias=bias, relu=True)
    ref = np.maximum(a.astype(np.float64) @ b * scale + bias, 0)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2 * tolerance(k))
    plain = _core.Sgemm(b).run(a)
    np.testing.assert_allclose(plain, a.astype(np.float64) @ b, rtol=0, atol=tolerance(k))


def test_bad_inputs_raise_value_error() -> None:
    x = np.zeros((1, 4, 4, 3), np.float32)
    w = np.zeros((8, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="float32"):
        _core.conv2d_f32(x.astype(np.float64), w)
    with pytest.raises(ValueError, match="channels"):
        _core.conv2d_f32(np.zeros((1, 4, 4, 5), np.float32), w)
    with pytest.raises(ValueError, match="dimensions"):
        _core.conv2d_f32(np.zeros((4, 4, 3), np.float32), w)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        _core.conv2d_f32(np.zeros((1, 2, 2, 3), np.float32), w)
    with pytest.raises(ValueError, match="stride"):
        _core.conv2d_f32(x, w, stride=(0, 1))
    with pytest.raises(ValueError, match="padding"):
        _core.conv2d_f32(x, w, padding=(-1, 0))
    with pytest.raises(ValueError, match="scale"):
        _core.conv2d_f32(x, w, scale=np.ones(7, np.float32))
    with pytest.raises(ValueError, match="pixel_scale"):
        _core.conv2d_f32(x, w, pixel_scale=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="columns"):
        _core.sgemm(np.zeros((2, 5), np.float32), np.zeros((4, 3), np.float32))


def test_non_contiguous_input_is_accepted() -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(-1, 1, (1, 6, 6, 8)).astype(np.float32)
    wt = rng.uniform(-1, 1, (4, 8, 3, 3)).astype(np.float32)
    xt = np.ascontiguousarray(x.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3)  # same values, strided
    assert not xt.flags.c_contiguous
    np.testing.assert_array_equal(_core.conv2d_f32(xt, wt), _core.conv2d_f32(x, wt))
