"""A max-pool of a float concat pools each operand into its channel slice (the fuse plan's
concat -> max-pool: the concat is never stored), as in SqueezeNet Hybrid's fire4 / fire8 outputs
before pool4 / pool8. Exact against the unfused executor (HBN_NO_FUSE=1 at load) under every
kernel path, and against PyTorch; where the concat has another reader, or the pool writes bits
or packed copies for a binary consumer, nothing is fused."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine.nn import FullBinConv2d, WeightBinConv2d  # noqa: E402

from conftest import (assert_close_to_torch, assert_same_run, load_fused_and_unfused,  # noqa: E402
                      randomize_bn)

RTOL = 2e-5
POOLS = [(2, 2, 0, False), (3, 2, 1, True), (3, 1, 1, False), (3, 2, 0, True)]


class CatPool(nn.Module):
    """Float convs (37, 29 and 16 channels) -> concat -> max-pool -> a WeightBin consumer (float
    input); extra="reader": the concat is also read by a strided conv; extra="binary": the pool
    feeds a FullBin conv too."""

    def __init__(self, pool: tuple, extra: str = "") -> None:
        super().__init__()
        k, s, p, ceil = pool
        self.a = nn.Conv2d(4, 37, 3, 1, 1)
        self.b = nn.Conv2d(4, 29, 1)
        self.c = nn.Conv2d(4, 16, 3, 1, 1)
        self.p = nn.MaxPool2d(k, s, p, ceil_mode=ceil)
        self.d = WeightBinConv2d(82, 8, 3, 1, 1)
        self.e = FullBinConv2d(82, 8, 1, 1, 0) if extra == "binary" else None
        self.q = nn.Conv2d(82, 8, 3, 2, 1) if extra == "reader" else None  # POOLS[1]'s output size
        self.extra = extra

    def forward(self, x):
        y = torch.cat([F.relu(self.a(x)), F.relu(self.b(x)), F.relu(self.c(x))], 1)
        z = self.d(self.p(y))
        if self.q is not None:
            return z + self.q(y)
        if self.e is not None:
            z = z + self.e(self.p(y))
        return z


def _models(model: nn.Module, tmp_path, monkeypatch):
    model = randomize_bn(model, seed=8)
    x = torch.randn(2, 4, 11, 13, generator=torch.Generator().manual_seed(5))
    path = tmp_path / "m.hbn"
    hbn_engine.export(model, x, str(path))
    fused, unfused = load_fused_and_unfused(path, monkeypatch)
    return model, fused, unfused


def _check(model: nn.Module, fused, unfused, rng) -> None:
    for batch in (1, 2):
        x = rng.standard_normal((batch, 4, 11, 13)).astype(np.float32)
        assert_close_to_torch(model, x, assert_same_run(fused, unfused, x), RTOL)


@pytest.mark.parametrize("pool", POOLS)
def test_pool_reads_the_concat_operands(tmp_path, monkeypatch, each_isa, pool, rng) -> None:
    torch.manual_seed(1)
    model, fused, unfused = _models(CatPool(pool), tmp_path, monkeypatch)
    assert fused.fused_layers == {"cat": "p"} and unfused.fused_layers == {}
    profile = {r["name"]: r["seconds"] for r in fused.profile(np.zeros((1, 4, 11, 13), np.float32), repeats=1)}
    assert profile["cat"] == 0.0
    _check(model, fused, unfused, rng)


@pytest.mark.parametrize("extra", ["reader", "binary"])
def test_no_fusion_when_the_concat_or_pool_has_other_uses(tmp_path, monkeypatch, each_isa, extra, rng) -> None:
    torch.manual_seed(2)
    model, fused, unfused = _models(CatPool(POOLS[1], extra), tmp_path, monkeypatch)
    assert "cat" not in fused.fused_layers
    _check(model, fused, unfused, rng)
