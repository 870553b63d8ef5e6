"""conv_wbin_q8: WeightBin layers on 8-bit input (issue 14; export(..., wbin="int8")).

* the op through hand-built .hbn files against the numpy references (tests/q8_reference.py:
  the op's float32 epilogue, bit for bit; hbn_engine.quant.conv_wbin_q8_reference) on every
  ISA path and edge shapes (channel tails, OC not a multiple of 16, K not a multiple of 4,
  strides, padding, the in-place 1x1 path, a linear layer, batches), packed-bit output;
* the bits -> int8 expansion (quant.sign_bits_to_int8) against pack_sign_bits;
* bad files (tail bits, dtype, shapes, attributes) as FormatError naming the problem;
* export: wbin="int8" / int8_layers naming WeightBin layers, refusals, the file keeps bits;
* networks: equal to PyTorch with the WeightBin inputs fake-quantized with the file's
  parameters (float rounding only), and within the quantization error of the fp32 model.
"""
from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine import _core  # noqa: E402
from hbn_engine import nn as hnn  # noqa: E402
from hbn_engine.exporter import pack_sign_bits  # noqa: E402
from hbn_engine.format import OP_TYPES, FormatError, Op, encode_hbn, read_hbn  # noqa: E402
from hbn_engine.quant import (conv_wbin_q8_reference, quantize_activation,  # noqa: E402
                              sign_bits_to_int8)

sys.path.insert(0, str(Path(__file__).parent))
from q8_reference import conv_q8  # noqa: E402

pytestmark = pytest.mark.skipif("conv_wbin_q8" not in OP_TYPES,
                                reason="this engine build has no conv_wbin_q8 op")


def _signs(rng: np.random.Generator, oc: int, ic: int, kh: int, kw: int) -> np.ndarray:
    return np.where(rng.random((oc, ic, kh, kw)) < 0.5, -1, 1).astype(np.int8)


def wbq8_file(signs: np.ndarray, scale: np.ndarray, in_shape: tuple[int, int, int], attrs: dict,
              bias: Optional[np.ndarray] = None, flat: bool = False,
              bits: Optional[np.ndarray] = None) -> bytes:
    """One conv_wbin_q8 (after a flatten when flat) over an input of in_shape (C, H, W)."""
    a = {"stride_h": 1, "stride_w": 1, "pad_h": 0, "pad_w": 0, "in_channels": signs.shape[1],
         **attrs}
    a = {k: v for k, v in a.items() if v is not None}
    tensors = [pack_sign_bits(signs) if bits is None else bits, scale]
    slots: list[Optional[int]] = [0, 1, None]
    if bias is not None:
        tensors.append(bias)
        slots[2] = 2
    ops = [Op("flatten", "f", [0], [])] if flat else []
    ops.append(Op("conv_wbin_q8", "w", [len(ops)], slots, a))
    return encode_hbn(ops, tensors, {}, in_shape, len(ops))


def test_sign_bits_expand_to_the_signs() -> None:
    rng = np.random.default_rng(0)
    for ic in (1, 3, 63, 64, 65, 130):
        s = _signs(rng, 5, ic, 3, 2)
        bits = pack_sign_bits(s)
        assert np.array_equal(sign_bits_to_int8(bits, ic), s)
    with pytest.raises(ValueError, match="words per row"):
        sign_bits_to_int8(pack_sign_bits(_signs(rng, 2, 70, 1, 1)), 130)


@pytest.mark.parametrize("ic, oc, k, stride, pad, n, zero, hw", [
    (16, 32, 3, 1, 1, 1, 0, (9, 8)), (1, 5, 5, 2, 2, 2, 0, (11, 9)),
    (65, 33, 3, 2, 0, 1, 255, (7, 9)), (70, 17, 1, 1, 0, 3, 7, (5, 6)),
    (128, 16, 1, 1, 0, 1, 0, (6, 6)), (64, 40, 1, 2, 0, 1, 3, (7, 7)),
    (3, 24, 11, 4, 2, 1, 110, (23, 21)), (256, 20, 3, 1, 1, 1, 0, (4, 5))])
def test_conv_wbin_q8_matches_reference(each_isa: str, ic: int, oc: int, k: int, stride: int,
                                        pad: int, n: int, zero: int, hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(ic * 100 + oc)
    s = _signs(rng, oc, ic, k, k)
    scale = rng.uniform(-0.05, 0.05, oc).astype(np.float32)  # alpha x BN scale: any sign
    scale[0] = 0.0  # an all-zero channel (alpha = 0)
    bias = rng.uniform(-1, 1, oc).astype(np.float32)
    in_scale = 0.0173
    attrs = {"stride_h": stride, "stride_w": stride, "pad_h": pad, "pad_w": pad, "act": 1,
             "in_scale": in_scale, "in_zero": zero}
    x = rng.uniform(-2.5, 2.5, (n, ic, *hw)).astype(np.float32)
    x[0, 0, 0, :4] = np.float32(in_scale) * np.array([0.5, 1.5, -2.5, 300], np.float32)  # ties, clamp
    m = hbn_engine.load(wbq8_file(s, scale, (ic, *hw), attrs, bias))
    assert [kind for _, kind in m.layers] == ["wbin_int8"]
    y = m.run(x)
    # Bit for bit: the op's float32 epilogue is conv_q8's with w_scale = scale.
    np.testing.assert_array_equal(y, conv_q8(x, s, scale, in_scale, zero, stride, pad,
                                             bias=bias, relu=True))
    ref = conv_wbin_q8_reference(x, pack_sign_bits(s), ic, scale, bias, in_scale, zero,
                                 (stride, stride), (pad, pad), relu=True)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_integer_sums_are_exact(each_isa: str) -> None:
    # in_scale * scale = 1, no bias: the output is the int32 sum itself, exactly.
    rng = np.random.default_rng(9)
    ic, oc = 97, 50
    s = _signs(rng, oc, ic, 3, 3)
    x = rng.integers(-128, 128, (2, ic, 10, 9)).astype(np.float32) * np.float32(0.5)
    m = hbn_engine.load(wbq8_file(s, np.full(oc, 2.0, np.float32), (ic, 10, 9),
                                  {"pad_h": 1, "pad_w": 1, "in_scale": 0.5, "in_zero": 128}))
    q = quantize_activation(x, 0.5, 128).astype(np.int64) - 128
    sums = np.zeros((2, oc, 10, 9), np.int64)
    qp = np.pad(q, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for i in range(3):
        for j in range(3):
            sums += np.einsum("nchw,oc->nohw", qp[:, :, i:i + 10, j:j + 9],
                              s[:, :, i, j].astype(np.int64))
    np.testing.assert_array_equal(m.run(x), sums.astype(np.float32))


def test_linear_wbin_q8_and_threads() -> None:
    rng = np.random.default_rng(5)
    s = _signs(rng, 1000, 301, 1, 1)
    scale = rng.uniform(0.001, 0.02, 1000).astype(np.float32)
    bias = rng.uniform(-1, 1, 1000).astype(np.float32)
    x = rng.uniform(-1, 1, (3, 301, 1, 1)).astype(np.float32)
    attrs = {"linear": 1, "in_scale": 0.01, "in_zero": 100}
    m = hbn_engine.load(wbq8_file(s, scale, (301, 1, 1), attrs, bias, flat=True))
    want = conv_q8(x, s, scale, 0.01, 100, bias=bias)[:, :, 0, 0]
    np.testing.assert_array_equal(m.run(x), want)
    m.num_threads = 2
    np.testing.assert_array_equal(m.run(x), want)


def test_wbin_q8_writes_bits_for_a_binary_consumer(each_isa: str) -> None:
    rng = np.random.default_rng(6)
    s = _signs(rng, 70, 16, 3, 3)
    scale = rng.uniform(-0.02, 0.05, 70).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, 70).astype(np.float32)
    wb = _core.pack_weights_oihw(rng.standard_normal((8, 70, 3, 3)).astype(np.float32))
    thr = rng.uniform(-0.2, 0.2, 70).astype(np.float32)
    flip = (rng.random(70) < 0.5).astype(np.uint8)
    q8 = Op("conv_wbin_q8", "w", [0], [0, 1, 2],
            {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1, "in_channels": 16,
             "in_scale": 0.02, "in_zero": 120})
    fb = Op("conv_fbin", "b", [1], [3, None, None, 4, 5],
            {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1, "in_channels": 70})
    data = encode_hbn([q8, fb], [pack_sign_bits(s), scale, bias, wb, thr, flip], {},
                      (16, 9, 10), 2)
    x = rng.uniform(-2, 2, (2, 16, 9, 10)).astype(np.float32)
    m = hbn_engine.load(data)
    assert m.bit_passing_layers == ["w"]
    np.testing.assert_array_equal(m.run(x), hbn_engine.load(data, bit_passing=False).run(x))


def _bad(**over) -> bytes:
    rng = np.random.default_rng(7)
    s = over.pop("signs", _signs(rng, 4, 3, 3, 3))
    attrs = {"pad_h": 1, "pad_w": 1, "in_scale": 0.5, "in_zero": 3}
    attrs.update(over.pop("attrs", {}))
    scale = over.pop("scale", np.ones(s.shape[0], np.float32))
    return wbq8_file(s, scale, over.pop("in_shape", (s.shape[1], 6, 6)), attrs, **over)


def test_conv_wbin_q8_bad_files() -> None:
    hbn_engine.load(_bad())  # the base file is valid
    good = pack_sign_bits(_signs(np.random.default_rng(7), 4, 3, 3, 3))
    tail = good.copy()
    tail[1, 2, 0, 0] |= np.uint64(1) << np.uint64(40)
    with pytest.raises(FormatError, match="'w'.*bits past in_channels \\(3\\) in a word must be 0"):
        hbn_engine.load(_bad(bits=tail))
    with pytest.raises(FormatError, match="'w'.*tensor weight has the wrong dtype"):
        hbn_engine.load(_bad(bits=np.zeros((4, 3, 3, 3), np.int8)))
    with pytest.raises(FormatError, match="dimension 3 = 0 out of range"):
        hbn_engine.load(_bad(bits=good[:, :, :, :0].copy()))
    with pytest.raises(FormatError, match="'w'.*weight"):
        hbn_engine.load(_bad(bits=np.zeros((4, 3, 3, 2), np.uint64)))
    with pytest.raises(FormatError, match="'w'.*in_zero = 256 not in"):
        hbn_engine.load(_bad(attrs={"in_zero": 256}))
    for v in (0.0, -1.0, 1e-300, 1e300):
        with pytest.raises(FormatError, match="'w'.*in_scale must be a positive finite"):
            hbn_engine.load(_bad(attrs={"in_scale": v}))
    with pytest.raises(FormatError, match="'w'.*missing attribute in_scale"):
        hbn_engine.load(_bad(attrs={"in_scale": None}))
    with pytest.raises(FormatError, match="'w'.*missing attribute in_channels"):
        hbn_engine.load(_bad(attrs={"in_channels": None}))
    with pytest.raises(FormatError, match="'w'.*expects 5 input channels, input has 3"):
        hbn_engine.load(_bad(attrs={"in_channels": 5}))
    with pytest.raises(FormatError, match="'w'.*scale holds a non-finite value"):
        hbn_engine.load(_bad(scale=np.array([1, np.nan, 1, 1], np.float32)))
    with pytest.raises(FormatError, match="'w'.*scale"):
        hbn_engine.load(_bad(scale=np.ones(5, np.float32)))
    with pytest.raises(FormatError, match="'w'.*overflows float32"):
        hbn_engine.load(_bad(attrs={"in_scale": 1e30}, scale=np.full(4, 1e30, np.float32)))
    with pytest.raises(FormatError, match="'w'.*kernel larger than the padded input"):
        hbn_engine.load(_bad(attrs={"pad_h": 0, "pad_w": 0}, in_shape=(3, 2, 2)))
    with pytest.raises(FormatError, match="'w'.*exceeds 65536"):
        hbn_engine.load(wbq8_file(np.ones((2, 65537, 1, 1), np.int8), np.ones(2, np.float32),
                                  (65537, 1, 1), {"in_scale": 1.0}))


def test_corrupt_files_never_crash() -> None:
    # Byte flips over a valid file: every load either works or raises FormatError.
    base = bytearray(_bad())
    rng = np.random.default_rng(11)
    x = rng.uniform(-1, 1, (1, 3, 6, 6)).astype(np.float32)
    for _ in range(300):
        data = bytearray(base)
        for p in rng.integers(0, len(data), int(rng.integers(1, 4))):
            data[p] = int(rng.integers(0, 256))
        try:
            m = hbn_engine.load(bytes(data))
        except FormatError:
            continue
        if tuple(m.input_shape) == (3, 6, 6):
            m.run(x)


# --- export -------------------------------------------------------------------------------------

def _hybrid_net(seed: int = 0) -> nn.Module:
    """Float stem, WeightBin convs (BN + ReLU inside), a FullBin conv after one (bit output),
    a WeightBin classifier: every WeightBin input is >= 0 or signed."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 24, 3, padding=1), nn.BatchNorm2d(24),
        hnn.WeightBinConv2d(24, 48, 3, padding=1), nn.MaxPool2d(2),
        hnn.WeightBinConv2d(48, 67, 3, stride=2, padding=1),
        hnn.FullBinConv2d(67, 64, 3, padding=1),
        hnn.WeightBinConv2d(64, 80, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), hnn.WeightBinLinear(80, 10)).eval()
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return net


def _wbin_names(net: nn.Module) -> list[str]:
    return [n for n, m in net.named_modules()
            if isinstance(m, (hnn.WeightBinConv2d, hnn.WeightBinLinear))]


def _fake_quant(net: nn.Module, path: str) -> nn.Module:
    """PyTorch with each conv_wbin_q8 layer's input quantized with the file's scale / zero point:
    the quantized model's reference (the weights are the module's own, exactly)."""
    ref = copy.deepcopy(net)
    mods = dict(ref.named_modules())
    for r in read_hbn(path).metadata["int8"]:
        if r.get("op") != "conv_wbin_q8":
            continue
        s, z = r["in_scale"], r["in_zero"]

        def pre(_m, args, s=s, z=z):
            q = torch.clamp(torch.round(args[0].double() / s) + z, 0, 255)
            return ((q - z) * s).float()
        mods[r["layer"]].register_forward_pre_hook(pre)
    return ref


def test_export_wbin_int8_matches_fake_quant(tmp_path) -> None:
    net = _hybrid_net(1)
    rng = np.random.default_rng(5)
    cal = torch.from_numpy(rng.standard_normal((32, 3, 16, 16)).astype(np.float32))
    path, path32 = str(tmp_path / "q.hbn"), str(tmp_path / "f.hbn")
    rep = hbn_engine.export(net, cal[:1], path, wbin="int8", calibration=cal)
    hbn_engine.export(net, cal[:1], path32)
    names = _wbin_names(net)
    kinds = rep.kinds()
    # Convolutions only; the WeightBin classifier (a linear layer) stays exact.
    assert [kinds[n] for n in names] == ["wbin_int8"] * 3 + ["wbin"] and kinds["0"] == "fprec"
    assert kinds["5"] == "fbin"
    f = read_hbn(path)
    ops = [op for op in f.ops if op.type == "conv_wbin_q8"]
    assert [op.name for op in ops] == names[:3]
    assert all(f.tensors[op.tensors[0]].dtype == np.uint64 for op in ops)  # signs stay bits
    assert os.path.getsize(path) < os.path.getsize(path32) + 4096
    m, m32 = hbn_engine.load(path), hbn_engine.load(path32)
    assert [k for n, k in m.layers if n in names] == ["wbin_int8"] * 3 + ["wbin"]
    assert any("WeightBin linear layers 9 stay exact" in n for n in rep.notes)
    x = rng.standard_normal((64, 3, 16, 16)).astype(np.float32)
    x = np.clip(x, cal.min().item(), cal.max().item())
    y, y32 = m.run(x), m32.run(x)
    with torch.no_grad():
        t = net(torch.from_numpy(x)).numpy()
        r = _fake_quant(net, path)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y32, t, rtol=1e-4, atol=1e-4 * np.abs(t).max())  # default exact
    # vs the fake-quant model: float rounding, except a FullBin sign within rounding of its
    # threshold (counted, never more than a few of 64 samples).
    close = np.all(np.abs(y - r) <= 1e-4 * np.abs(r).max() + 1e-4 * np.abs(r), axis=1)
    assert close.mean() >= 0.95, close.mean()
    assert (y.argmax(1) == r.argmax(1)).mean() >= 0.95
    # vs fp32: within the quantization error.
    assert (y.argmax(1) == t.argmax(1)).mean() >= 0.85
    # The layers without a binary layer after them: the fake-quant model exactly (to rounding).
    tail = str(tmp_path / "tail.hbn")
    hbn_engine.export(net, cal[:1], tail, int8_layers=["6", "9"], calibration=cal)
    assert [op.type for op in read_hbn(tail).ops if op.name in ("2", "4", "6", "9")] == \
        ["conv_wbin", "conv_wbin", "conv_wbin_q8", "conv_wbin_q8"]
    with torch.no_grad():
        r2 = _fake_quant(net, tail)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(hbn_engine.load(tail).run(x), r2, rtol=1e-4,
                               atol=1e-4 * np.abs(r2).max())


def test_export_wbin_int8_with_int8_edges_and_every_isa(tmp_path, each_isa: str) -> None:
    net = _hybrid_net(2)
    cal = torch.randn(16, 3, 16, 16)
    path = str(tmp_path / "q.hbn")
    rep = hbn_engine.export(net, cal[:1], path, edges="int8", wbin="int8", int8_layers=["9"],
                            calibration=cal)
    kinds = rep.kinds()
    assert kinds["0"] == "int8" and kinds["2"] == kinds["9"] == "wbin_int8"  # 9: named linear
    x = torch.randn(8, 3, 16, 16)
    m = hbn_engine.load(path)
    y = m.run(x.numpy())
    hbn_engine.reset_isa()
    np.testing.assert_array_equal(y, hbn_engine.load(path).run(x.numpy()))  # same on every path


def test_export_wbin_argument_errors(tmp_path) -> None:
    net = _hybrid_net()
    x = torch.randn(1, 3, 16, 16)
    path = str(tmp_path / "m.hbn")
    with pytest.raises(ValueError, match="wbin must be 'exact' or 'int8'"):
        hbn_engine.export(net, x, path, wbin="int4")
    with pytest.raises(ValueError, match="need calibration"):
        hbn_engine.export(net, x, path, wbin="int8")
    with pytest.raises(ValueError, match="'5' is fbin .*float and WeightBin"):
        hbn_engine.export(net, x, path, int8_layers=["5"], calibration=torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match="sequence of layer names"):
        hbn_engine.export(net, x, path, int8_layers="2")
    assert not os.path.exists(path)


def test_export_refuses_a_receptive_field_over_the_int32_bound(tmp_path) -> None:
    net = nn.Sequential(nn.Flatten(), hnn.WeightBinLinear(65540, 2)).eval()
    x = torch.randn(1, 65540, 1, 1)
    with pytest.raises(ValueError, match="'1' has a receptive field of 65540 values"):
        hbn_engine.export(net, x, str(tmp_path / "m.hbn"), int8_layers=["1"], calibration=x)


def test_inspect_lists_wbin_int8(tmp_path, capsys) -> None:
    from hbn_engine.cli import main

    net = _hybrid_net(3)
    cal = torch.randn(8, 3, 16, 16)
    path = str(tmp_path / "q.hbn")
    hbn_engine.export(net, cal[:1], path, wbin="int8", calibration=cal)
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "WBin int8" in out and "conv_wbin_q8" in out


class _SignConv(nn.Conv2d):
    """Weights binarized in forward (sign(W) x mean|W| per channel): the front end's WeightBin."""

    def forward(self, x):
        a = self.weight.abs().mean(dim=(1, 2, 3), keepdim=True)
        return torch.nn.functional.conv2d(x, torch.sign(self.weight) * a, self.bias, self.stride,
                                          self.padding)


def test_plain_torch_weightbin_on_8bit_input(tmp_path) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), _SignConv(8, 16, 3, padding=1),
                        nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 4, 1)).eval()
    cal = torch.randn(16, 3, 10, 10)
    path = str(tmp_path / "m.hbn")
    rep = hbn_engine.export(net, cal[:1], path, wbin="int8", calibration=cal)
    assert rep.kinds()["2"] == "wbin_int8"
    x = torch.randn(8, 3, 10, 10).clamp(cal.min(), cal.max())
    with torch.no_grad():
        r = _fake_quant(net, path)(x).numpy()
    np.testing.assert_allclose(hbn_engine.load(path).run(x.numpy()), r, rtol=1e-4,
                               atol=1e-4 * np.abs(r).max())


def test_weightbin_first_layer_takes_pixels_as_codes(tmp_path) -> None:
    # input_norm with one integer mean and one std: the uint8 pixels are the layer's codes, so
    # the only error left is float rounding.
    torch.manual_seed(1)
    net = nn.Sequential(_SignConv(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1)).eval()
    path = str(tmp_path / "m.hbn")
    hbn_engine.export(net, torch.randn(1, 3, 10, 10), path, wbin="int8",
                      input_norm=([128.0] * 3, [64.0] * 3))
    m = hbn_engine.load(path)
    (info,) = m.metadata["int8"]
    assert info["op"] == "conv_wbin_q8" and (info["in_scale"], info["in_zero"]) == (1 / 64, 128)
    px = np.random.default_rng(0).integers(0, 256, (2, 10, 10, 3), dtype=np.uint8)
    xn = (torch.from_numpy(px.transpose(0, 3, 1, 2).astype(np.float32)) - 128) / 64
    with torch.no_grad():
        t = net(xn).numpy()
    np.testing.assert_allclose(m.run(px), t, rtol=1e-5, atol=1e-5 * np.abs(t).max())


# --- edges="int8" on an edge WeightBin convolution (SqueezeNet's conv10) -----------------------

def _squeeze_like_net(seed: int = 0, last_linear: bool = False) -> nn.Module:
    """Float stem, FullBin fire-like convs (bit outputs between them), and a WeightBin 1x1
    classifier conv as the last layer (SqueezeNet's conv10, weight-binarised in every zoo
    variant), or a WeightBin linear classifier when ``last_linear``."""
    torch.manual_seed(seed)
    head = ([hnn.WeightBinConv2d(48, 10, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            if not last_linear else
            [nn.AdaptiveAvgPool2d(1), nn.Flatten(), hnn.WeightBinLinear(48, 10)])
    net = nn.Sequential(
        nn.Conv2d(3, 24, 3, stride=2, padding=1), nn.BatchNorm2d(24), nn.ReLU(),
        hnn.FullBinConv2d(24, 16, 1), hnn.FullBinConv2d(16, 48, 3, padding=1),
        nn.BatchNorm2d(48), nn.ReLU(), *head).eval()
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
    return net


def test_int8_edges_take_an_edge_weightbin_conv(tmp_path) -> None:
    net = _squeeze_like_net(4)
    rng = np.random.default_rng(11)
    cal = torch.from_numpy(rng.standard_normal((32, 3, 18, 18)).astype(np.float32))
    path = str(tmp_path / "q.hbn")
    rep = hbn_engine.export(net, cal[:1], path, edges="int8", calibration=cal)
    kinds = rep.kinds()
    assert kinds["0"] == "int8" and kinds["7"] == "wbin_int8"
    assert kinds["3"] == kinds["4"] == "fbin"
    f = read_hbn(path)
    assert [op.type for op in f.ops if op.name in ("0", "3", "4", "7")] == \
        ["conv_q8", "conv_fbin", "conv_fbin", "conv_wbin_q8"]
    (op7,) = [op for op in f.ops if op.name == "7"]
    assert f.tensors[op7.tensors[0]].dtype == np.uint64  # the signs stay bits
    meta = {r["layer"]: r for r in f.metadata["int8"]}
    assert meta["7"]["op"] == "conv_wbin_q8" and "op" not in meta["0"]
    assert "WeightBin on 8-bit input" in dict((lr.name, lr.reason) for lr in rep.layers)["7"]
    # The explicit options give the same file: wbin="int8" (every WeightBin conv, here only the
    # edge one) and int8_layers naming both edges.
    for kw in ({"edges": "int8", "wbin": "int8"}, {"int8_layers": ["0", "7"]}):
        other = str(tmp_path / "o.hbn")
        hbn_engine.export(net, cal[:1], other, calibration=cal, **kw)
        assert Path(other).read_bytes() == Path(path).read_bytes(), kw
    # Outputs: PyTorch with conv10's input fake-quantized with the file's parameters and the
    # stem as the engine computes it (conv_q8), i.e. the whole network's quantized reference.
    x = rng.standard_normal((48, 3, 18, 18)).astype(np.float32)
    x = np.clip(x, cal.min().item(), cal.max().item())
    y = hbn_engine.load(path).run(x)
    with torch.no_grad():
        t = net(torch.from_numpy(x)).numpy()
    # Only conv10 in 8 bits: the fake-quant model is its reference to float rounding.
    tail = str(tmp_path / "tail.hbn")
    hbn_engine.export(net, cal[:1], tail, int8_layers=["7"], calibration=cal)
    with torch.no_grad():
        r = _fake_quant(net, tail)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(hbn_engine.load(tail).run(x), r, rtol=1e-4,
                               atol=1e-4 * np.abs(r).max())
    # Both edges: within the quantization error of fp32.
    assert (y.argmax(1) == t.argmax(1)).mean() >= 0.85
    assert np.abs(y - t).max() <= 0.1 * np.abs(t).max()


def test_int8_edges_keep_an_edge_weightbin_linear_exact(tmp_path) -> None:
    net = _squeeze_like_net(5, last_linear=True)
    cal = torch.randn(16, 3, 18, 18)
    path = str(tmp_path / "q.hbn")
    rep = hbn_engine.export(net, cal[:1], path, edges="int8", calibration=cal)
    kinds = rep.kinds()
    assert kinds["0"] == "int8" and kinds["9"] == "wbin"
    assert any("edge WeightBin layer 9 stays exact" in n for n in rep.notes)
    # wbin="int8" (convolutions only) keeps it too; int8_layers converts it.
    rep = hbn_engine.export(net, cal[:1], path, edges="int8", wbin="int8", calibration=cal)
    assert rep.kinds()["9"] == "wbin"
    rep = hbn_engine.export(net, cal[:1], path, edges="int8", int8_layers=["9"],
                            calibration=cal)
    assert rep.kinds()["9"] == "wbin_int8"
    assert not any("stays exact" in n for n in rep.notes)


def test_int8_edges_leave_an_edge_conv_over_the_int32_bound_exact(tmp_path) -> None:
    # 8192 channels x 3x3 = 73728 values: the 8-bit GEMM's int32 sums would not be exact.
    # wbin="int8" refuses it by name; edges="int8" (a preset) keeps it exact and says so.
    net = nn.Sequential(nn.Conv2d(2, 8192, 1), hnn.WeightBinConv2d(8192, 2, 3)).eval()
    cal = torch.randn(2, 2, 3, 3)
    path = str(tmp_path / "q.hbn")
    rep = hbn_engine.export(net, cal[:1], path, edges="int8", calibration=cal)
    assert rep.kinds()["0"] == "int8" and rep.kinds()["1"] == "wbin"
    assert any("edge WeightBin layer 1 stays exact" in n and "int32 bound" in n
               for n in rep.notes)
    with pytest.raises(ValueError, match="receptive field of 73728"):
        hbn_engine.export(net, cal[:1], path, edges="int8", wbin="int8", calibration=cal)


def test_int8_edges_every_isa_same_output(tmp_path, each_isa: str) -> None:
    net = _squeeze_like_net(6)
    cal = torch.randn(16, 3, 18, 18)
    path = str(tmp_path / "q.hbn")
    hbn_engine.export(net, cal[:1], path, edges="int8", calibration=cal)
    x = torch.randn(4, 3, 18, 18).numpy()
    y = hbn_engine.load(path).run(x)
    hbn_engine.reset_isa()
    np.testing.assert_array_equal(y, hbn_engine.load(path).run(x))


def test_zoo_squeezenet_int8_edges_run_conv10_on_8bit_input(tmp_path) -> None:
    # What hbn bench's "FBin / Hybrid + int8 edges" rows export (suite.py: edges="int8" on the
    # zoo network, calibrated): SqueezeNet's conv10 is an edge WeightBin conv, so conv_wbin_q8.
    from hbn_engine.bench.suite import _build

    for variant in ("fbin", "hybrid"):
        net = _build("squeezenet", variant, 10, 0).eval()
        x = torch.randn(1, *net.input_size)
        path = str(tmp_path / f"{variant}.hbn")
        rep = hbn_engine.export(net, x, path, edges="int8", calibration=torch.randn(2, *net.input_size))
        kinds = rep.kinds()
        assert kinds["conv1"] == "int8" and kinds["conv10"] == "wbin_int8", variant
        assert [r["layer"] for r in read_hbn(path).metadata["int8"]] == ["conv1", "conv10"]
