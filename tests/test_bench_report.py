"""The benchmark report's arithmetic and rendering, on synthetic timings (no timing here)."""
from __future__ import annotations

import json

import pytest

from hbn_engine.bench.paper import PAPER_FLOP_SPEEDUPS
from hbn_engine.bench.report import speedup_rows, thread_scaling, write_report, xnor_summary
from hbn_engine.bench.suite import BenchConfig, BenchResults, Row
from hbn_engine.bench.timing import time_callable


def _results() -> BenchResults:
    cfg = BenchConfig(models=("alexnet",), variants=("fprec", "fbin"), batches=(1,), threads=(1, 2))
    res = BenchResults(cfg, {"cpu": "test cpu", "cores": 2, "isa": "scalar", "supported_isas": ["scalar"],
                             "hbn_engine": "0", "peak": {"binary_macs_per_s": 2.1e11,
                                                         "fma_macs_per_s": 1e10, "ratio": 21.0}})
    for thr, scale in ((1, 1.0), (2, 0.5)):
        res.rows += [
            Row("model", "alexnet", "fprec", "torch", 1, thr, 0.010 * scale, 5),
            Row("model", "alexnet", "fprec", "onnxruntime", 1, thr, 0.008 * scale, 5),
            Row("model", "alexnet", "fprec", "hbn", 1, thr, 0.009 * scale, 5),
            Row("model", "alexnet", "fbin", "hbn", 1, thr, 0.001 * scale, 5),
        ]
    res.flop_counts = {"alexnet": {"fprec": {"float": 1000, "fbin": 0},
                                   "fbin": {"float": 100, "fbin": 900}}}
    res.rows += [
        Row("xnor", "conv256_3x3_14", "fbin", "hbn", 1, 1, 50e-6, 20),
        Row("xnor", "conv256_3x3_14", "fprec", "hbn", 1, 1, 900e-6, 20),
        Row("xnor", "conv256_3x3_14", "fprec", "torch", 1, 1, 1000e-6, 20),
        Row("xnor", "conv256_3x3_14", "fprec", "onnxruntime", 1, 1, 800e-6, 20),
        Row("layer", "alexnet", "fbin", "hbn", 1, 1, 1e-4, 5, "conv2", "fbin"),
        Row("layer", "alexnet", "fbin", "torch", 1, 1, 1e-3, 5, "conv2", "fprec"),
    ]
    return res


def test_speedups_use_the_faster_float_baseline() -> None:
    rows = {(r["variant"], r["threads"]): r for r in speedup_rows(_results())}
    fbin = rows[("fbin", 1)]
    assert fbin["baseline"] == "onnxruntime"
    assert fbin["speedup"] == pytest.approx(8.0)
    assert fbin["paper_flop_speedup"] == pytest.approx(113.53 / 12.11)
    assert rows[("fprec", 2)]["speedup"] == pytest.approx(0.008 / 0.009)
    # FLOP model at the machine's 21x: 1000 / (100 + 900 / 21)
    assert fbin["machine_flop_speedup"] == pytest.approx(7.0)
    assert rows[("fprec", 1)]["machine_flop_speedup"] == pytest.approx(1.0)


def test_xnor_summary_and_scaling() -> None:
    res = _results()
    xs = xnor_summary(res)
    assert xs["best_float"] == "onnxruntime"
    assert xs["speedup_vs_best_float"] == pytest.approx(16.0)
    assert xs["speedup_vs_hbn_float"] == pytest.approx(18.0)
    sc = {r["variant"]: r["scaling"] for r in thread_scaling(res)}
    assert sc == {"fprec": pytest.approx(2.0), "fbin": pytest.approx(2.0)}


def test_report_files(tmp_path) -> None:
    path = write_report(_results(), tmp_path / "rep")
    text = path.read_text()
    assert "16.0x" in text and "21.0x" in text and "conv2" in text
    assert "| alexnet | fbin | 1 | 1 |" in text and "| 9.4x | 7.0x | no |" in text
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert len(data["rows"]) == len(_results().rows)
    assert (tmp_path / "rep" / "latency.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "layers_alexnet.png").exists()


def test_paper_flop_speedups_match_issue_targets() -> None:
    expected = {("alexnet", "fbin"): 9.4, ("alexnet", "hybrid"): 6.5, ("resnet18", "fbin"): 13.5,
                ("resnet18", "hybrid"): 5.1, ("sketchanet", "fbin"): 7.7,
                ("sketchanet", "hybrid"): 7.1, ("squeezenet", "fbin"): 6.6,
                ("squeezenet", "hybrid"): 3.7}
    for (arch, v), want in expected.items():
        assert round(PAPER_FLOP_SPEEDUPS[arch][v], 1) == want


def test_time_callable_counts_runs() -> None:
    calls = []
    t = time_callable(lambda: calls.append(1), min_time=0.0, min_runs=7, warmup=3)
    assert t.runs == 7 and len(calls) == 10
    assert t.median >= 0


def _plain_results() -> BenchResults:
    res = _results()
    res.rows += [
        Row("plain", "reactnet", "plain", "hbn", 1, 1, 0.003, 10),
        Row("plain", "reactnet", "plain", "torch", 1, 1, 0.090, 10),
        Row("plain", "reactnet", "plain", "onnxruntime", 1, 1, 0.060, 10),
        Row("plain", "xnor_nin", "plain", "hbn", 1, 1, 0.001, 10),
        Row("plain", "xnor_nin", "plain", "torch", 1, 1, 0.015, 10),
    ]
    res.plain_info = {
        "reactnet": {"input": [3, 224, 224], "kinds": {"fbin": 16, "fprec": 5}, "onnx_error": None},
        "xnor_nin": {"input": [3, 32, 32], "kinds": {"fbin": 7, "fprec": 2},
                     "onnx_error": "RuntimeError: no symbolic for SignSTE"},
    }
    return res


def test_plain_models_section_renders(tmp_path) -> None:
    from hbn_engine.bench.report import plain_rows

    rows = {r["model"]: r for r in plain_rows(_plain_results())}
    assert rows["reactnet"]["best"] == "onnxruntime"
    assert rows["reactnet"]["speedup"] == pytest.approx(20.0)
    assert rows["xnor_nin"]["best"] == "torch" and rows["xnor_nin"]["onnxruntime_ms"] is None
    text = write_report(_plain_results(), tmp_path / "rep").read_text()
    assert "## Models written without hbn_engine.nn" in text
    assert "| reactnet | 3x224x224 | 16 fbin, 5 fprec | 1 | 3.00 | 90.00 | 60.00 | 20.0x " \
           "(onnxruntime) |" in text
    assert "| xnor_nin | 3x32x32 | 7 fbin, 2 fprec | 1 | 1.00 | 15.00 | - | 15.0x (torch) |" in text
    assert "xnor_nin: no ONNX Runtime figure" in text
    data = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert data["plain_info"]["reactnet"]["kinds"] == {"fbin": 16, "fprec": 5}
    # without plain rows there is no such section
    assert "without hbn_engine.nn" not in write_report(_results(), tmp_path / "rep2").read_text()


def test_plain_models_build_without_tests_package(tmp_path) -> None:
    # the benchmark's networks live in the package (tests/idioms re-exports them)
    import subprocess
    import sys

    code = ("import sys; from hbn_engine.bench.plain_models import BENCH_NETWORKS; "
            "assert not any(m == 'idioms' or m.startswith('idioms.') for m in sys.modules); "
            "print(sorted(BENCH_NETWORKS))")
    # cwd outside the checkout: `python -c` puts cwd first on sys.path, and the source tree's
    # hbn_engine has no compiled extension (CI tests the installed package).
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "['birealnet', 'reactnet', 'relusignnet', 'xnor_nin']"


def _int8_results() -> BenchResults:
    res = _results()
    res.rows += [
        Row("model", "alexnet", "fbin_int8", "hbn", 1, 1, 0.0008, 5),
        Row("model", "alexnet", "fprec_int8", "onnxruntime", 1, 1, 0.002, 5),
        Row("model", "alexnet", "fbin_int8", "hbn", 1, 2, 0.0004, 5),
    ]
    return res


def test_int8_rows_and_targets(tmp_path) -> None:
    from hbn_engine.bench.report import int8_rows

    rows = {r["threads"]: r for r in int8_rows(_int8_results())}
    one = rows[1]
    assert one["variant"] == "fbin" and one["exact_ms"] == pytest.approx(1.0)
    # the fp32 baseline is the faster fp32 runtime; ORT int8 is never taken for it
    assert one["baseline"] == "onnxruntime" and one["speedup_fp32"] == pytest.approx(10.0)
    assert one["speedup_ort_int8"] == pytest.approx(2.5) and one["met_ort_int8"] is False
    assert one["target_fp32"] == pytest.approx(113.53 / 12.11) and one["met_fp32"] is True
    assert one["ort_int8_vs_fp32"] == pytest.approx(4.0)
    # targets are for 1 thread, batch 1 only; no ORT int8 at 2 threads here
    assert rows[2]["target_fp32"] is None and rows[2]["met_ort_int8"] is None
    assert rows[2]["ort_int8_ms"] is None
    text = write_report(_int8_results(), tmp_path / "rep").read_text()
    assert "## FBin / Hybrid + int8 edges" in text
    assert ("| alexnet | fbin | 1 | 1 | 1.00 | 0.80 | 8.00 (onnxruntime) | 2.00 | 10.00x | "
            ">= 9.4x: yes | 2.50x | no | - | 4.00x |") in text
    # the int8 rows stay out of the exact end-to-end table, and fbin_int8's baseline is fp32
    assert "| alexnet | fbin_int8 | 1 | 1 |" not in text
    assert "## FBin / Hybrid + int8 edges" not in write_report(_results(), tmp_path / "r2").read_text()
    res = _int8_results()
    res.int8_errors["alexnet"] = "ImportError: no onnx"
    assert "alexnet: no ONNX Runtime int8 figure" in write_report(res, tmp_path / "r3").read_text()


def test_int8_ceiling_column(tmp_path) -> None:
    # ORT int8 over an engine with the non-FullBin MACs at the int8 peak and the FullBin MACs at
    # the binary peak; only where the machine's int8 peak was measured, 1 thread, batch 1
    from hbn_engine.bench.report import int8_rows

    res = _int8_results()
    assert all(r["ceiling_ort_int8"] is None for r in int8_rows(res))
    res.machine["peak"]["int8_macs_per_s"] = 4e10
    rows = {r["threads"]: r for r in int8_rows(res)}
    # fbin: 100 float MACs at 4e10/s + 900 FullBin MACs at 2.1e11/s
    assert rows[1]["ceiling_ort_int8"] == pytest.approx(0.002 / (100 / 4e10 + 900 / 2.1e11))
    assert rows[2]["ceiling_ort_int8"] is None
    text = write_report(res, tmp_path / "rep").read_text()
    assert "| ceiling vs ORT int8 |" in text and "40.0 G MACs/s per core" in text
    assert f"| {rows[1]['ceiling_ort_int8']:.2f}x |" in text


def test_hybrid_with_int8_wbin_row(tmp_path) -> None:
    # "hybrid_wbin_int8" (export(edges="int8", wbin="int8")): its exact column is Hybrid's.
    from hbn_engine.bench.report import int8_rows

    res = _int8_results()
    res.rows += [Row("model", "alexnet", "hybrid", "hbn", 1, 1, 0.004, 5),
                 Row("model", "alexnet", "hybrid_wbin_int8", "hbn", 1, 1, 0.001, 5)]
    row = [r for r in int8_rows(res) if r["variant"] == "hybrid_wbin"][0]
    assert row["exact_ms"] == pytest.approx(4.0) and row["speedup_ort_int8"] == pytest.approx(2.0)
    assert row["met_ort_int8"] is False
    text = write_report(res, tmp_path / "rep").read_text()
    assert "| alexnet | hybrid + int8 WBin | 1 | 1 | 4.00 | 1.00 |" in text
    assert "| alexnet | hybrid_wbin_int8 |" not in text


def test_onnxruntime_int8_baseline_is_static_qdq_per_channel(tmp_path) -> None:
    # The ORT int8 baseline of the report: quant_pre_process, then static QDQ quantization
    # with per-channel weights; it must run and stay close to fp32.
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    torch = pytest.importorskip("torch")
    import numpy as np

    from hbn_engine.bench.runners import make_onnxruntime_int8

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                                torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 8 * 8, 5)).eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 8, 8), dtype=np.float32)
    cal = rng.standard_normal((8, 3, 8, 8), dtype=np.float32)
    run = make_onnxruntime_int8(model, x, 1, str(tmp_path), "m", cal)
    y = run()[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.abs(y - ref).max() <= 0.1 * np.abs(ref).max()
    g = onnx.load(str(tmp_path / "m.int8.onnx")).graph
    ops = {n.op_type for n in g.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and "BatchNormalization" not in ops
    inits = {i.name: i for i in g.initializer}
    per_channel = [n for n in g.node if n.op_type == "DequantizeLinear"
                   and n.input[1] in inits and len(inits[n.input[1]].dims) == 1
                   and inits[n.input[1]].dims[0] == 8]
    assert per_channel, "conv weights are not quantized per output channel"
