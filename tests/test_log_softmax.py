"""log_softmax (F.log_softmax, torch.log_softmax, Tensor.log_softmax, nn.LogSoftmax) and the
softmax dim handling, exported and run against PyTorch; the bad-file errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hbn_engine
from hbn_engine.exporter import ExportError
from hbn_engine.format import FormatError, Op, encode_hbn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Fn(nn.Module):
    def __init__(self, fn, pre: nn.Module = None):
        super().__init__()
        self.pre = pre if pre is not None else nn.Identity()
        self.fn = fn

    def forward(self, x):
        return self.fn(self.pre(x))


def _run(model: nn.Module, x: torch.Tensor, tmp_path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    p = tmp_path / "m.hbn"
    hbn_engine.export(model, x[:1], str(p))
    eng = hbn_engine.load(p)
    assert kind in {k for _, k in eng.layers}
    with torch.no_grad():
        want = model(x).numpy()
    return eng.run(x.numpy()), want


def _close(got: np.ndarray, want: np.ndarray) -> None:
    # ~1 float32 ulp of the result (torch rounds its sum and log in float32, the engine in double)
    finite = np.isfinite(want)
    np.testing.assert_array_equal(got[~finite], want[~finite])  # -inf where torch overflows
    scale = max(1.0, float(np.abs(want[finite]).max()))
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6, atol=1e-6 * scale)


FLAT = {
    "F.log_softmax": lambda x: F.log_softmax(x, dim=1),
    "torch.log_softmax": lambda x: torch.log_softmax(x, -1),
    "method": lambda x: x.log_softmax(dim=-1),
    "module": nn.LogSoftmax(dim=1),
}


@pytest.mark.parametrize("case", list(FLAT))
@pytest.mark.parametrize("classes", [1, 7, 1000])
def test_log_softmax_head(tmp_path, case: str, classes: int) -> None:
    torch.manual_seed(classes)
    model = Fn(FLAT[case], nn.Sequential(nn.Flatten(), nn.Linear(12, classes)))
    x = torch.randn(5, 3, 2, 2) * 4
    got, want = _run(model, x, tmp_path, "log_softmax")
    _close(got, want)
    if classes == 1:
        np.testing.assert_array_equal(got, 0.0)


def test_log_softmax_edges_on_input(tmp_path) -> None:
    # exact zeros, equal values, a dominating value (exp underflows to 0 for the rest), huge
    # magnitudes: straight on the input, over the channels of a 4-D tensor, odd C, batch 3
    x = torch.randn(3, 5, 3, 4)
    x[0, :, 0, 0] = 0.0
    x[0, :, 0, 1] = 3.0
    x[1, :, 1, 1] = torch.tensor([200.0, 0.0, -200.0, 1.0, 0.5])
    x[2, :, 2, 2] = torch.tensor([3e38, -3e38, 1e30, 0.0, 3e38])
    x[2, :, 2, 3] = torch.tensor([-1e-30, 1e-30, 0.0, -0.0, 1e-45])
    got, want = _run(Fn(lambda v: F.log_softmax(v, 1)), x, tmp_path, "log_softmax")
    _close(got, want)


def test_log_softmax_after_conv(tmp_path) -> None:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 9, 3, padding=1), nn.LogSoftmax(dim=-3))
    x = torch.randn(2, 3, 5, 6)
    got, want = _run(model, x, tmp_path, "log_softmax")
    _close(got, want)


@pytest.mark.parametrize("dim", [1, -1])
def test_softmax_dims_flat(tmp_path, dim: int) -> None:
    torch.manual_seed(4)
    model = Fn(lambda v: F.softmax(v, dim=dim), nn.Sequential(nn.Flatten(), nn.Linear(12, 6)))
    got, want = _run(model, torch.randn(3, 3, 2, 2), tmp_path, "softmax")
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_softmax_implicit_dim(tmp_path) -> None:
    # torch picks dim 1 for 2-D / 4-D inputs when none is given (and warns)
    model = Fn(lambda v: F.softmax(v), nn.Flatten())
    with pytest.warns(UserWarning, match="Implicit dimension"):
        got, want = _run(model, torch.randn(3, 4, 1, 1), tmp_path, "softmax")
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("fn, msg", [
    (lambda v: F.log_softmax(v, dim=2), r"log_softmax only over dim 1.*dim=2"),
    (lambda v: F.softmax(v, dim=-1), r"softmax only over dim 1.*dim=-1"),
    (lambda v: F.log_softmax(v, 1, dtype=torch.float64), "dtype"),
])
def test_softmax_refusals(tmp_path, fn, msg: str) -> None:
    with pytest.raises(ExportError, match=msg):
        hbn_engine.export(Fn(fn), torch.randn(1, 3, 4, 4), str(tmp_path / "m.hbn"))


def test_log_softmax_bad_files() -> None:
    hbn_engine.load(encode_hbn([Op("log_softmax", "l", [0], [])], [], {}, (4, 2, 2), 1))
    with pytest.raises(FormatError, match="'l'.*input"):
        hbn_engine.load(encode_hbn([Op("log_softmax", "l", [0, 0], [])], [], {}, (4, 2, 2), 1))
