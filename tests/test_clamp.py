"""clamp (nn.Hardtanh, nn.ReLU6, F.hardtanh, torch.clamp / clip, Tensor.clamp / clip with one or
both bounds) exported and run against PyTorch, and its bad-file errors."""
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
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _edge_input(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * 2
    flat = x.view(-1)
    # exact zeros, the bounds themselves, their float32 neighbours and the float32 extremes
    # (the engine refuses non-finite inputs; an infinity inside a network clamps like these)
    fmax = float(np.finfo(np.float32).max)
    edges = torch.tensor([0.0, -0.0, 1.0, -1.0, 6.0, 0.5, -0.25, fmax, -fmax,
                          np.nextafter(np.float32(1), np.float32(2)),
                          np.nextafter(np.float32(-1), np.float32(-2)), 1e30, -1e30])
    idx = torch.randperm(flat.numel(), generator=g)[:len(edges)]
    flat[idx] = edges
    return x


def _run_both(model: nn.Module, x: torch.Tensor, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    p = tmp_path / "m.hbn"
    hbn_engine.export(model, x[:1], str(p))
    with torch.no_grad():
        want = model(x).numpy()
    eng = hbn_engine.load(p)
    assert ("clamp" in {kind for _, kind in eng.layers})
    return eng.run(x.numpy()), want


CASES = {
    "hardtanh": lambda: nn.Hardtanh(),
    "hardtanh_range": lambda: nn.Hardtanh(-0.25, 0.5),
    "relu6": lambda: nn.ReLU6(),
    "F.hardtanh": lambda: Fn(lambda x: F.hardtanh(x, -0.5, max_val=2.0)),
    "F.relu6": lambda: Fn(F.relu6),
    "torch.clamp": lambda: Fn(lambda x: torch.clamp(x, -1, 1)),
    "torch.clip_min": lambda: Fn(lambda x: torch.clip(x, min=0.5)),
    "tensor.clamp_max": lambda: Fn(lambda x: x.clamp(max=-0.25)),
    "tensor.clip": lambda: Fn(lambda x: x.clip(-1.0, 6)),
    "clamp_min": lambda: Fn(lambda x: x.clamp_min(0.0)),
    "torch.clamp_max": lambda: Fn(lambda x: torch.clamp_max(x, 1.0)),
    "inexact_bound": lambda: Fn(lambda x: x.clamp(-0.1, 0.3)),  # bounds rounded to float32
}


@pytest.mark.parametrize("case", list(CASES))
def test_clamp_on_input_is_exact(tmp_path, case: str) -> None:
    # On the model input (odd channels, batch 3) with edges and +-inf: identical results.
    x = _edge_input((3, 5, 7, 3), seed=len(case))
    got, want = _run_both(CASES[case](), x, tmp_path)
    np.testing.assert_array_equal(got, want)


def test_hardtanh_between_convs_and_residual(tmp_path) -> None:
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
            self.act = nn.Hardtanh()
            self.conv2 = nn.Conv2d(6, 6, 3, padding=1)

        def forward(self, x):
            y = self.act(self.conv1(x))
            return F.relu6(self.conv2(y) + y).flatten(1)

    torch.manual_seed(0)
    x = torch.randn(4, 3, 6, 5)
    got, want = _run_both(Res(), x, tmp_path)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_clamp_after_linear(tmp_path) -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.Hardtanh(), nn.Linear(7, 3))
    x = torch.randn(5, 3, 2, 2)
    got, want = _run_both(model, x, tmp_path)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn, msg", [
    (lambda x: torch.clamp(x, min=F.relu(x)), "must be a Python number"),
    (lambda x: x.clamp(1.0, -1.0), "min > max"),
])
def test_clamp_export_refusals(tmp_path, fn, msg: str) -> None:
    with pytest.raises(ExportError, match=msg):
        hbn_engine.export(Fn(fn), torch.randn(1, 3, 4, 4), str(tmp_path / "m.hbn"))


def _clamp_file(attrs: dict) -> bytes:
    return encode_hbn([Op("clamp", "c", [0], [], attrs)], [], {}, (4, 2, 2), 1)


def test_clamp_bad_files() -> None:
    hbn_engine.load(_clamp_file({"min": -1.0, "max": 1.0}))
    hbn_engine.load(_clamp_file({"max": 1.0}))
    hbn_engine.load(_clamp_file({"min": 2.0, "max": 2.0}))
    with pytest.raises(FormatError, match="'c'.*neither min nor max"):
        hbn_engine.load(_clamp_file({}))
    with pytest.raises(FormatError, match="'c'.*min > max"):
        hbn_engine.load(_clamp_file({"min": 1.0, "max": -1.0}))
    with pytest.raises(FormatError, match="'c'.*min is not finite"):
        hbn_engine.load(_clamp_file({"min": float("nan")}))
    with pytest.raises(FormatError, match="'c'.*max is not finite"):
        hbn_engine.load(_clamp_file({"min": 0.0, "max": float("inf")}))
    with pytest.raises(FormatError, match="'c'.*float32 range"):
        hbn_engine.load(_clamp_file({"min": -1e300}))
