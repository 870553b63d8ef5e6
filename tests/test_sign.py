"""sign: the standalone sign op (+-1 floats with the model's value at 0) for binarized tensors a
float layer or a residual add consumes, exported and run against PyTorch; the bad-file errors."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hbn_engine
from hbn_engine.format import FormatError, Op, encode_hbn, read_hbn

sys.path.insert(0, str(Path(__file__).parent))
from idioms.common import PlusOneSTE, SignSTE  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Fn(nn.Module):
    def __init__(self, fn, **mods):
        super().__init__()
        self.fn = fn
        for k, v in mods.items():
            setattr(self, k, v)

    def forward(self, x):
        return self.fn(self, x)


def _input(seed: int, shape=(3, 5, 6, 7)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    x[torch.rand(shape, generator=g) < 0.2] = 0.0  # exact zeros: where sign(0) decides
    x[0, 0, 0, :3] = torch.tensor([0.5, -0.0, np.nextafter(np.float32(0.5), np.float32(1))])
    return x


def _export(model: nn.Module, x: torch.Tensor, tmp_path):
    model.eval()
    p = tmp_path / "m.hbn"
    hbn_engine.export(model, x[:1], str(p))
    ops = [(o.type, o.attrs) for o in read_hbn(str(p)).ops]
    with torch.no_grad():
        want = model(x).numpy()
    return ops, hbn_engine.load(p).run(x.numpy()), want


@pytest.mark.parametrize("form, zero, thr", [
    ("torch.sign", 0, 0.0), ("Tensor.sign", 0, 0.0), ("where_ge", 1, 0.0), ("where_gt", -1, 0.0),
    ("ste_sign", 0, 0.0), ("ste_plus_one", 1, 0.0), ("where_ge_half", 1, 0.5)])
def test_sign_output_is_exact(tmp_path, form: str, zero: int, thr: float) -> None:
    fns = {
        "torch.sign": lambda s, v: torch.sign(v),
        "Tensor.sign": lambda s, v: v.sign(),
        "where_ge": lambda s, v: torch.where(v >= 0, 1.0, -1.0),
        "where_gt": lambda s, v: torch.where(v > 0, 1.0, -1.0),
        "ste_sign": lambda s, v: SignSTE.apply(v),
        "ste_plus_one": lambda s, v: PlusOneSTE.apply(v),
        "where_ge_half": lambda s, v: torch.where(v >= 0.5, 1.0, -1.0),
    }
    ops, got, want = _export(Fn(fns[form]), _input(1), tmp_path)
    assert [t for t, _ in ops] == ["sign"]
    assert ops[0][1]["zero"] == zero and ops[0][1].get("threshold", 0.0) == thr
    np.testing.assert_array_equal(got, want)


def test_sign_into_float_conv_and_linear(tmp_path) -> None:
    torch.manual_seed(2)
    model = Fn(lambda s, v: s.fc(torch.flatten(s.conv(torch.sign(v)), 1)),
               conv=nn.Conv2d(5, 4, 3, padding=1), fc=nn.Linear(4 * 6 * 7, 3))
    x = _input(2)
    ops, got, want = _export(model, x, tmp_path)
    assert [t for t, _ in ops] == ["sign", "conv_f32", "flatten", "conv_f32"]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(np.abs(want).max()))


def test_sign_shared_by_binary_conv_and_residual(tmp_path) -> None:
    torch.manual_seed(3)
    w = nn.Parameter(torch.randn(5, 5, 3, 3))

    def fwd(s, v):
        b = torch.sign(s.bn(s.stem(v)))
        wb = s.w.sign() * s.w.abs().mean((1, 2, 3), keepdim=True)
        return F.conv2d(b, wb, padding=1) + b

    model = Fn(fwd, stem=nn.Conv2d(5, 5, 3, padding=1), bn=nn.BatchNorm2d(5))
    model.w = w
    x = torch.randn(2, 5, 6, 6)
    ops, got, want = _export(model, x, tmp_path)
    assert sorted(t for t, _ in ops) == ["add", "batchnorm", "conv_f32", "conv_fbin", "sign"]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * float(np.abs(want).max()))


def _sign_file(attrs: dict) -> bytes:
    return encode_hbn([Op("sign", "s", [0], [], attrs)], [], {}, (4, 2, 2), 1)


def test_sign_bad_files() -> None:
    m = hbn_engine.load(_sign_file({"zero": 0, "threshold": 0.5}))
    x = np.array([0.25, 0.5, 0.75, -1.0], np.float32).reshape(1, 4, 1, 1).repeat(2, 2).repeat(2, 3)
    np.testing.assert_array_equal(m.run(x)[0, :, 0, 0], [-1, 0, 1, -1])
    with pytest.raises(FormatError, match="'s'.*missing attribute zero"):
        hbn_engine.load(_sign_file({}))
    with pytest.raises(FormatError, match="'s'.*zero = 2 not in"):
        hbn_engine.load(_sign_file({"zero": 2}))
    with pytest.raises(FormatError, match="'s'.*threshold is not a float32"):
        hbn_engine.load(_sign_file({"zero": 1, "threshold": 0.1}))
    with pytest.raises(FormatError, match="'s'.*threshold is not finite"):
        hbn_engine.load(_sign_file({"zero": 1, "threshold": float("nan")}))
