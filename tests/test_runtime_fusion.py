"""The executor's fused paths against the unfused ones (``bit_passing=False``: every value float,
every binary layer packs its own input) and PyTorch, under every kernel path: a residual add or
max-pool that also writes packed copies for the binary convolutions it feeds, and a binary
first layer whose NCHW input is packed straight to bits. Fused and unfused runs must agree
exactly: the packed copies apply the same comparison to the same floats."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine.nn import FullBinConv2d, FullBinLinear  # noqa: E402

from conftest import assert_close_to_torch, assert_same_run, randomize_bn  # noqa: E402

RTOL = 2e-5


class ResBin(nn.Module):
    """ResNet-FBin in miniature: a float stem and max-pool feeding a binary block and the
    identity path; a ReLU'd residual add feeding a strided block's conv and its binary
    downsample (two distinct threshold sets) plus a plain block whose two convs share one BN
    (one copy serves both); 70 channels, so words end part-full."""

    def __init__(self) -> None:
        super().__init__()
        c = 70
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.a1 = FullBinConv2d(c, c, 3, 1, 1)
        self.a2 = FullBinConv2d(c, c, 3, 1, 1, activation=None)
        self.b1 = FullBinConv2d(c, 2 * c, 3, 2, 1)
        self.b2 = FullBinConv2d(2 * c, 2 * c, 3, 1, 1, activation=None)
        self.down = FullBinConv2d(c, 2 * c, 1, 2, 0, activation=None)
        self.s1 = FullBinConv2d(2 * c, 2 * c, 3, 1, 1, activation=None)
        self.s2 = FullBinConv2d(2 * c, 2 * c, 1, 1, 0, activation=None)
        self.head = FullBinLinear(2 * c, 10, activation=None)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.stem(x))))
        x = F.relu(self.a2(self.a1(x)) + x)
        x = F.relu(self.b2(self.b1(x)) + self.down(x))
        x = self.s1(x) + self.s2(x) + x
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class BinInput(nn.Module):
    """A binary first layer (the XNOR-Net single-layer setting) with a partial last word."""

    def __init__(self) -> None:
        super().__init__()
        self.b = FullBinConv2d(70, 24, 3, 1, 1, activation=None)

    def forward(self, x):
        return self.b(x)


class PoolBinInput(nn.Module):
    """Input -> max-pool -> binary conv: the input is packed, then pooled in the bit domain."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.b = FullBinConv2d(9, 16, 3, 1, 1)
        self.c = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.c(self.b(self.p(x)))


def _export(model: nn.Module, shape: tuple, path, share_bn: bool = False):
    model = randomize_bn(model, seed=7)
    if share_bn:
        model.s2.bn.load_state_dict(model.s1.bn.state_dict())
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    hbn_engine.export(model, x, str(path))
    return model, hbn_engine.load(path), hbn_engine.load(path, bit_passing=False)


def _check(model: nn.Module, fused, unfused, x: np.ndarray) -> None:
    assert_close_to_torch(model, x, assert_same_run(fused, unfused, x), RTOL)


@pytest.fixture(scope="module")
def resbin(tmp_path_factory):
    torch.manual_seed(3)
    return _export(ResBin(), (2, 3, 12, 11), tmp_path_factory.mktemp("f") / "res.hbn", share_bn=True)


def test_residual_add_and_pool_write_packed_copies(resbin) -> None:
    _, m, ref = resbin
    copies = m.packed_copy_layers
    assert copies["pool"] == 1                      # a1 packs from the pool's pass
    # the first add feeds b1 and down (two threshold sets); the second s1 and s2, which share
    # their BN, so one copy serves both
    assert sorted(copies.values()) == [1, 1, 2] and len(copies) == 3
    assert ref.packed_copy_layers == {} and not ref.input_is_bits


@pytest.mark.parametrize("batch", [1, 3])
def test_residual_fusion_is_exact(resbin, each_isa, batch, rng) -> None:
    model, m, ref = resbin
    _check(model, m, ref, rng.standard_normal((batch, 3, 12, 11)).astype(np.float32))


@pytest.mark.parametrize("batch", [1, 2])
def test_binary_input_is_packed_from_nchw(tmp_path, each_isa, batch, rng) -> None:
    torch.manual_seed(4)
    model, m, ref = _export(BinInput(), (2, 70, 7, 9), tmp_path / "in.hbn")
    assert m.input_is_bits and not ref.input_is_bits
    x = rng.standard_normal((batch, 70, 7, 9)).astype(np.float32)
    x[:, :, 0, 0] = 0.0  # sign(0) = +1 after the folded BN threshold too
    _check(model, m, ref, x)
    # a strided view (channels last in memory) takes the general-stride path
    xt = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(m.run(xt), m.run(x))


def test_binary_input_through_a_pool(tmp_path, each_isa, rng) -> None:
    torch.manual_seed(5)
    model, m, ref = _export(PoolBinInput(), (2, 9, 7, 7), tmp_path / "pin.hbn")
    assert m.input_is_bits and m.bit_passing_layers == ["p"]
    _check(model, m, ref, rng.standard_normal((2, 9, 7, 7)).astype(np.float32))


def test_input_scale_keeps_float_input(tmp_path) -> None:
    model = nn.Sequential(FullBinConv2d(8, 8, 3, 1, 1, input_scale=True))
    _, m, _ = _export(model, (1, 8, 5, 5), tmp_path / "xs.hbn")
    assert not m.input_is_bits  # K needs |x|, so the input stays float
