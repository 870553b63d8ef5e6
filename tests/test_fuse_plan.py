"""The executor's fuse plan (csrc/runtime/fuse_plan.h) against the unfused executor
(HBN_NO_FUSE=1 at load) and PyTorch, under every bconv kernel row and ISA path: residual adds
computed in a conv's output stage (FullBin, float and WeightBin) (with the conv's own ReLU or not, a ReLU after the sum
or not, the add's packed copies for binary consumers, the later of two convs taking the other
as its shortcut), and max-pools with overlapping and ceil-mode windows run on a float conv's
output row bands (float output with packed copies, or bits for a binary consumer) or on an int8
first layer's (conv_q8: direct-path bands or im2col blocks), and FullBin convs writing the sum
over a residual that dies there (in place) but not over one read later. Fused and unfused
results must be bit-identical."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine.nn import FullBinConv2d, FullBinLinear, WeightBinConv2d  # noqa: E402

from conftest import (assert_close_to_torch, assert_same_run, load_fused_and_unfused,  # noqa: E402
                      randomize_bn)

RTOL = 2e-5


class Blocks(nn.Module):
    """A float stem + overlapping 3x3/2 max-pool, then residual blocks: a plain identity block
    (no ReLU after the add), a strided block whose downsample conv runs after its main path
    (so the downsample takes the main path as the residual), a block whose second conv has
    its own ReLU before the add, and a conv output read twice (not fusable)."""

    def __init__(self) -> None:
        super().__init__()
        c = 40
        self.stem = nn.Conv2d(3, c, 5, stride=2, padding=2)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.a1 = FullBinConv2d(c, c, 3, 1, 1)
        self.a2 = FullBinConv2d(c, c, 3, 1, 1, activation=None)
        self.b1 = FullBinConv2d(c, 2 * c, 3, 2, 1)
        self.b2 = FullBinConv2d(2 * c, 2 * c, 3, 1, 1, activation=None)
        self.down = FullBinConv2d(c, 2 * c, 1, 2, 0, activation=None)
        self.r1 = FullBinConv2d(2 * c, 2 * c, 3, 1, 1)  # ReLU before the add
        self.t1 = FullBinConv2d(2 * c, 2 * c, 1, 1, 0, activation=None)
        self.f1 = nn.Conv2d(2 * c, 2 * c, 3, padding=1)  # float conv: residual in the SGEMM store
        self.w1 = WeightBinConv2d(2 * c, 2 * c, 3, 1, 1, activation=None)  # WeightBin: LUT / SGEMM store
        self.head = FullBinLinear(2 * c, 10, activation=None)

    def forward(self, x):
        x = self.pool(F.relu(self.stem(x)))
        x = self.a2(self.a1(x)) + x
        x = F.relu(self.b2(self.b1(x)) + self.down(x))
        x = F.relu(self.r1(x) + x)
        t = self.t1(x)
        x = t + t * 0.5 + x
        x = F.relu(self.f1(x) + x)
        x = self.w1(x) + x
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class SharedResidual(nn.Module):
    """Residuals overwritten in place or not, on odd channels and stride 3: x is read again
    after the conv that adds it (so that sum must not overwrite it), the strided 3x3 conv's
    output dies at its add (the 1x1 stride-3 shortcut, which runs later, writes over it)."""

    def __init__(self) -> None:
        super().__init__()
        c = 37
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.a1 = FullBinConv2d(c, c, 3, 1, 1)
        self.a2 = FullBinConv2d(c, c, 3, 1, 1, activation=None)
        self.b1 = FullBinConv2d(c, c, 3, 3, 1, activation=None)
        self.down = FullBinConv2d(c, c, 1, 3, 0, activation=None)
        self.head = nn.Conv2d(c, 5, 1)

    def forward(self, x):
        x = F.relu(self.stem(x))
        y = self.a2(self.a1(x)) + x
        z = y + x * 0.25
        return self.head(F.relu(self.b1(z) + self.down(z)))


def test_in_place_only_where_the_residual_dies(tmp_path, monkeypatch, each_isa, rng) -> None:
    torch.manual_seed(10)
    model, fused, unfused = _export(SharedResidual(), (1, 3, 17, 20), tmp_path / "s.hbn", monkeypatch)
    assert sorted(fused.fused_layers.values()) == ["a2", "down"]
    assert fused._ex.in_place == ["down"]
    for batch in (1, 3):
        _check(model, fused, unfused, rng.standard_normal((batch, 3, 17, 20)).astype(np.float32))


class PoolToBits(nn.Module):
    """Float conv -> ceil-mode max-pool whose only consumer is binary: the fused pool writes
    the consumer's bits directly."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 24, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, 0, ceil_mode=True)
        self.b = FullBinConv2d(24, 16, 3, 1, 1)
        self.c = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.c(self.b(self.pool(self.stem(x))))


def _export(model: nn.Module, shape: tuple, path, monkeypatch):
    model = randomize_bn(model, seed=5)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    hbn_engine.export(model, x, str(path))
    fused, unfused = load_fused_and_unfused(path, monkeypatch)
    return model, fused, unfused


def _check(model: nn.Module, fused, unfused, x: np.ndarray) -> None:
    assert_close_to_torch(model, x, assert_same_run(fused, unfused, x), RTOL)


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    torch.manual_seed(8)
    mp = pytest.MonkeyPatch()
    try:
        yield _export(Blocks(), (2, 3, 29, 27), tmp_path_factory.mktemp("fuse") / "b.hbn", mp)
    finally:
        mp.undo()


def test_plan(blocks) -> None:
    _, fused, unfused = blocks
    assert unfused.fused_layers == {}
    f = fused.fused_layers
    assert f["pool"] == "stem"
    adds = {k: v for k, v in f.items() if k != "pool"}
    # a2 (+ identity), down (+ b2: the later conv takes the earlier as its shortcut), r1 (+x),
    # the float f1 and WeightBin w1; t is read twice, so `t + t * 0.5` stays unfused
    assert sorted(adds.values()) == ["a2", "down", "f1", "r1", "w1"]
    # the FullBin convs write the sum over their residual, which no later op reads (r1 reads
    # its own residual, before its output stage); the float convs' SGEMM stores do not claim it
    assert sorted(fused._ex.in_place) == ["a2", "down", "r1"] and unfused._ex.in_place == []
    # the fused adds still write their packed copies (now from the conv's pass)
    assert fused.packed_copy_layers == unfused.packed_copy_layers
    prof = fused.profile(np.zeros((1, 3, 29, 27), np.float32), repeats=1)
    steps = {s["name"]: s["seconds"] for s in prof}
    assert all(steps[k] == 0.0 for k in f)


@pytest.mark.parametrize("batch", [1, 3])
def test_blocks_exact_every_bconv_row(blocks, bconv_row, batch, rng) -> None:
    model, fused, unfused = blocks
    _check(model, fused, unfused, rng.standard_normal((batch, 3, 29, 27)).astype(np.float32))


def test_blocks_exact_every_isa(blocks, each_isa, rng) -> None:
    model, fused, unfused = blocks
    _check(model, fused, unfused, rng.standard_normal((2, 3, 29, 27)).astype(np.float32))


def test_bit_passing_off_fuses_too(blocks, tmp_path, rng) -> None:
    # the reference path of the bit-domain fusions keeps every value float; the conv-level
    # fusions still apply there and still match
    model, fused, _ = blocks
    x = rng.standard_normal((2, 3, 29, 27)).astype(np.float32)
    path = tmp_path / "b.hbn"
    hbn_engine.export(model, torch.from_numpy(x[:1]), str(path))
    m = hbn_engine.load(path, bit_passing=False)
    assert m.fused_layers == fused.fused_layers and m.packed_copy_layers == {}
    np.testing.assert_array_equal(m.run(x).view(np.uint32), fused.run(x).view(np.uint32))


def test_pool_writes_bits(tmp_path, monkeypatch, each_isa, rng) -> None:
    torch.manual_seed(9)
    model, fused, unfused = _export(PoolToBits(), (2, 3, 20, 17), tmp_path / "p.hbn", monkeypatch)
    assert fused.fused_layers == {"pool": "stem"} and "pool" in fused.bit_passing_layers
    for batch in (1, 2):
        _check(model, fused, unfused, rng.standard_normal((batch, 3, 20, 17)).astype(np.float32))


@pytest.mark.parametrize("value", ["", "0"])
def test_env_values_that_keep_fusion(blocks, monkeypatch, tmp_path, value) -> None:
    monkeypatch.setenv("HBN_NO_FUSE", value)
    model, fused, _ = blocks
    path = tmp_path / "b.hbn"
    hbn_engine.export(model, torch.zeros(1, 3, 29, 27), str(path))
    assert hbn_engine.load(path).fused_layers == fused.fused_layers


class Q8Stem(nn.Module):
    """A ResNet-like stem that int8 edges lower to conv_q8 (7x7/2 conv, ReLU, overlapping 3x3/2
    max-pool), the pooled value read by a binary block and its residual add (so it stays float),
    then a linear head. With `stem` given (a layer with its own activation) it replaces the
    conv and ReLU."""

    def __init__(self, stem: nn.Module | None = None) -> None:
        super().__init__()
        self.relu = stem is None
        self.stem = nn.Conv2d(3, 40, 7, stride=2, padding=3) if stem is None else stem
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.b = FullBinConv2d(40, 40, 3, 1, 1)
        self.head = nn.Linear(40, 5)

    def forward(self, x):
        x = self.stem(x)
        x = self.pool(F.relu(x) if self.relu else x)
        x = self.b(x) + x
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def test_conv_q8_pool_fused(tmp_path, monkeypatch, each_isa, rng) -> None:
    # conv_q8 -> max-pool runs on conv_q8's finished row bands, bit-identical to the unfused
    # executor, on every ISA path: direct-path bands (avx512vnni, avxvnni, scalar) and im2col
    # blocks (avx2, which has no direct tile)
    torch.manual_seed(11)
    model = randomize_bn(Q8Stem(), seed=5)
    shape = (1, 3, 37, 45)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    p = tmp_path / "q.hbn"
    hbn_engine.export(model, x, str(p), edges="int8", calibration=torch.randn(4, 3, 37, 45))
    _check_stem_pool_fused(p, "int8", shape, (1, 3), monkeypatch, rng)


def _check_stem_pool_fused(p, stem_kind: str, shape, batches, monkeypatch, rng) -> None:
    """The file's max-pool "pool" runs on the bands of conv "stem" (of kind stem_kind), with
    outputs bit-identical to HBN_NO_FUSE=1 at every batch, on 1 and 2 threads."""
    fused, unfused = load_fused_and_unfused(p, monkeypatch)
    assert fused.fused_layers["pool"] == "stem" and unfused.fused_layers == {}
    assert dict(fused.layers)["stem"] == stem_kind
    for batch in batches:
        assert_same_run(fused, unfused, rng.standard_normal((batch, *shape[1:])).astype(np.float32))


def test_conv_wbin_q8_pool_fused(tmp_path, monkeypatch, each_isa, rng) -> None:
    # conv_wbin_q8 shares conv_q8's run (ops/conv_q8_base.h): its max-pool fuses the same way,
    # bit-identical to the unfused executor on every ISA path
    torch.manual_seed(12)
    # A WeightBin first conv, which wbin="int8" lowers to conv_wbin_q8
    model = randomize_bn(Q8Stem(WeightBinConv2d(3, 40, 7, stride=2, padding=3)), seed=6)
    shape = (1, 3, 29, 35)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(4))
    p = tmp_path / "w.hbn"
    hbn_engine.export(model, x, str(p), wbin="int8", calibration=torch.randn(4, 3, 29, 35))
    _check_stem_pool_fused(p, "wbin_int8", shape, (1, 2), monkeypatch, rng)