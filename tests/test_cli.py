"""The ``hbn`` command line end to end (small configurations; no speed is asserted)."""
from __future__ import annotations

import json

import pytest

import hbn_engine
from hbn_engine.cli import main

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def small_hbn(tmp_path_factory):
    import hbn_engine
    from hbn_engine import nn as hnn

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
        hnn.FullBinConv2d(16, 32, 3, padding=1), torch.nn.MaxPool2d(2),
        hnn.WeightBinConv2d(32, 8, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
    ).eval()
    path = tmp_path_factory.mktemp("cli") / "small.hbn"
    hbn_engine.export(net, torch.randn(1, 3, 12, 12), str(path))
    return path


def test_info(capsys) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "kernel path" in out
    tables = hbn_engine.kernel_tables()
    # Every family's table is listed with the row dispatch takes now marked.
    for family, rows in tables.items():
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(family + " "))
        for r in rows:
            assert r["name"] in line
        assert "*" + next(r["name"] for r in rows if r["selected"]) in line or not any(r["selected"] for r in rows)
    lut = any(r["selected"] for r in tables["wbconv_lut"])
    assert ("table lookups" in out) == lut and "decoded into FMAs" in out


def test_info_follows_a_forced_path(capsys, restore_isa: None) -> None:
    hbn_engine.set_isa("scalar")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "kernel path: scalar" in out and "table lookups" not in out
    assert "bconv/scalar" in out and "qgemm/scalar" in out


def test_inspect(small_hbn, capsys, tmp_path) -> None:
    assert main(["inspect", str(small_hbn)]) == 0
    out = capsys.readouterr().out
    assert "input=(3, 12, 12)" in out
    bad = tmp_path / "bad.hbn"
    bad.write_bytes(small_hbn.read_bytes()[:100])
    assert main(["inspect", str(bad)]) == 1
    assert "hbn inspect:" in capsys.readouterr().err


def test_profile(small_hbn, capsys) -> None:
    assert main(["profile", str(small_hbn), "--batch", "2", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "total" in out and "fbin" in out


def test_bench_quick_writes_report(tmp_path, capsys) -> None:
    out = tmp_path / "rep"
    rc = main(["bench", "--quick", "--models", "sketchanet", "--variants", "fprec,fbin",
               "--threads", "1", "--no-onnx", "--no-xnor", "--min-time", "0.01", "--out", str(out)])
    assert rc == 0
    text = (out / "report.md").read_text()
    assert "| sketchanet | fbin | 1 | 1 |" in text
    rows = json.loads((out / "results.json").read_text())["rows"]
    runtimes = {(r["variant"], r["runtime"], r["section"]) for r in rows}
    assert {("fprec", "torch", "model"), ("fbin", "hbn", "model"), ("fprec", "hbn", "model")} <= runtimes
    layer_rows = [r for r in rows if r["section"] == "layer"]
    assert layer_rows and all(r["median_s"] > 0 for r in layer_rows)
    assert "speedup" in capsys.readouterr().out


def test_bench_rejects_unknown_model(capsys) -> None:
    assert main(["bench", "--models", "vgg"]) == 2
