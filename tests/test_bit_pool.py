"""Max-pool in the bit domain between binary convolutions: producers threshold for the consumer
after the pool, the pool ANDs / ORs packed bits (sign(bn(max u)) is the AND of the bits for a
positive BN scale and the OR for a negative one), and the consumer reads bits. Checked exactly
against the float path (``bit_passing=False``: the pool runs on floats and every binary conv
packs its own input) under every kernel path, on concats with partial words, ceil-mode and
padded windows, strides 1-3, kernels 2 and 3, negative and zero BN scales, and several
consumers (one rule: bits; two rules or a float reader: the float pool with packed copies)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine.nn import FullBinConv2d  # noqa: E402

from conftest import assert_close_to_torch, assert_same_run, randomize_bn  # noqa: E402

RTOL = 2e-5
POOLS = [  # (kernel, stride, padding, ceil_mode)
    (2, 2, 0, False), (3, 2, 1, True), (3, 1, 1, False), (2, 1, 0, True), (3, 2, 0, True), (3, 3, 1, True),
]


class CatPoolBin(nn.Module):
    """Two binary convs (ReLU) -> concat -> max-pool -> one or two binary consumers, like a
    SqueezeNet fire module's outputs before the next fire's squeeze."""

    def __init__(self, pool: tuple, c1: int = 64, c2: int = 37, consumers: int = 1) -> None:
        super().__init__()
        k, s, p, ceil = pool
        self.a = FullBinConv2d(5, c1, 3, 1, 1)
        self.b = FullBinConv2d(5, c2, 1, 1, 0)
        self.p = nn.MaxPool2d(k, s, p, ceil_mode=ceil)
        self.d1 = FullBinConv2d(c1 + c2, 8, 3, 1, 1, activation=None)
        self.d2 = FullBinConv2d(c1 + c2, 8, 1, 1, 0, activation=None) if consumers == 2 else None

    def forward(self, x):
        y = self.p(torch.cat([self.a(x), self.b(x)], 1))
        return self.d1(y) if self.d2 is None else self.d1(y) + self.d2(y)


def _export(model: nn.Module, tmp_path, shared: bool = True):
    model = randomize_bn(model, seed=11)
    with torch.no_grad():
        for d in (model.d1, model.d2):
            if d is None:
                continue
            d.bn.weight[::7] = 0.0  # constant channels: threshold +-inf
        if model.d2 is not None and shared:
            model.d2.bn.load_state_dict(model.d1.bn.state_dict())
    x = torch.randn(2, 5, 11, 13, generator=torch.Generator().manual_seed(3))
    path = tmp_path / "m.hbn"
    hbn_engine.export(model, x, str(path))
    return model, hbn_engine.load(path), hbn_engine.load(path, bit_passing=False)


def _check(model: nn.Module, m, ref, rng) -> None:
    for batch in (1, 2):
        x = rng.standard_normal((batch, 5, 11, 13)).astype(np.float32)
        assert_close_to_torch(model, x, assert_same_run(m, ref, x), RTOL)


@pytest.mark.parametrize("pool", POOLS)
def test_pool_between_binary_convs_runs_on_bits(tmp_path, each_isa, pool, rng) -> None:
    torch.manual_seed(1)
    model, m, ref = _export(CatPoolBin(pool), tmp_path)
    assert {"a", "b", "cat", "p"} <= set(m.bit_passing_layers)
    assert ref.bit_passing_layers == []
    _check(model, m, ref, rng)


@pytest.mark.parametrize("pool", POOLS[:3])
def test_two_consumers_with_one_rule_share_the_bits(tmp_path, each_isa, pool, rng) -> None:
    torch.manual_seed(2)
    model, m, ref = _export(CatPoolBin(pool, consumers=2), tmp_path, shared=True)
    assert {"a", "b", "cat", "p"} <= set(m.bit_passing_layers)
    assert m.packed_copy_layers == {}
    _check(model, m, ref, rng)


@pytest.mark.parametrize("pool", POOLS[:3])
def test_two_rules_keep_the_float_pool(tmp_path, each_isa, pool, rng) -> None:
    torch.manual_seed(3)
    model, m, ref = _export(CatPoolBin(pool, consumers=2), tmp_path, shared=False)
    assert "p" not in m.bit_passing_layers and "cat" not in m.bit_passing_layers
    assert m.packed_copy_layers == {"p": 2}  # the float pool packs one copy per rule
    _check(model, m, ref, rng)


def test_unaligned_concat_keeps_floats(tmp_path, each_isa, rng) -> None:
    torch.manual_seed(4)
    model, m, ref = _export(CatPoolBin(POOLS[1], c1=70, c2=30), tmp_path)
    # the first operand ends mid-word: the concat cannot join bit rows, so the pool reads the
    # concat's floats and packs its maxima for the consumer
    assert m.bit_passing_layers == ["p"]
    _check(model, m, ref, rng)
