"""PReLU (torch.nn.PReLU, per-channel and single-slope) exported and run against PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import hbn_engine
from hbn_engine.format import FormatError, Op, encode_hbn, read_hbn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _run_both(model: nn.Module, x: torch.Tensor, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    p = tmp_path / "m.hbn"
    hbn_engine.export(model, x, str(p))
    with torch.no_grad():
        want = model(x).numpy()
    return hbn_engine.load(p).run(x.numpy()), want


@pytest.mark.parametrize("num_parameters", [1, 6])
def test_prelu_conv_matches_torch(tmp_path, num_parameters: int) -> None:
    torch.manual_seed(num_parameters)
    prelu = nn.PReLU(num_parameters)
    with torch.no_grad():
        prelu.weight.uniform_(-0.5, 0.5)  # negative slopes too
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), prelu, nn.MaxPool2d(2))
    x = torch.randn(3, 3, 9, 8)
    x[0, 0, 0, 0] = 0.0  # the x > 0 edge
    got, want = _run_both(model, x, tmp_path)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    layers = hbn_engine.load(tmp_path / "m.hbn").layers
    assert layers[1] == ("1", "prelu")
    slope = read_hbn(str(tmp_path / "m.hbn")).tensors[-1]
    assert slope.shape == (num_parameters,)


def test_prelu_exact_on_input(tmp_path) -> None:
    # Straight on the model input: no conv rounding in between, so the results are identical.
    torch.manual_seed(0)
    prelu = nn.PReLU(4, init=0.3)
    x = torch.randn(2, 4, 5, 7)
    got, want = _run_both(nn.Sequential(prelu), x, tmp_path)
    np.testing.assert_array_equal(got, want)


def test_prelu_after_linear(tmp_path) -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.PReLU(5), nn.Linear(5, 3))
    x = torch.randn(4, 3, 2, 2)
    got, want = _run_both(model, x, tmp_path)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def _prelu_file(slope: np.ndarray, channels: int = 4) -> bytes:
    ops = [Op("prelu", "p", [0], [0])]
    return encode_hbn(ops, [slope], {}, (channels, 2, 2), 1)


def test_prelu_bad_files() -> None:
    hbn_engine.load(_prelu_file(np.ones(4, np.float32)))
    hbn_engine.load(_prelu_file(np.ones(1, np.float32)))
    with pytest.raises(FormatError, match="'p'.*slope.*shape"):
        hbn_engine.load(_prelu_file(np.ones(3, np.float32)))
    with pytest.raises(FormatError, match="'p'.*slope.*non-finite"):
        hbn_engine.load(_prelu_file(np.array([1, np.nan, 0, 0], np.float32)))
    with pytest.raises(FormatError, match="'p'.*missing tensor slope"):
        hbn_engine.load(encode_hbn([Op("prelu", "p", [0], [None])], [], {}, (4, 2, 2), 1))
