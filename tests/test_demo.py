"""hbn demo: the mini Sketch-A-Net, the seed summary, and the engine == PyTorch exit status."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hbn_engine import demo
from hbn_engine import partition as P
from hbn_engine.demo_report import format_summary, summarize
from hbn_engine.nn import FullBinConv2d, FullBinLinear


def _runtime_available() -> bool:
    try:
        import hbn_engine.exporter  # noqa: F401
        import hbn_engine.runtime  # noqa: F401
    except ImportError:
        return False
    return True


needs_data = pytest.mark.skipif(
    importlib.util.find_spec("animal_shape_mnist") is None,
    reason="animal-shape-mnist is not installed")
needs_engine = pytest.mark.skipif(not _runtime_available(),
                                  reason="hbn_engine.runtime/exporter not importable")


def test_mini_sketchanet_builder() -> None:
    m = demo.mini_sketchanet("fbin", 10, width=4)
    assert list(m.hbn_layers) == demo.NAMES
    assert m.hbn_layers["conv1"] == "fprec" and m.hbn_layers["fc8"] == "fprec"
    assert isinstance(m.conv2, FullBinConv2d) and isinstance(m.fc6, FullBinLinear)
    assert P.layer_kinds(m) == dict(m.hbn_layers)
    h = demo.mini_sketchanet("fbin", 10, {"fc7": "wbin"}, width=4)
    assert h.hbn_layers["fc7"] == "wbin" and h.hbn_layers["fc6"] == "fbin"
    small = demo.mini_sketchanet("wbin", 3, input_size=(1, 8, 8), width=4, binrelu=True)
    assert any(isinstance(mod, P.BinReLU) for mod in small.modules())
    assert small(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    for bad in ({"variant": "hybrid"}, {"layers": {"conv9": "wbin"}},
                {"layers": {"conv2": "int4"}}, {"layers": {"conv1": "fbin"}},
                {"input_size": (1, 4, 4)}):
        with pytest.raises(ValueError):
            demo.mini_sketchanet(**bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [{"ratio": 1.5}, {"strategies": ["random"]},
                                    {"budget_fraction": -0.1}, {"epochs": 0},
                                    {"gamma": -1.0}, {"gamma": "geometric"}])
def test_demo_rejects_bad_arguments_before_training(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        demo.run_demo(str(tmp_path), engine=False, verbose=False, **kwargs)
    with pytest.raises(ValueError):
        demo.run_seeds(str(tmp_path / "s"), seeds=[0, 1], engine=False, verbose=False, **kwargs)
    assert not (tmp_path / "fprec.pt").exists() and not (tmp_path / "s").exists()


def test_demo_cli_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        demo.main(["--seeds", "0"])
    with pytest.raises(SystemExit):
        demo.main(["--gamma", "huge"])
    assert "gamma must be a number" in capsys.readouterr().err


# ---------------------------------------------------------------- summary over seeds

def _fake_run(seed: int, acc: dict[str, float], hybrid_wbin: list[str],
              engine_acc: dict[str, float] | None = None) -> dict:
    fbin = demo.default_kinds("fbin")
    layers = {"fprec": demo.default_kinds("fprec"), "wbin": demo.default_kinds("wbin"),
              "fbin": fbin, "hybrid": {**fbin, **{n: "wbin" for n in hybrid_wbin}}}
    eq = {"fprec": 10e6, "wbin": 10e6, "fbin": 1e6, "hybrid": 1e6 + 1e5 * len(hybrid_wbin)}
    variants = {}
    for name in ("fprec", "wbin", "fbin", "hybrid"):
        e_acc = (engine_acc or acc)[name]
        variants[name] = {"accuracy": acc[name], "layers": layers[name], "flops": 10e6,
                          "equivalent_flops": eq[name], "compression": 20.0,
                          "memory_bytes": 4096.0,
                          "engine": {"status": "ok", "accuracy": e_acc,
                                     "mismatches": int(round(abs(e_acc - acc[name]) * 100))}}
    band = {"lo": 1.0, "hi": 10.0}
    return {"dataset": "animal_shapes", "seed": seed, "split_seed": 0, "train_size": 100,
            "test_size": 100, "epochs": 1, "width": 4, "ratio": 0.4, "engine_checked": True,
            "variants": variants,
            "partition": {"weight_binary": hybrid_wbin, "gamma": 3.0, "gamma_rule": "mean",
                          "band": band, "bands": [], "errors_scaled": {}, "errors_literal": {}}}


def test_summary_mean_sd_and_gap() -> None:
    runs = [_fake_run(0, {"fprec": 0.99, "wbin": 0.98, "fbin": 0.94, "hybrid": 0.96}, ["fc6", "fc7"]),
            _fake_run(1, {"fprec": 0.99, "wbin": 0.97, "fbin": 0.93, "hybrid": 0.942}, ["fc7"])]
    s = summarize(runs)
    h = s["variants"]["hybrid"]
    assert h["accuracy_mean"] == pytest.approx(0.951)
    assert h["accuracy_sd"] == pytest.approx(np.std([0.96, 0.942], ddof=1))
    assert h["gap_recovered"] == pytest.approx([0.5, 0.3])
    # (0.951 - 0.935) / (0.975 - 0.935)
    assert h["gap_recovered_of_means"] == pytest.approx(0.4)
    assert h["weight_binary"] == [["fc6", "fc7"], ["fc7"]]
    assert h["engine_equal"] is True and demo.engine_failures(s) == []
    table = format_summary(s)
    assert "95.10 +- 1.27%" in table and "40% (per seed 50%, 30%)" in table
    assert "1.10-1.20 (1.10-1.20x)" in table            # the hybrid's FLOPs differ per seed
    assert "seed 1: Algorithm 1 picked fc7" in table
    assert "FBin (XNOR): binary weights and inputs" in table


def test_engine_failures_name_every_disagreement() -> None:
    ok = {"fprec": 0.99, "wbin": 0.98, "fbin": 0.94, "hybrid": 0.96}
    bad = _fake_run(1, ok, ["fc7"], engine_acc={**ok, "hybrid": 0.95})
    s = summarize([_fake_run(0, ok, ["fc7"]), bad])
    fails = demo.engine_failures(s)
    assert len(fails) == 1 and fails[0].startswith("seed 1 hybrid")
    assert s["variants"]["hybrid"]["engine_equal"] is False
    assert "| NO |" in format_summary(s)
    bad["variants"]["fbin"]["engine"] = {"status": "not run: no runtime"}
    assert any("seed 1 fbin: engine check not run" in f for f in demo.engine_failures(bad))
    del bad["variants"]["wbin"]["engine"]
    assert any("seed 1 wbin: engine check missing" in f for f in demo.engine_failures(bad))
    assert demo.engine_failures({**bad, "engine_checked": False}) == []


def test_main_exit_status_follows_engine_check(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    ok = {"fprec": 0.99, "wbin": 0.98, "fbin": 0.94, "hybrid": 0.96}
    good = summarize([_fake_run(0, ok, ["fc7"])])
    bad = summarize([_fake_run(0, ok, ["fc7"], engine_acc={**ok, "fprec": 0.98})])
    monkeypatch.setattr(demo, "run_seeds", lambda *a, **k: good)
    assert demo.main(["--out", str(tmp_path)]) == 0
    monkeypatch.setattr(demo, "run_seeds", lambda *a, **k: bad)
    assert demo.main(["--out", str(tmp_path)]) == 1


# ---------------------------------------------------------------- the engine check itself

def _saved_untrained_run(out: Path) -> None:
    """A finished one-seed run without training: untrained width-4 models, 200 test images."""
    out.mkdir(parents=True)
    variants = {}
    for name in ("fprec", "wbin", "fbin"):
        torch.manual_seed(1)
        model = demo.mini_sketchanet(name, 10, width=4)
        with torch.no_grad():  # non-trivial BatchNorm statistics so predictions vary
            for m in model.modules():
                if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 2.0)
        torch.save(model.state_dict(), out / f"{name}.pt")
        variants[name] = {"accuracy": 0.0, "layers": dict(model.hbn_layers)}
    results = {"dataset": "animal_shapes", "seed": 0, "split_seed": 0, "train_size": 0,
               "test_size": 200, "epochs": 1, "width": 4, "ratio": 0.4, "variants": variants}
    (out / "results.json").write_text(json.dumps(results))


@needs_data
@needs_engine
def test_check_engine_exits_non_zero_on_a_wrong_engine_result(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, one_torch_thread: None) -> None:
    out = tmp_path / "run"
    _saved_untrained_run(out)
    assert demo.main(["--check-engine", "--out", str(out)]) == 0
    saved = json.loads((out / "results.json").read_text())
    for e in saved["variants"].values():
        assert e["engine"]["status"] == "ok" and e["engine"]["mismatches"] == 0
        assert e["engine"]["accuracy"] == e["accuracy"]
    real = demo._engine_predictions

    def off_by_one(path: str, x: np.ndarray) -> np.ndarray:
        pred = real(path, x)
        if path.endswith("wbin.hbn"):
            pred = pred.copy()
            pred[3] = (pred[3] + 1) % 10
        return pred

    monkeypatch.setattr(demo, "_engine_predictions", off_by_one)
    assert demo.main(["--check-engine", "--out", str(out)]) == 1
    saved = json.loads((out / "results.json").read_text())
    assert saved["variants"]["wbin"]["engine"]["mismatches"] == 1
    assert saved["variants"]["fbin"]["engine"]["mismatches"] == 0


def test_check_engine_without_a_run_says_so(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--out", str(tmp_path / "none"), "--check-engine"]) == 1
    assert "run the demo with --out" in capsys.readouterr().err


# ---------------------------------------------------------------- end to end on real data

@needs_data
def test_demo_quick(tmp_path: Path) -> None:
    engine = _runtime_available()
    res = demo.run_seeds(str(tmp_path), seeds=[0], quick=True, engine=engine, verbose=False)
    run = res["runs"][0]
    v = run["variants"]
    assert list(v) == ["fprec", "wbin", "fbin", "hybrid"]
    assert v["fprec"]["accuracy"] > 0.3          # real learning, chance is 0.1
    part = run["partition"]
    # Only the FBin model's FullBin layers compete: conv1 and the classifier fc8 stay float
    assert part["candidates"] == ["conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    assert part["weight_binary"] == P.partition(part["metrics"], 0.4)
    assert part["gamma_rule"] == "mean"
    assert part["band"]["lo"] <= part["gamma"] < part["band"]["hi"]
    kinds = v["hybrid"]["layers"]
    assert kinds == {**v["fbin"]["layers"], **{n: "wbin" for n in part["weight_binary"]}}
    eq = {k: e["equivalent_flops"] for k, e in v.items()}
    assert eq["fbin"] <= eq["hybrid"] <= eq["wbin"] == pytest.approx(eq["fprec"])
    for f in ("results.json", "table.md", "seed0/results.json", "seed0/fbin.pt"):
        assert (tmp_path / f).exists(), f
    assert "Hybrid (Algorithm 1)" in res["table"] and "mean +- sd, 1 seed" in res["table"]
    if not engine:
        pytest.skip("hbn_engine.runtime/exporter not importable: engine check not run")
    assert demo.engine_failures(res) == []
    assert all(e["engine_equal"] for e in res["variants"].values())


@pytest.mark.slow
@needs_data
@needs_engine
def test_demo_run_exits_non_zero_when_engine_differs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = demo._engine_predictions
    monkeypatch.setattr(demo, "_engine_predictions",
                        lambda path, x: (real(path, x) + (path.endswith("hybrid.hbn"))) % 10)
    assert demo.main(["--quick", "--seeds", "1", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "seed 0 hybrid: engine accuracy" in err[0]
