"""Shared fixtures: ISA iteration and reproducible models with non-trivial BatchNorm state."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Callable, Optional

import numpy as np
import pytest

import hbn_engine


@pytest.fixture(params=hbn_engine.supported_isas())
def each_isa(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test once per kernel path this CPU supports (forced), then restores dispatch."""
    hbn_engine.set_isa(request.param)
    try:
        yield request.param
    finally:
        hbn_engine.reset_isa()


@pytest.fixture(params=[r["name"] for r in hbn_engine.kernel_tables()["bconv"] if r["supported"]])
def bconv_row(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every supported row of the bconv kernel table (AVX2 twice: its nibble-LUT and
    scalar-popcnt formulations), each forced in turn."""
    from hbn_engine import _core

    name: str = request.param
    _core.force_kernel("bconv", name)
    try:
        yield name
    finally:
        _core.force_kernel("bconv", None)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    # The suite runs on a shared 2-core machine: one intra-op thread avoids oversubscription
    # (4x faster wall time under load) and changes no result checked here. torch is imported
    # here, not at the top: the runtime tests run without it.
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture
def restore_isa() -> Iterator[None]:
    """For tests that call hbn_engine.set_isa themselves."""
    try:
        yield
    finally:
        hbn_engine.reset_isa()


def randomize_bn(model: "torch.nn.Module", seed: int = 0,  # noqa: F821
                 calib: "Optional[torch.Tensor]" = None) -> "torch.nn.Module":  # noqa: F821
    """Give every BatchNorm non-trivial eval statistics and affine parameters (about a fifth
    of the gammas negative, so the exporter's sign flips are exercised). Returns the model in
    eval mode.

    Without ``calib`` the running statistics are simply random. With a calibration batch they
    are first set to that batch's statistics (one train-mode pass, momentum 1) and then
    perturbed, so a deep random network keeps informative activations instead of collapsing
    to a constant output (which would make top-1 comparisons meaningless).
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules()
           if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    with torch.no_grad():
        for m in bns:
            if m.weight is not None:
                n = m.num_features
                sign = torch.where(torch.rand(n, generator=g) < 0.2, -1.0, 1.0)
                m.weight.copy_(sign * (torch.rand(n, generator=g) + 0.5))
                m.bias.copy_(torch.rand(n, generator=g) * 0.6 - 0.3)
        if calib is not None:
            momenta = [m.momentum for m in bns]
            for m in bns:
                m.reset_running_stats()
                m.momentum = 1.0
            model.train()
            for m in model.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.eval()
            model(calib)
            for m, mom in zip(bns, momenta):
                m.momentum = mom
        for m in bns:
            n = m.num_features
            std = (m.running_var + m.eps).sqrt() if calib is not None else torch.ones(n)
            if calib is None:
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
            m.running_mean.add_(0.2 * std * (torch.rand(n, generator=g) - 0.5))
            m.running_var.mul_(torch.rand(n, generator=g) * 0.8 + 0.7)
    return model.eval()


def load_fused_and_unfused(path, monkeypatch: pytest.MonkeyPatch):
    """The model at path loaded twice: as the engine runs it, and with the executor's fuse plan
    off (HBN_NO_FUSE=1 at load), the reference every fusion must match bit for bit."""
    fused = hbn_engine.load(path)
    monkeypatch.setenv("HBN_NO_FUSE", "1")
    unfused = hbn_engine.load(path)
    monkeypatch.delenv("HBN_NO_FUSE")
    return fused, unfused

def assert_same_run(m, ref, x: np.ndarray) -> np.ndarray:
    """m.run(x) is bit-identical to ref.run(x) (the same model loaded another way: unfused,
    without bit passing), and to itself on 2 threads (row blocks and bands split across
    threads must give the same floats). Returns m's output."""
    y = m.run(x)
    np.testing.assert_array_equal(y.view(np.uint32), ref.run(x).view(np.uint32))
    m.num_threads = 2
    try:
        np.testing.assert_array_equal(m.run(x).view(np.uint32), y.view(np.uint32))
    finally:
        m.num_threads = 1
    return y


def assert_close_to_torch(model: "torch.nn.Module", x: np.ndarray, y: np.ndarray,  # noqa: F821
                          rtol: float) -> None:
    """y is PyTorch eval's output for x within rtol of its largest magnitude."""
    import torch

    with torch.no_grad():
        want = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    np.testing.assert_allclose(y, want, rtol=rtol, atol=rtol * np.abs(want).max())


@pytest.fixture
def bn_randomizer() -> Callable:
    return randomize_bn


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run tests marked slow (full-size models under every ISA)")


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    # The default run stays fast; `--runslow` or an explicit `-m slow` selects the slow tests.
    if config.getoption("--runslow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
