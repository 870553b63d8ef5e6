"""Runtime ops and the Model API on small PyTorch models (every op the exporter lowers),
compared with the PyTorch eval forward under every kernel path; bad inputs raise cleanly."""
from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine.exporter import ExportError  # noqa: E402
from hbn_engine.nn import FullBinConv2d, FullBinLinear, WeightBinConv2d, WeightBinLinear  # noqa: E402

from conftest import randomize_bn  # noqa: E402

# Float layers accumulate in a different order than PyTorch: differences are round-off only.
RTOL = 2e-5


class OpZoo(nn.Module):
    """One model touching every lowered op and pattern: float conv+BN+ReLU, residual add,
    concat, every pooling flavour (ceil mode, count_include_pad=False, adaptive with uneven
    bins), LRN, standalone BN, functional relu/flatten/softmax, dropout."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 12, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(12)
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-2, beta=0.75, k=2.0)
        self.fb = FullBinConv2d(12, 12, 3, 1, 1, input_scale=True)
        self.wb = WeightBinConv2d(12, 12, 3, 1, 1, bias=True)
        self.side = nn.Conv2d(12, 8, 1)
        self.pool_ceil = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.avg = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
        self.bn_free = nn.BatchNorm2d(20)
        self.drop = nn.Dropout(0.5)
        self.ada = nn.AdaptiveAvgPool2d((3, 2))
        self.fc = nn.Linear(20 * 3 * 2, 16)
        self.fc_bn = nn.BatchNorm1d(16)
        self.fbl = FullBinLinear(16, 10, activation=None)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.lrn(x)
        y = self.fb(x)
        y = self.wb(y) + x
        y = torch.relu(y)
        z = torch.cat([y, self.side(y)], 1)
        z = self.pool_ceil(z)
        z = self.avg(z)
        z = self.bn_free(z)
        z = self.drop(z)
        z = self.ada(z)
        z = torch.flatten(z, 1)
        z = F.relu(self.fc_bn(self.fc(z)))
        return F.softmax(self.fbl(z), dim=1)


class BinChain(nn.Module):
    """Consecutive FullBinConvs (packed bits passed between them) ending in a spatial output."""

    def __init__(self) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(2, 65, 3, padding=1)
        self.b1 = FullBinConv2d(65, 130, 3, 1, 1)
        self.b2 = FullBinConv2d(130, 64, 3, 2, 1, activation=None)
        self.b3 = FullBinConv2d(64, 64, 1)
        self.w4 = WeightBinConv2d(64, 5, 3, 1, 1, bn=False, activation=None)

    def forward(self, x):
        return self.w4(self.b3(self.b2(self.b1(self.c0(x)))))


class BinPoolChain(nn.Module):
    """FullBinConvs joined by max-pools (padded, ceil mode, with and without a ReLU before
    the pool), so sign bits are pooled in the bit domain; a float conv's pool packs its output
    for the binary layer; the last pool feeds a float op."""

    def __init__(self) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(2, 65, 3, padding=1)
        self.p0 = nn.MaxPool2d(3, 1, padding=1)
        self.b1 = FullBinConv2d(65, 130, 3, 1, 1)
        self.p1 = nn.MaxPool2d(3, 2, padding=1)
        self.b2 = FullBinConv2d(130, 70, 3, 1, 1, activation=None)
        self.p2 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.b3 = FullBinConv2d(70, 64, 1)
        self.p3 = nn.MaxPool2d(2, 1, padding=1)
        self.w4 = WeightBinConv2d(64, 5, 3, 1, 1, bn=False, activation=None)

    def forward(self, x):
        x = self.p1(self.b1(self.p0(self.c0(x))))
        x = self.p2(self.b2(x))
        return self.w4(self.p3(self.b3(x)))


class BinConcat(nn.Module):
    """Fire-style branches of FullBinConvs concatenated for a binary consumer: word-aligned
    (64 + 40 channels, through a max-pool) and misaligned (40 + 64, stays float)."""

    def __init__(self) -> None:
        super().__init__()
        self.c0 = nn.Conv2d(2, 16, 3, padding=1)
        self.e1 = FullBinConv2d(16, 64, 1)
        self.e2 = FullBinConv2d(16, 40, 3, 1, 1, activation=None)
        self.p = nn.MaxPool2d(3, 2, padding=1, ceil_mode=True)
        self.s = FullBinConv2d(104, 48, 1)
        self.f1 = FullBinConv2d(48, 40, 1)
        self.f2 = FullBinConv2d(48, 64, 3, 1, 1)
        self.out = FullBinConv2d(104, 8, 1, activation=None)

    def forward(self, x):
        x = self.c0(x)
        x = self.s(self.p(torch.cat([self.e1(x), self.e2(x)], 1)))
        return self.out(torch.cat([self.f1(x), self.f2(x)], 1))


def _export(model: nn.Module, shape: tuple, path) -> tuple:
    model = randomize_bn(model, seed=3)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(5))
    hbn_engine.export(model, x, str(path))
    return model, hbn_engine.load(path)


@pytest.fixture(scope="module")
def opzoo(tmp_path_factory):
    torch.manual_seed(0)
    return _export(OpZoo(), (2, 3, 13, 11), tmp_path_factory.mktemp("m") / "opzoo.hbn")


@pytest.fixture(scope="module")
def binchain(tmp_path_factory):
    torch.manual_seed(1)
    return _export(BinChain(), (2, 2, 9, 9), tmp_path_factory.mktemp("m") / "chain.hbn")


def _compare(model: nn.Module, m, x: np.ndarray) -> None:
    with torch.no_grad():
        ref = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    y = m.run(x)
    assert y.shape == ref.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=RTOL, atol=RTOL * np.abs(ref).max())


@pytest.mark.parametrize("batch", [1, 5])
def test_opzoo_matches_torch(opzoo, each_isa, batch, rng) -> None:
    model, m = opzoo
    _compare(model, m, rng.standard_normal((batch, 3, 13, 11)).astype(np.float32))


@pytest.mark.parametrize("batch", [1, 3])
def test_binary_chain_passes_bits(binchain, each_isa, batch, rng) -> None:
    model, m = binchain
    assert m.bit_passing_layers == ["b1", "b2"]
    assert m.output_shape(batch) == (batch, 5, 5, 5)
    _compare(model, m, rng.standard_normal((batch, 2, 9, 9)).astype(np.float32))


@pytest.mark.parametrize("batch", [1, 3])
def test_max_pool_in_bit_domain_is_exact(tmp_path, each_isa, batch, rng) -> None:
    torch.manual_seed(2)
    model, m = _export(BinPoolChain(), (2, 2, 11, 10), tmp_path / "pool.hbn")
    assert m.bit_passing_layers == ["p0", "b1", "p1", "b2", "p2"]
    ref = hbn_engine.load(tmp_path / "pool.hbn", bit_passing=False)
    assert ref.bit_passing_layers == []
    # both signs of gamma (AND and OR pooling) occur in the pooled layers' thresholds
    flips = [layer.bn.weight.detach().numpy() < 0 for layer in (model.b2, model.b3)]
    assert all(f.any() and not f.all() for f in flips)
    x = rng.standard_normal((batch, 2, 11, 10)).astype(np.float32)
    y = m.run(x)
    # bit-domain pooling decides every sign as the float max-pool + threshold would
    np.testing.assert_array_equal(y, ref.run(x))
    _compare(model, m, x)


@pytest.mark.parametrize("batch", [1, 2])
def test_concat_in_bit_domain_is_exact(tmp_path, each_isa, batch, rng) -> None:
    torch.manual_seed(4)
    model, m = _export(BinConcat(), (2, 2, 9, 11), tmp_path / "cat.hbn")
    bits = m.bit_passing_layers
    kinds = dict(m.layers)
    assert {"e1", "e2", "p"} <= set(bits) and not {"s", "f1", "f2"} & set(bits)
    assert sum(kinds[b] == "concat" for b in bits) == 1
    ref = hbn_engine.load(tmp_path / "cat.hbn", bit_passing=False)
    x = rng.standard_normal((batch, 2, 9, 11)).astype(np.float32)
    y = m.run(x)
    np.testing.assert_array_equal(y, ref.run(x))
    _compare(model, m, x)


@pytest.mark.parametrize("batch", [1, 4])
def test_profile(opzoo, batch, rng) -> None:
    _, m = opzoo
    x = rng.standard_normal((batch, 3, 13, 11)).astype(np.float32)
    steps = m.profile(x, repeats=5)
    assert steps[0]["name"] == "<input>" and steps[-1]["name"] == "<output>"
    ops = steps[1:-1]
    assert [(r["name"], r["kind"] if r["kind"] != "other" else r["op"]) for r in ops] == m.layers
    assert {r["kind"] for r in ops} == {"fprec", "wbin", "fbin", "other"}
    # ops the fuse plan computes inside another op's step (a conv's residual add or max-pool)
    # read 0; every other step takes time
    fused = m.fused_layers
    assert fused and all(r["seconds"] == 0 for r in ops if r["name"] in fused)
    assert all(r["seconds"] > 0 for r in steps if r["name"] not in fused) and steps.total > 0
    assert ops[-1]["shape"] == m.output_shape(batch) == steps[-1]["shape"]
    assert all(r["shape"][0] == batch for r in steps)
    assert dict((r["name"], r["op"]) for r in ops)["pool_ceil"] == "max_pool"
    # each pass is exactly its steps back to back; the sum of per-step medians can still
    # drift from the median pass when other processes preempt different steps in different
    # passes, hence the margin (a step timed twice or a pass timed short would exceed it)
    assert sum(r["seconds"] for r in steps) <= 1.5 * steps.total
    with pytest.raises(ValueError):
        m.profile(x, repeats=0)
    with pytest.raises(TypeError):
        m.profile(x.astype(np.float64))


def test_model_api(opzoo) -> None:
    _, m = opzoo
    assert m.input_shape == (3, 13, 11)
    kinds = dict(m.layers)
    assert kinds["conv1"] == "fprec" and kinds["fb"] == "fbin" and kinds["wb"] == "wbin"
    assert kinds["fbl"] == "fbin" and kinds["fc"] == "fprec" and kinds["lrn"] == "lrn"
    # BN after conv and ReLUs were fused away; the free-standing BN stays an op
    assert "bn1" not in kinds and "fc_bn" not in kinds and kinds["bn_free"] == "batchnorm"
    assert m.metadata["model_name"] == "OpZoo" and m.metadata["input_shape"] == [3, 13, 11]
    assert m.param_bytes > 0
    m.num_threads = 2
    assert m.num_threads == 2
    with pytest.raises(ValueError):
        m.num_threads = 0
    m.num_threads = 1


def test_threads_and_layouts(opzoo, rng) -> None:
    model, m = opzoo
    x = rng.standard_normal((4, 3, 13, 11)).astype(np.float32)
    base = m.run(x)
    m.num_threads = 2
    try:
        np.testing.assert_array_equal(m.run(x), base)
    finally:
        m.num_threads = 1
    # non-contiguous views: channels-last memory, a strided slice, negative strides
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(m.run(nhwc), base)
    big = np.zeros((8, 3, 13, 11), np.float32)
    big[::2] = x
    np.testing.assert_array_equal(m.run(big[::2]), base)
    np.testing.assert_array_equal(m.run(x[::-1].copy()[::-1]), base)
    _compare(model, m, x[:, :, ::-1, :])


def test_buffers_reused_across_batches(opzoo, rng) -> None:
    _, m = opzoo
    x = rng.standard_normal((6, 3, 13, 11)).astype(np.float32)
    full = m.run(x)
    # batch-size changes re-plan; results per image do not depend on the batch
    for i in range(6):
        np.testing.assert_allclose(m.run(x[i:i + 1]), full[i:i + 1], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(m.run(x), full)
    planned = m._ex.planned_bytes(6)
    assert m._ex.planned_bytes(6) == planned


def test_concurrent_runs_are_safe(opzoo, rng) -> None:
    _, m = opzoo
    xs = [rng.standard_normal((2, 3, 13, 11)).astype(np.float32) for _ in range(4)]
    want = [m.run(x) for x in xs]
    got: list = [None] * 4

    def work(i: int) -> None:
        for _ in range(5):
            got[i] = m.run(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_bad_inputs(opzoo) -> None:
    _, m = opzoo
    good = np.zeros((2, 3, 13, 11), np.float32)
    with pytest.raises(TypeError, match="float32"):
        m.run(good.astype(np.float64))
    with pytest.raises(TypeError, match="float32"):
        m.run(good.astype(np.int32))
    with pytest.raises(TypeError, match="ndarray"):
        m.run(good.tolist())
    with pytest.raises(TypeError, match="ndarray"):
        m.run(torch.zeros(2, 3, 13, 11))
    with pytest.raises(ValueError, match="4-D"):
        m.run(good[0])
    with pytest.raises(ValueError, match="4-D"):
        m.run(good[None])
    with pytest.raises(ValueError, match="does not match"):
        m.run(np.zeros((2, 3, 11, 13), np.float32))
    with pytest.raises(ValueError, match="does not match"):
        m.run(np.zeros((2, 1, 13, 11), np.float32))
    with pytest.raises(ValueError, match="empty"):
        m.run(np.zeros((0, 3, 13, 11), np.float32))
    for bad in (np.nan, np.inf, -np.inf):
        x = good.copy()
        x[1, 2, 3, 4] = bad
        with pytest.raises(ValueError, match="NaN or infinity"):
            m.run(x)
        with pytest.raises(ValueError, match="NaN or infinity"):
            m.profile(x, repeats=1)
        # strided views are scanned element by element, not as one flat run
        wide = np.zeros((2, 3, 13, 22), np.float32)
        wide[..., ::2] = good
        wide[1, 2, 3, 9] = bad  # outside the view: the run must not see it
        np.testing.assert_array_equal(m.run(wide[..., ::2]), m.run(good))
        wide[1, 2, 3, 8] = bad
        with pytest.raises(ValueError, match="NaN or infinity"):
            m.run(wide[..., ::2])
    # the native entry point itself refuses what it cannot read
    with pytest.raises(TypeError):
        m._ex.run(good.astype(np.float64))
    with pytest.raises(ValueError):
        m._ex.run(good[0])


def test_export_errors_name_the_module(tmp_path) -> None:
    class Grouped(nn.Module):  # a dilated conv: grouped ones export now (conv_grouped_f32)
        def __init__(self):
            super().__init__()
            self.g = nn.Conv2d(4, 4, 3, dilation=2)

        def forward(self, x):
            return self.g(x)

    class Weird(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.GELU()

        def forward(self, x):
            return self.act(x)

    class Func(nn.Module):
        def forward(self, x):
            return torch.tanh(x)

    x = torch.randn(1, 4, 6, 6)
    with pytest.raises(ExportError, match="'g'|g \\(Conv2d\\).*dilation"):
        hbn_engine.export(Grouped(), x, str(tmp_path / "a.hbn"))
    with pytest.raises(ExportError, match="act.*GELU"):
        hbn_engine.export(Weird(), x, str(tmp_path / "b.hbn"))
    with pytest.raises(ExportError, match="tanh"):
        hbn_engine.export(Func(), x, str(tmp_path / "c.hbn"))


def test_bn_sign_fold_edge_cases(tmp_path, rng) -> None:
    """gamma < 0 (flip), gamma == 0 (constant channel either sign) and inputs exactly at the
    threshold (sign(0) = +1) give PyTorch's bits."""
    layer = FullBinConv2d(6, 4, 1, activation=None, bias=False)
    with torch.no_grad():
        layer.bn.running_mean.copy_(torch.tensor([0.5, -1.0, 0.0, 2.0, 0.25, 0.0]))
        layer.bn.running_var.copy_(torch.tensor([1.0, 4.0, 1.0, 1.0, 1.0, 1.0]) - layer.bn.eps)
        layer.bn.weight.copy_(torch.tensor([1.0, -2.0, 0.0, 0.0, 1.0, -1.0]))
        layer.bn.bias.copy_(torch.tensor([0.0, 0.0, 0.5, -0.5, 0.0, 0.0]))
    layer.eval()
    x = torch.from_numpy(rng.standard_normal((3, 6, 4, 4)).astype(np.float32))
    x[0, 0] = 0.5   # exactly at channel 0's threshold -> bn(x) == 0 -> +1
    x[0, 1] = -1.0  # exactly at channel 1's threshold
    x[0, 4] = 0.25
    hbn_engine.export(layer, x, str(tmp_path / "e.hbn"))
    m = hbn_engine.load(tmp_path / "e.hbn")
    with torch.no_grad():
        ref = layer(x).numpy()
    np.testing.assert_array_equal(m.run(x.numpy()), ref)


class FunctionalStyle(nn.Module):
    """Idioms user models write: x.view(x.size(0), -1), in-place residual +=, torch.add,
    mean over H and W, F.max_pool2d / F.avg_pool2d / F.adaptive_avg_pool2d, a bare
    WeightBinConv as the output layer (spatial output returned NCHW)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.wb = WeightBinConv2d(8, 8, 3, 1, 1, activation=None)
        self.fb = FullBinConv2d(8, 16, 3, 2, 1)
        self.head = WeightBinLinear(16, 6, activation=None)
        self.head2 = nn.Linear(16 * 2 * 2, 6)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2, ceil_mode=True)
        y = self.wb(x)
        y += x
        y = torch.add(y, x)
        z = self.fb(y)
        a = self.head(z.mean([2, 3]))
        b = F.adaptive_avg_pool2d(F.avg_pool2d(z, 3, 1, 1), 2)
        b = self.head2(b.view(b.size(0), -1))
        return torch.cat([a, b], dim=1)


def test_functional_idioms(tmp_path, rng, each_isa) -> None:
    torch.manual_seed(2)
    model, m = _export(FunctionalStyle(), (2, 3, 10, 9), tmp_path / "f.hbn")
    kinds = [k for _, k in m.layers]
    assert kinds.count("add") == 2 and "flatten" in kinds and "adaptive_avg_pool" in kinds
    _compare(model, m, rng.standard_normal((3, 3, 10, 9)).astype(np.float32))


def test_spatial_output_is_nchw(tmp_path, rng) -> None:
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.BatchNorm2d(5), nn.ReLU(),
                          nn.MaxPool2d(2))
    model, m = _export(model, (1, 3, 8, 6), tmp_path / "s.hbn")
    assert m.layers == [("0", "fprec"), ("3", "max_pool")]  # BN and ReLU folded into the conv
    x = rng.standard_normal((2, 3, 8, 6)).astype(np.float32)
    assert m.run(x).shape == (2, 5, 4, 3)
    _compare(model, m, x)
