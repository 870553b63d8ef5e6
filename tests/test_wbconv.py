"""Binary-weight float conv (WeightBinConv / WeightBin Linear): bit-packed +-1 weights times
float activations, every compiled path and both sign-decoding strategies against a float64
numpy convolution with sign(w), plus the transform, thread counts and validation."""
from __future__ import annotations

import numpy as np
import pytest

import hbn_engine
from hbn_engine import _core

from test_conv_f32 import conv_nhwc_f64, tolerance


def pack_weight_bits(w: np.ndarray) -> np.ndarray:
    """Canonical layout [OC][KH][KW][words_for(IC)] uint64: bit 1 = -1, sign(0) = +1, channels
    LSB-first, tail bits 0 (hbn/types.h), written independently of the native packer."""
    oc, ic, kh, kw = w.shape
    words = (ic + 63) // 64
    neg = np.zeros((oc, kh, kw, words * 64), dtype=np.uint8)
    neg[..., :ic] = (w < 0).transpose(0, 2, 3, 1)
    packed = np.packbits(neg, axis=-1, bitorder="little")  # 8 bytes per word, LSB first
    return packed.reshape(oc, kh, kw, words * 8).view("<u8").astype(np.uint64)


def signs(w: np.ndarray) -> np.ndarray:
    return np.where(w < 0, -1.0, 1.0)


CASES = [
    (1, 5, 5, 1, 1, 1, 1, 0),
    (2, 7, 9, 3, 17, 3, 1, 1),
    (1, 9, 8, 63, 64, 3, 2, 1),
    (1, 6, 7, 64, 65, 1, 1, 0),
    (2, 5, 5, 65, 33, 5, 1, 2),
    (1, 11, 10, 3, 16, 7, 2, 2),
    (1, 23, 23, 2, 20, 11, 4, 2),
    (1, 6, 6, 200, 31, 3, 1, 0),
    (2, 2, 3, 5, 7, 5, 1, 2),  # kernel overhangs both sides of the image
    (1, 1, 1, 1000, 70, 1, 1, 0),  # linear layer, batch 1 (M = 1)
    (16, 1, 1, 129, 96, 1, 1, 0),  # linear layer, batch 16
    # LUT panels are 128 columns: partial last panels, rows off the 3-row tile, K off the
    # 32-step octets and off the 4-step groups.
    (2, 5, 7, 40, 300, 3, 1, 1),
    (5, 1, 1, 301, 257, 1, 1, 0),
]


@pytest.mark.parametrize("algo", ["im2col", "direct"])
@pytest.mark.parametrize("strategy", ["auto", "unpack", "direct", "lut"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "n{}_{}x{}_ic{}_oc{}_k{}_s{}_p{}".format(*c))
def test_wbconv2d_matches_float64(each_isa: str, case: tuple[int, ...], strategy: str, algo: str) -> None:
    n, h, w, ic, oc, k, s, p = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.uniform(-1, 1, (n, h, w, ic)).astype(np.float32)
    wf = rng.uniform(-1, 1, (oc, ic, k, k)).astype(np.float32)
    wf.flat[0] = 0.0  # sign(0) = +1
    bits = pack_weight_bits(wf)
    got = _core.wbconv2d(x, bits, (s, s), (p, p), strategy=strategy, algo=algo)
    ref = conv_nhwc_f64(x, signs(wf), (s, s), (p, p))
    np.testing.assert_allclose(got, ref, rtol=0, atol=tolerance(ic * k * k))


def test_wbconv2d_transform_alpha_bn_relu(each_isa: str) -> None:
    rng = np.random.default_rng(7)
    n, h, w, ic, oc = 2, 7, 6, 70, 40
    x = rng.uniform(-1, 1, (n, h, w, ic)).astype(np.float32)
    wf = rng.uniform(-1, 1, (oc, ic, 3, 3)).astype(np.float32)
    alpha = np.abs(wf).mean(axis=(1, 2, 3)).astype(np.float32)  # XNOR-Net's per-channel scale
    bias = rng.uniform(-1, 1, oc).astype(np.float32)
    pixel_scale = rng.uniform(0.5, 1.5, n * h * w).astype(np.float32)
    bits = pack_weight_bits(wf)
    got = _core.wbconv2d(x, bits, (1, 1), (1, 1), scale=alpha, bias=bias, pixel_scale=pixel_scale, relu=True)
    acc = conv_nhwc_f64(x, signs(wf), (1, 1), (1, 1))
    ref = np.maximum(acc * alpha * pixel_scale.reshape(n, h, w, 1) + bias, 0.0)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2 * tolerance(ic * 9))
    ref_native = _core.wbconv2d_reference(x, bits, (1, 1), (1, 1), scale=alpha, bias=bias, relu=True,
                                          pixel_scale=pixel_scale)
    np.testing.assert_allclose(got, ref_native, rtol=0, atol=2 * tolerance(ic * 9))


def test_paths_and_strategies_agree(restore_isa: None) -> None:
    rng = np.random.default_rng(8)
    x = rng.uniform(-1, 1, (3, 9, 10, 45)).astype(np.float32)
    bits = pack_weight_bits(rng.uniform(-1, 1, (50, 45, 3, 3)).astype(np.float32))
    ref = _core.wbconv2d_reference(x, bits, (1, 2), (0, 1))
    for isa in hbn_engine.supported_isas():
        hbn_engine.set_isa(isa)
        for strategy in ("unpack", "direct", "lut"):
            got = _core.WBConv2d(bits, 45, (1, 2), (0, 1), strategy).run(x)
            np.testing.assert_allclose(got, ref, rtol=0, atol=tolerance(405), err_msg=f"{isa}/{strategy}")


def test_threads_give_identical_results() -> None:
    """1 vs 2 threads, every path, conv / binary-weight conv / batch-1 linear (the column-split
    case): bit-identical. The default pool is resized back and forth, which also covers
    restarting a pool's workers after it has run jobs."""
    rng = np.random.default_rng(9)
    x = rng.uniform(-1, 1, (3, 15, 16, 33)).astype(np.float32)
    w = rng.uniform(-1, 1, (100, 33, 3, 3)).astype(np.float32)
    xf = rng.uniform(-1, 1, (1, 1, 1, 500)).astype(np.float32)
    fc_bits = pack_weight_bits(rng.uniform(-1, 1, (300, 500, 1, 1)).astype(np.float32))
    layers = {
        "conv_f32": (_core.Conv2dF32(w, (1, 1), (1, 1)), x),
        "conv_f32_im2col": (_core.Conv2dF32(w, (1, 1), (1, 1), algo="im2col"), x),
        "first_layer_direct": (_core.Conv2dF32(w[:, :3], (2, 2), (3, 3)), x[..., :3].copy()),
        "wbconv": (_core.WBConv2d(pack_weight_bits(w), 33, (1, 1), (1, 1)), x),
        "wb_linear_batch1": (_core.WBConv2d(fc_bits, 500), xf),
        "sgemm_linear_batch1": (_core.Sgemm(rng.uniform(-1, 1, (500, 300)).astype(np.float32)),
                                xf.reshape(1, 500)),
    }

    def run_all() -> dict:
        out = {}
        try:
            for isa in hbn_engine.supported_isas():
                hbn_engine.set_isa(isa)
                for name, (layer, inp) in layers.items():
                    out[isa, name] = layer.run(inp)
        finally:
            hbn_engine.reset_isa()
        return out

    before = hbn_engine.get_num_threads()
    try:
        hbn_engine.set_num_threads(1)
        one = run_all()
        for _ in range(2):
            hbn_engine.set_num_threads(2)
            two = run_all()
            for key in one:
                np.testing.assert_array_equal(one[key], two[key], err_msg=str(key))
            hbn_engine.set_num_threads(1)
            run_all()
    finally:
        hbn_engine.set_num_threads(before)


def test_bad_inputs_raise_value_error() -> None:
    x = np.zeros((1, 4, 4, 70), np.float32)
    bits = np.zeros((8, 3, 3, 2), np.uint64)
    with pytest.raises(ValueError, match="uint64"):
        _core.wbconv2d(x, bits.astype(np.int64))
    with pytest.raises(ValueError, match="words"):
        _core.wbconv2d(np.zeros((1, 4, 4, 200), np.float32), bits)
    with pytest.raises(ValueError, match="float32"):
        _core.wbconv2d(x.astype(np.float16), bits)
    with pytest.raises(ValueError, match="strategy"):
        _core.wbconv2d(x, bits, strategy="fast")
    with pytest.raises(ValueError, match="OC, KH, KW, words"):
        _core.wbconv2d(x, np.zeros((8, 9, 2), np.uint64))
    with pytest.raises(ValueError, match="bias"):
        _core.wbconv2d(x, bits, bias=np.zeros(9, np.float32))
