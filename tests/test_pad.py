"""pad (nn.ConstantPad2d, nn.ZeroPad2d, F.pad constant mode) exported and run against PyTorch;
a zero pad folded into the following conv where that is exact (float-input convs, and a pad
between a sign and a binary conv), kept where it is not; the bad-file errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hbn_engine
from hbn_engine.exporter import ExportError
from hbn_engine.format import FormatError, Op, encode_hbn
from hbn_engine.nn import FullBinConv2d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _bin_weight(w: torch.Tensor) -> torch.Tensor:
    return w.sign() * w.abs().mean(dim=(1, 2, 3), keepdim=True)


class Fn(nn.Module):
    def __init__(self, fn, **mods):
        super().__init__()
        self.fn = fn
        for k, v in mods.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.fn(self, x)


def _export(model: nn.Module, x: torch.Tensor, tmp_path, **kw):
    model.eval()
    p = tmp_path / "m.hbn"
    hbn_engine.export(model, x[:1], str(p), **kw)
    eng = hbn_engine.load(p)
    with torch.no_grad():
        want = model(x).numpy()
    return eng, eng.run(x.numpy()), want


def _kinds(eng) -> list[str]:
    return [k for _, k in eng.layers]


@pytest.mark.parametrize("pad, value", [
    ((1, 2, 0, 3), 0.0), ((2, 0), -1.5), (1, 0.25), ((0, 0, 0, 0), 7.0), ((3, 1, 2, 0), -0.0)])
def test_constant_pad_on_input_is_exact(tmp_path, pad, value) -> None:
    x = torch.randn(3, 5, 4, 6)
    x[0, 0, 0, 0] = 0.0
    eng, got, want = _export(nn.ConstantPad2d(pad, value), x, tmp_path)
    assert _kinds(eng) == ["pad"]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_f_pad_forms(tmp_path) -> None:
    x = torch.randn(2, 3, 5, 5)
    model = Fn(lambda s, v: F.pad(F.pad(v, (1, 1), value=2.0), [0, 1, 2, 0], "constant"))
    eng, got, want = _export(model, x, tmp_path)
    assert _kinds(eng) == ["pad", "pad"]
    np.testing.assert_array_equal(got, want)


def test_zero_pad_folds_into_float_conv(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.ZeroPad2d(2), nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(),
                          nn.ConstantPad2d((1, 1, 0, 0), 0.0), nn.Conv2d(6, 5, 3))
    x = torch.randn(3, 3, 7, 6)
    eng, got, want = _export(model, x, tmp_path)
    assert "pad" not in _kinds(eng)  # both folded: the padded taps add exact zeros
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_pad_kept_where_not_foldable(tmp_path) -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 4, 3)
    model = Fn(lambda s, v: s.c(F.pad(v, (1, 0, 1, 1))) + s.c(F.pad(v, (1, 0, 1, 1), value=0.5)),
               c=conv)
    x = torch.randn(2, 3, 6, 6)
    eng, got, want = _export(model, x, tmp_path)
    assert _kinds(eng).count("pad") == 2  # asymmetric; non-zero value
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_zero_pad_folds_into_weightbin_conv(tmp_path) -> None:
    torch.manual_seed(2)
    conv = nn.Conv2d(5, 4, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(_bin_weight(conv.weight))  # stored +-alpha: a WeightBin layer
    model = nn.Sequential(nn.ZeroPad2d(1), conv)
    x = torch.randn(2, 5, 6, 7)
    eng, got, want = _export(model, x, tmp_path)
    assert _kinds(eng) == ["wbin"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


class SignPadConv(nn.Module):
    """sign -> zero pad -> +-alpha conv (the pad between the sign and the conv), or the pad
    before the sign (pad_first)."""

    def __init__(self, pad_first: bool = False, plus_one: bool = False):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.w = nn.Parameter(torch.randn(6, 8, 3, 3))
        self.pad_first, self.plus_one = pad_first, plus_one

    def sign(self, v):
        return torch.where(v >= 0, 1.0, -1.0) if self.plus_one else torch.sign(v)

    def forward(self, x):
        v = self.stem(x)
        v = self.sign(F.pad(v, (1, 1, 1, 1))) if self.pad_first else F.pad(self.sign(v),
                                                                           (1, 1, 1, 1))
        return F.conv2d(v, _bin_weight(self.w), padding=1)


def test_sign_then_zero_pad_folds_into_fullbin(tmp_path) -> None:
    torch.manual_seed(3)
    x = torch.randn(3, 3, 6, 5)
    eng, got, want = _export(SignPadConv(), x, tmp_path)
    assert _kinds(eng) == ["fprec", "fbin"]  # padded zeros add 0, as the FullBin padding does
    assert got.shape == want.shape == (3, 6, 8, 7)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def test_zero_pad_before_sign(tmp_path) -> None:
    # torch.sign(0) = 0 at the padded positions: not the engine's +1, so refused by default ...
    torch.manual_seed(4)
    x = torch.randn(2, 3, 6, 5)
    with pytest.raises(ExportError, match=r"can be exactly 0.*sign_zero='plus_one'"):
        hbn_engine.export(SignPadConv(pad_first=True).eval(), x, str(tmp_path / "m.hbn"))
    # ... and with sign(0) = +1 accepted, the pad stays an op and its zeros binarize to +1,
    # which is what the same model with a sign(0) = +1 sign computes
    model = SignPadConv(pad_first=True)
    eng, got, _ = _export(model, x, tmp_path, sign_zero="plus_one")
    assert _kinds(eng) == ["fprec", "pad", "fbin"]
    model.plus_one = True
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def test_zero_pad_before_hbn_fullbin_not_folded(tmp_path) -> None:
    # FullBinConv2d binarizes its own input (sign(0) = +1): the padded zeros become +1 there,
    # where its own padding adds 0, so the pad must stay an op
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ZeroPad2d(1),
                          FullBinConv2d(8, 6, 3, padding=1, bn=False, activation=None))
    x = torch.randn(2, 3, 5, 5)
    eng, got, want = _export(model, x, tmp_path)
    assert _kinds(eng) == ["fprec", "pad", "fbin"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


@pytest.mark.parametrize("fn, msg", [
    (lambda s, v: F.pad(v, (1, 1, 1, 1), mode="reflect"), "mode='reflect'"),
    (lambda s, v: F.pad(v, (1, -1)), "negative padding"),
    (lambda s, v: F.pad(v, (1, 1, 1, 1, 1, 1)), "H / W only"),
    (lambda s, v: F.pad(v, (1, 1), value=float("-inf")), "not a finite float32"),
])
def test_pad_export_refusals(tmp_path, fn, msg: str) -> None:
    with pytest.raises(ExportError, match=msg):
        hbn_engine.export(Fn(fn), torch.randn(1, 3, 4, 4), str(tmp_path / "m.hbn"))


def _pad_file(attrs: dict, shape=(4, 2, 2), flat: bool = False) -> bytes:
    ops = [Op("flatten", "f", [0], []), Op("pad", "p", [1], [], attrs)] if flat else \
        [Op("pad", "p", [0], [], attrs)]
    return encode_hbn(ops, [], {}, shape, len(ops))


def test_pad_bad_files() -> None:
    m = hbn_engine.load(_pad_file({"pad_top": 1, "pad_right": 2, "value": -3.0}))
    assert m.run(np.zeros((1, 4, 2, 2), np.float32)).shape == (1, 4, 3, 4)
    with pytest.raises(FormatError, match="'p'.*pad_left = -1"):
        hbn_engine.load(_pad_file({"pad_left": -1}))
    with pytest.raises(FormatError, match="'p'.*value is not finite"):
        hbn_engine.load(_pad_file({"value": float("inf")}))
    with pytest.raises(FormatError, match="'p'.*exceeds"):
        hbn_engine.load(_pad_file({"pad_top": 32767}))
    with pytest.raises(FormatError, match="'p'.*flat"):
        hbn_engine.load(_pad_file({"pad_top": 1}, flat=True))
