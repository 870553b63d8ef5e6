"""8-bit edges at export (issue 14 item 2): export(..., edges="int8" / int8_layers=[...],
calibration=...) lowers float convs / linears to conv_q8.

* the quantization rules and the numpy reference of conv_q8 (hbn_engine.quant) against a
  float conv on the dequantized values;
* the engine's conv_q8 layers against that reference (float rounding only), on every ISA path;
* whole networks against PyTorch with the same layers fake-quantized (the reference of the
  quantized model) and against the fp32 model (quantization tolerance, top-1 agreement);
* uint8 images into an int8 first layer: the pixels are the quantized values when the
  normalisation is one integer mean and one std;
* bad arguments are clear errors.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine import nn as hnn  # noqa: E402
from hbn_engine.format import OP_TYPES, read_hbn  # noqa: E402
from hbn_engine.quant import (activation_params, conv_q8_reference,  # noqa: E402
                              norm_activation_params, quantize_activation, quantize_weights)

needs_q8 = pytest.mark.skipif("conv_q8" not in OP_TYPES,
                              reason="this engine build has no conv_q8 op (issue 14, int8k)")


# --- rules and reference (no engine op needed) -------------------------------------------------

def test_weight_quantization_is_symmetric_per_channel() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 3, 3, 3))
    w[2] = 0.0  # an all-zero channel keeps a usable scale
    q, s = quantize_weights(w)
    assert q.dtype == np.int8 and s.dtype == np.float32
    assert q.min() >= -127 and q.max() <= 127
    for oc in (0, 1, 3, 4):
        assert np.abs(q[oc]).max() == 127
        np.testing.assert_allclose(s[oc], np.abs(w[oc]).max() / 127, rtol=1e-7)
    assert (q[2] == 0).all() and s[2] > 0
    assert np.abs(q.astype(np.float64) * s[:, None, None, None] - w).max() <= s.max() / 2 + 1e-9


def test_activation_params_cover_zero_and_range() -> None:
    for lo, hi in ((-1.0, 3.0), (0.5, 2.0), (-4.0, -1.0), (0.0, 0.0)):
        scale, zero = activation_params(lo, hi)
        assert 0 <= zero <= 255 and scale > 0
        assert quantize_activation(np.float32([0.0]), scale, zero)[0] == zero  # 0 is exact
        for v in (lo, hi):
            q = int(quantize_activation(np.float32([v]), scale, zero)[0])
            assert abs((q - zero) * scale - v) <= scale / 2 + 1e-6


def test_norm_rule_makes_pixels_the_codes() -> None:
    # One integer mean, one std: (p - m) / s quantized with (1 / s, m) is p itself.
    scale, zero = norm_activation_params([128.0] * 3, [64.0] * 3)
    assert (scale, zero) == (1 / 64, 128)
    p = np.arange(256, dtype=np.float32)
    x = (p - np.float32(128)) / np.float32(64)
    assert np.array_equal(quantize_activation(x, scale, zero), p.astype(np.uint8))
    for m, s in ((0.0, 1.0), (127.0, 58.5), (255.0, 3.0)):
        sc, z = norm_activation_params([m] * 3, [s] * 3)
        x = (p - np.float32(m)) / np.float32(s)
        assert np.array_equal(quantize_activation(x, sc, z), p.astype(np.uint8)), (m, s)
    # Per-channel means / stds: one (scale, zero) for the union of the channels' ranges.
    sc, z = norm_activation_params([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
    for m, s in ((123.675, 58.395), (116.28, 57.12), (103.53, 57.375)):
        x = (p - np.float32(m)) / np.float32(s)
        q = quantize_activation(x, sc, z).astype(np.int64)
        assert np.abs((q - z) * sc - x).max() <= sc / 2 + 1e-6  # no clipping, half a step


@pytest.mark.parametrize("stride,pad,relu", [(1, 1, False), (2, 3, True), (1, 0, False)])
def test_reference_is_the_conv_of_dequantized_values(stride: int, pad: int, relu: bool) -> None:
    rng = np.random.default_rng(stride + pad)
    x = rng.standard_normal((2, 3, 11, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 5, 3))
    b = rng.standard_normal(4).astype(np.float32)
    wq, ws = quantize_weights(w)
    scale, zero = activation_params(x.min(), x.max())
    y = conv_q8_reference(x, wq, ws, b, scale, zero, (stride, stride), (pad, pad), relu)
    xq = (quantize_activation(x, scale, zero).astype(np.float64) - zero) * scale
    wd = wq.astype(np.float64) * ws.astype(np.float64)[:, None, None, None]
    ref = F.conv2d(torch.from_numpy(xq), torch.from_numpy(wd), torch.from_numpy(b.astype(np.float64)),
                   stride=stride, padding=pad).numpy()
    if relu:
        ref = np.maximum(ref, 0)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    # Linear: [N, F] input with 1x1 weights.
    xl = rng.standard_normal((3, 7)).astype(np.float32)
    wl, sl = quantize_weights(rng.standard_normal((5, 7, 1, 1)))
    yl = conv_q8_reference(xl, wl, sl, None, 0.02, 128)
    xd = (quantize_activation(xl, 0.02, 128).astype(np.float64) - 128) * 0.02
    np.testing.assert_allclose(yl, xd @ (wl[:, :, 0, 0] * sl[:, None].astype(np.float64)).T,
                               rtol=1e-12, atol=1e-12)


def _fbin_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        hnn.FullBinConv2d(32, 64, 3, padding=1), hnn.FullBinConv2d(64, 64, 3, padding=1),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), hnn.FullBinLinear(256, 128),
        nn.Linear(128, 10)).eval()
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return net


def test_argument_errors(tmp_path) -> None:
    net = _fbin_net()
    x = torch.randn(1, 3, 16, 16)
    path = str(tmp_path / "m.hbn")
    with pytest.raises(ValueError, match="edges must be"):
        hbn_engine.export(net, x, path, edges="int4")
    with pytest.raises(ValueError, match="no conv / linear layer named 'nope'"):
        hbn_engine.export(net, x, path, int8_layers=["nope"])
    with pytest.raises(ValueError, match="FullBin|fbin"):
        hbn_engine.export(net, x, path, int8_layers=["4"])
    with pytest.raises(ValueError, match="need calibration"):
        hbn_engine.export(net, x, path, edges="int8")
    with pytest.raises(ValueError, match="calibration must be a float tensor \\[N, 3, 16, 16\\]"):
        hbn_engine.export(net, x, path, edges="int8", calibration=torch.randn(4, 3, 8, 8))
    with pytest.raises(ValueError, match="calibration must be a float tensor"):
        hbn_engine.export(net, x, path, edges="int8",
                          calibration=torch.zeros(4, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match="calibration must be a float tensor"):
        hbn_engine.export(net, x, path, edges="int8", calibration=np.zeros((4, 3, 16, 16)))
    with pytest.raises(ValueError, match="NaN"):
        hbn_engine.export(net, x, path, edges="int8",
                          calibration=torch.full((2, 3, 16, 16), float("nan")))
    with pytest.raises(ValueError, match="no layer is int8"):
        hbn_engine.export(net, x, path, calibration=torch.randn(4, 3, 16, 16))
    with pytest.raises(ValueError, match="calibration_percentile"):
        hbn_engine.export(net, x, path, edges="int8", calibration=torch.randn(4, 3, 16, 16),
                          calibration_percentile=20)
    assert not os.path.exists(path)


# --- the engine's conv_q8 ----------------------------------------------------------------------

def _q8_params(path: str) -> list[tuple[dict, np.ndarray, np.ndarray, np.ndarray]]:
    f = read_hbn(path)
    out = []
    for op in f.ops:
        if op.type == "conv_q8":
            w, ws, scale, b = (None if t is None else f.tensors[t] for t in op.tensors)
            assert scale is None  # BN's scale is folded into the weights before quantizing
            out.append((op.attrs, w, ws, b))
    return out


@needs_q8
@pytest.mark.parametrize("k,stride,pad,relu", [(3, 1, 1, True), (7, 2, 3, False), (1, 1, 0, False),
                                               (5, 2, 0, True)])
def test_conv_q8_layer_matches_reference(tmp_path, each_isa, k, stride, pad, relu) -> None:
    torch.manual_seed(k + pad)
    layers = [nn.Conv2d(3, 19, k, stride=stride, padding=pad)] + ([nn.ReLU()] if relu else [])
    net = nn.Sequential(*layers).eval()
    rng = np.random.default_rng(k)
    cal = rng.uniform(-2, 3, (8, 3, 23, 21)).astype(np.float32)
    path = str(tmp_path / "m.hbn")
    rep = hbn_engine.export(net, torch.from_numpy(cal[:1]), path, int8_layers=["0"],
                            calibration=torch.from_numpy(cal))
    assert rep.kinds()["0"] == "int8"
    (attrs, w, ws, b), = _q8_params(path)
    m = hbn_engine.load(path)
    x = rng.uniform(-2.5, 3.5, (3, 3, 23, 21)).astype(np.float32)  # some values clip
    y = m.run(x)
    ref = conv_q8_reference(x, w, ws, b, attrs["in_scale"], attrs["in_zero"], (stride, stride),
                            (pad, pad), relu)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    # ... and PyTorch fp32 within the quantization error on inputs inside the calibrated range
    # (the ones above clip, as intended).
    xin = np.clip(x, cal.min(), cal.max())
    with torch.no_grad():
        t = net(torch.from_numpy(xin)).numpy()
    assert np.abs(m.run(xin) - t).max() <= 0.05 * np.abs(t).max()


@needs_q8
def test_linear_int8_matches_reference(tmp_path) -> None:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Flatten(), nn.Linear(48, 13)).eval()
    cal = torch.randn(16, 3, 4, 4)
    path = str(tmp_path / "m.hbn")
    hbn_engine.export(net, cal[:1], path, edges="int8", calibration=cal)
    (attrs, w, ws, b), = _q8_params(path)
    x = np.random.default_rng(1).standard_normal((5, 3, 4, 4)).astype(np.float32)
    y = hbn_engine.load(path).run(x)
    ref = conv_q8_reference(x.reshape(5, -1), w, ws, b, attrs["in_scale"], attrs["in_zero"])
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def _fake_quant_reference(net: nn.Module, path: str, names: list[str]) -> nn.Module:
    """The PyTorch model with the named layers computing what conv_q8 computes (inputs
    quantized with the file's scale / zero point, weights dequantized): the quantized model's
    reference. The layers named have no BatchNorm folded in, so their dequantized weights are
    the module's weights."""
    import copy

    ref = copy.deepcopy(net)
    mods = dict(ref.named_modules())
    for (attrs, w, ws, b), name in zip(_q8_params(path), names):
        m = mods[name]
        wd = w.astype(np.float64) * ws.astype(np.float64)[:, None, None, None]
        m.weight.data = torch.from_numpy(wd.reshape(m.weight.shape)).float()
        m.bias.data = torch.from_numpy(np.array(b, dtype=np.float32))
        s, z = attrs["in_scale"], attrs["in_zero"]

        def pre(_m, args, s=s, z=z):
            q = torch.clamp(torch.round(args[0].double() / s) + z, 0, 255)
            return ((q - z) * s).float()
        m.register_forward_pre_hook(pre)
    return ref


@needs_q8
def test_int8_edges_network(tmp_path) -> None:
    # FBin-like: first conv (its BN folded) and classifier run in 8 bits. The classifier has
    # no BN, so the fake-quantized PyTorch model is the quantized model's exact reference there;
    # the first conv is checked through the network's outputs and top-1.
    net = _fbin_net(1)
    rng = np.random.default_rng(5)
    cal = torch.from_numpy(rng.standard_normal((32, 3, 16, 16)).astype(np.float32))
    path, path32 = str(tmp_path / "q.hbn"), str(tmp_path / "f.hbn")
    rep = hbn_engine.export(net, cal[:1], path, edges="int8", calibration=cal)
    hbn_engine.export(net, cal[:1], path32)
    kinds = rep.kinds()
    assert kinds["0"] == "int8" and kinds["9"] == "int8" and kinds["4"] == "fbin"
    m, m32 = hbn_engine.load(path), hbn_engine.load(path32)
    meta = m.metadata["int8"]
    assert [r["layer"] for r in meta] == ["0", "9"]
    assert all("min/max of 32 images" in r["source"] for r in meta)
    x = rng.standard_normal((64, 3, 16, 16)).astype(np.float32)
    y, y32 = m.run(x), m32.run(x)
    with torch.no_grad():
        t = net(torch.from_numpy(x)).numpy()
    agree = (y.argmax(1) == t.argmax(1)).mean()
    assert agree >= 0.85, agree
    assert np.abs(y32 - t).max() <= 1e-4 * np.abs(t).max()  # the default stays exact
    # Only the classifier quantized: the fake-quant model is the reference up to rounding.
    path_fc = str(tmp_path / "fc.hbn")
    hbn_engine.export(net, cal[:1], path_fc, int8_layers=["9"], calibration=cal)
    ref = _fake_quant_reference(net, path_fc, ["9"])
    with torch.no_grad():
        r = ref(torch.from_numpy(x)).numpy()
    yf = hbn_engine.load(path_fc).run(x)
    np.testing.assert_allclose(yf, r, rtol=1e-4, atol=1e-4 * np.abs(r).max())


@needs_q8
def test_inspect_shows_int8_layers(tmp_path, capsys) -> None:
    from hbn_engine.cli import main

    net = _fbin_net(2)
    cal = torch.randn(8, 3, 16, 16)
    path = str(tmp_path / "q.hbn")
    hbn_engine.export(net, cal[:1], path, edges="int8", calibration=cal,
                      input_norm=([120.0] * 3, [60.0] * 3))
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "int8 layers" in out and "input_norm pixel range" in out and "min/max" in out
    assert "uint8 images" in out


@needs_q8
def test_u8_input_into_int8_first_layer(tmp_path) -> None:
    # One integer mean and std: the first layer's uint8 codes are the pixels themselves.
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()).eval()
    path = str(tmp_path / "m.hbn")
    hbn_engine.export(net, torch.randn(1, 3, 12, 12), path, int8_layers=["0"],
                      input_norm=([128.0] * 3, [64.0] * 3))
    (attrs, w, ws, b), = _q8_params(path)
    assert attrs["in_scale"] == 1 / 64 and attrs["in_zero"] == 128
    m = hbn_engine.load(path)
    px = np.random.default_rng(0).integers(0, 256, (2, 12, 12, 3), dtype=np.uint8)
    y = m.run(px)
    assert np.array_equal(y, m.run(px.transpose(0, 3, 1, 2).astype(np.float32)))
    xn = (px.transpose(0, 3, 1, 2).astype(np.float32) - np.float32(128)) / np.float32(64)
    assert np.array_equal(quantize_activation(xn, 1 / 64, 128), px.transpose(0, 3, 1, 2))
    ref = conv_q8_reference(xn, w, ws, b, 1 / 64, 128, (1, 1), (1, 1), True)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
