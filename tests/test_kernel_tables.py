"""The kernel tables (csrc/hbn/kernel_table.h) drive the ISA test loop: every supported row of
every family is forced in turn, checked against its scalar reference, and must record that it
was dispatched. A family without a check here fails test_every_family_has_a_check, so a new
family or row cannot go untested."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

import hbn_engine
from hbn_engine import _core

TABLES = hbn_engine.kernel_tables()
ROWS = [(fam, r["name"]) for fam, rows in TABLES.items() for r in rows if r["supported"]]


def check_bconv(row: str) -> None:
    rng = np.random.default_rng(0)
    xp = _core.pack_rows(rng.standard_normal((2, 7, 6, 70), dtype=np.float32))
    wp = _core.pack_weights_oihw(rng.standard_normal((40, 70, 3, 3), dtype=np.float32))
    ref = _core.bconv2d_reference(xp, wp, 1, 1, in_channels=70)
    np.testing.assert_array_equal(_core.BConv2d(wp, 70, 1, 1).run(xp), ref.astype(np.float32))


def check_bitpack(row: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((33, 150), dtype=np.float32)
    thr = rng.standard_normal(150).astype(np.float32)
    flip = (rng.random(150) < 0.5).astype(np.uint8)
    np.testing.assert_array_equal(_core.pack_rows(x, thr, flip), _core.pack_rows_reference(x, thr, flip))


def check_sgemm(row: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (1, 9, 8, 20)).astype(np.float32)
    w = rng.uniform(-1, 1, (35, 20, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(_core.Conv2dF32(w, 1, 1).run(x), _core.conv2d_f32_reference(x, w, 1, 1),
                               rtol=0, atol=1e-4)


def check_wbconv_lut(row: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (1, 9, 8, 20)).astype(np.float32)
    bits = _core.pack_weights_oihw(rng.uniform(-1, 1, (35, 20, 3, 3)).astype(np.float32))
    got = _core.WBConv2d(bits, 20, 1, 1, strategy="lut").run(x)
    np.testing.assert_allclose(got, _core.wbconv2d_reference(x, bits, 1, 1), rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def ops_model(tmp_path_factory) -> bytes:
    """A model whose run goes through every runtime op family: the 3-channel NCHW input
    layout, a max-pool fused with the packing for a binary consumer, a residual add, and the
    NHWC -> NCHW output transpose."""
    torch = pytest.importorskip("torch")
    from hbn_engine import nn as hnn

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
            self.pool = torch.nn.MaxPool2d(2)
            self.bconv = hnn.FullBinConv2d(16, 16, 3, padding=1)

        def forward(self, x):
            y = self.pool(torch.relu(self.conv(x)))
            return self.bconv(y) + y

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tables") / "ops.hbn"
    hbn_engine.export(Net().eval(), torch.randn(1, 3, 12, 10), str(path))
    return path.read_bytes()


def run_ops_model(model: bytes) -> np.ndarray:
    x = np.random.default_rng(4).standard_normal((2, 3, 12, 10)).astype(np.float32)
    return hbn_engine.load(model).run(x)


def check_runtime_rows(family: str) -> Callable[[str], None]:
    def check(row: str, model: bytes) -> None:
        got = run_ops_model(model)
        _core.force_kernel(family, "scalar")
        want = run_ops_model(model)
        _core.force_kernel(family, row)
        np.testing.assert_array_equal(got, want)  # every row is exact
    return check


def check_qgemm(row: str) -> None:
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parent))
    from q8_reference import conv_q8, q8_file

    rng = np.random.default_rng(5)
    w = rng.integers(-127, 128, (35, 5, 3, 3)).astype(np.int8)
    w_scale = rng.uniform(0.001, 0.01, 35).astype(np.float32)
    attrs = {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1, "in_scale": 0.02, "in_zero": 77}
    x = rng.uniform(-2, 2, (2, 5, 9, 8)).astype(np.float32)
    got = hbn_engine.load(q8_file(w, w_scale, (5, 9, 8), attrs)).run(x)
    np.testing.assert_array_equal(got, conv_q8(x, w, w_scale, 0.02, 77, 1, 1))  # every row is exact


def check_peak_binary(row: str) -> None:
    assert _core.peak_binary_variant(row, 0.005) > 0


def check_peak_fma(row: str) -> None:
    assert row in hbn_engine.isa_paths(), "peak_fma rows are named after the paths they measure"
    assert _core.peak_fma_macs(row, 0.005) > 0


def check_peak_int8(row: str) -> None:
    assert row in hbn_engine.isa_paths(), "peak_int8 rows are named after the paths they measure"
    assert _core.peak_int8_macs(row, 0.005) > 0


CHECKS: dict[str, Callable[..., None]] = {
    "bconv": check_bconv,
    "bitpack": check_bitpack,
    "sgemm": check_sgemm,
    "wbconv_lut": check_wbconv_lut,
    "ops": check_runtime_rows("ops"),
    "transpose": check_runtime_rows("transpose"),
    "peak_binary": check_peak_binary,
    "peak_fma": check_peak_fma,
    "qgemm": check_qgemm,
    "peak_int8": check_peak_int8,
}
NEEDS_MODEL = {"ops", "transpose"}


def test_every_family_has_a_check() -> None:
    assert set(TABLES) == set(CHECKS), "add a check for every kernel family (and only for those)"


@pytest.fixture
def forced(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    family, row = request.param
    _core.clear_kernel_exercised()
    _core.force_kernel(family, row)
    try:
        yield family, row
    finally:
        _core.force_kernel(family, None)


@pytest.mark.parametrize("forced", ROWS, ids=[f"{f}-{r}" for f, r in ROWS], indirect=True)
def test_row_matches_reference_and_runs(forced: tuple[str, str], request: pytest.FixtureRequest) -> None:
    family, row = forced
    if family in NEEDS_MODEL:
        CHECKS[family](row, request.getfixturevalue("ops_model"))
    else:
        CHECKS[family](row)
    if not family.startswith("peak_"):
        # The peak loops are measured row by row, not dispatched; every other row must have run.
        assert _core.kernel_exercised(family, row), f"{family}/{row} was forced but never dispatched"


def test_force_rejects_unknown_rows() -> None:
    with pytest.raises(ValueError, match="no row"):
        _core.force_kernel("bconv", "sse9")
    with pytest.raises(ValueError, match="unknown kernel family"):
        _core.force_kernel("nope", None)


def test_selection_follows_the_forced_path(restore_isa: None) -> None:
    """Forcing a path leaves its features active: each family takes its best row among them
    (e.g. on AVX-512 hardware forced to avx2, transpose keeps its avx2 row)."""
    for path in hbn_engine.supported_isas():
        hbn_engine.set_isa(path)
        active = set(_core.active_features())
        for family, rows in hbn_engine.kernel_tables().items():
            want = next((r["name"] for r in rows if set(r["requires"]) <= active), None)
            got = next((r["name"] for r in rows if r["selected"]), None)
            assert got == want, (path, family)
