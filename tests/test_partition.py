"""Layer selection: Algorithm 1, the metric, binarization errors, budget/priority strategies."""
from __future__ import annotations

import itertools
import math
import random

import pytest
import torch
from torch import nn

from hbn_engine import partition as P
from hbn_engine.partition import (
    BinReLU,
    assignment_from_selection,
    binarization_errors,
    budgeted_selection,
    default_gamma,
    hybrid_assignment,
    kmeans_1d,
    layer_flops,
    layer_metrics,
    layerwise_priority,
    partition,
)

from hbn_engine.nn import FullBinConv2d, FullBinLinear, WeightBinConv2d


def _set_bn(bn: nn.BatchNorm2d, weight: float, bias: float) -> None:
    bn.eps = 0.0  # exact arithmetic for the hand-computed cases
    with torch.no_grad():
        bn.weight.fill_(weight)
        bn.bias.fill_(bias)
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)


# ---------------------------------------------------------------- k-means and Algorithm 1

def _brute_force_sse(values: list[float], k: int) -> float:
    s = sorted(values)
    best = math.inf
    for cuts in itertools.combinations(range(1, len(s)), k - 1):
        bounds = (0, *cuts, len(s))
        tot = 0.0
        for a, b in zip(bounds, bounds[1:]):
            seg = s[a:b]
            mu = sum(seg) / len(seg)
            tot += sum((v - mu) ** 2 for v in seg)
        best = min(best, tot)
    return best


def _sse(values: list[float], labels: list[int]) -> float:
    tot = 0.0
    for lab in set(labels):
        seg = [v for v, l in zip(values, labels) if l == lab]
        mu = sum(seg) / len(seg)
        tot += sum((v - mu) ** 2 for v in seg)
    return tot


def test_kmeans_1d_hand_case() -> None:
    assert kmeans_1d([5.0, 0.0, 0.1, 5.1, 0.2], 2) == [1, 0, 0, 1, 0]
    # {1, 1.1, 1.2} {9} {9.5}: SSE 0.02 beats {1, 1.1} {1.2} {9, 9.5}: 0.13
    assert kmeans_1d([1.0, 1.1, 1.2, 9.0, 9.5], 3) == [0, 0, 0, 1, 2]


@pytest.mark.parametrize("seed", range(6))
def test_kmeans_1d_is_globally_optimal(seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.choice([rng.random(), rng.random() * 10]) for _ in range(9)]
    for k in range(1, 6):
        labels = kmeans_1d(values, k)
        assert len(set(labels)) == k
        assert _sse(values, labels) == pytest.approx(_brute_force_sse(values, k), abs=1e-12)


def test_kmeans_1d_equal_values_share_a_cluster() -> None:
    labels = kmeans_1d([2.0, 2.0, 2.0, 7.0], 3)
    assert labels[0] == labels[1] == labels[2] != labels[3]
    assert kmeans_1d([3.0, 3.0], 2) == [0, 0]
    with pytest.raises(ValueError):
        kmeans_1d([1.0], 0)


def test_partition_two_clear_clusters() -> None:
    m = {"c2": 1.0, "c3": 1.1, "c4": 1.2, "c5": 9.0, "c6": 9.5}
    assert partition(m, 0.4) == ["c5", "c6"]          # N=2: K=2, 2/5 = 0.4 <= R
    assert partition(m, 0.39) == ["c6"]               # N=2 fails; N=3 isolates 9.5 (see above)
    assert partition(m, 1.0) == ["c5", "c6"]          # the first N that qualifies wins
    assert partition(m, 0.2) == ["c6"]
    assert partition(m, 0.19) == []                   # K >= 1 > 0.19 * 5 for every N
    assert partition(m, 0.0) == []


def test_partition_first_n_that_fits() -> None:
    # Three groups; N=2 puts the two upper groups together (K=4), N=3 splits off the top one.
    m = {f"l{i}": v for i, v in enumerate([0.0, 0.1, 0.05, 5.0, 5.2, 10.0, 10.1])}
    assert partition(m, 0.6) == ["l3", "l4", "l5", "l6"]
    assert partition(m, 0.5) == ["l5", "l6"]


def test_partition_degenerate_inputs() -> None:
    assert partition({"only": 3.0}, 1.0) == []        # loop N = 2..P is empty
    same = {"a": 1.0, "b": 1.0, "c": 1.0}
    assert partition(same, 0.9) == []                  # ties cannot be split
    assert partition(same, 1.0) == ["a", "b", "c"]


@pytest.mark.parametrize("seed", range(5))
def test_partition_deterministic_and_permutation_invariant(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"layer{i}" for i in range(12)]
    values = [round(rng.expovariate(1.0), 2) for _ in names]  # rounding makes ties likely
    base = dict(zip(names, values))
    ratio = rng.choice([0.2, 0.3, 0.4, 0.6])
    expected = partition(base, ratio)
    assert partition(dict(base), ratio) == expected
    for _ in range(5):
        order = names[:]
        rng.shuffle(order)
        got = partition({n: base[n] for n in order}, ratio)
        assert set(got) == set(expected)
        assert got == [n for n in order if n in set(expected)]
    if expected:  # the chosen layers are exactly the top ones
        assert min(base[n] for n in expected) > max(base[n] for n in names if n not in expected)
        assert len(expected) / len(names) <= ratio


@pytest.mark.parametrize("bad, exc", [
    ({}, ValueError),
    ({"a": float("nan"), "b": 1.0}, ValueError),
    ({"a": float("inf"), "b": 1.0}, ValueError),
    ({"a": "x", "b": 1.0}, TypeError),
    ({1: 1.0, "b": 2.0}, TypeError),
    ([("a", 1.0)], TypeError),
])
def test_partition_rejects_bad_metrics(bad: object, exc: type) -> None:
    with pytest.raises(exc):
        partition(bad, 0.4)  # type: ignore[arg-type]


@pytest.mark.parametrize("ratio, exc", [(-0.1, ValueError), (1.01, ValueError),
                                        (float("nan"), ValueError), ("0.4", TypeError),
                                        (True, TypeError)])
def test_partition_rejects_bad_ratio(ratio: object, exc: type) -> None:
    with pytest.raises(exc):
        partition({"a": 1.0, "b": 2.0}, ratio)  # type: ignore[arg-type]


# ---------------------------------------------------------------- metric

def test_metric_and_default_gamma() -> None:
    errors = {"a": 0.2, "b": 0.4, "c": 0.9}
    flops = {"a": 100.0, "b": 1000.0, "c": 10.0}
    # median rule: median(E) * median(NF)
    assert default_gamma(errors, flops, "median") == pytest.approx(0.4 * 100.0)
    m = layer_metrics(errors, flops, "median")
    assert m == pytest.approx({"a": 0.2 + 0.4, "b": 0.4 + 0.04, "c": 0.9 + 4.0})
    # range rule (default): spread of E / spread of 1/NF = 0.7 / (0.1 - 0.001)
    g = 0.7 / 0.099
    assert default_gamma(errors, flops) == pytest.approx(g)
    m = layer_metrics(errors, flops)
    assert m == pytest.approx({"a": 0.2 + g / 100, "b": 0.4 + g / 1000, "c": 0.9 + g / 10})
    assert max(m.values()) - m["c"] == 0.0
    assert default_gamma(errors, {"a": 5.0, "b": 5.0, "c": 5.0}) == 0.0
    with pytest.raises(ValueError):
        default_gamma(errors, flops, "mean")
    with pytest.raises(TypeError):
        layer_metrics(errors, flops, gamma=[1.0])  # type: ignore[arg-type]
    assert layer_metrics(errors, flops, gamma=0.0) == pytest.approx(errors)
    assert layer_metrics(errors, flops, gamma=10.0)["b"] == pytest.approx(0.41)
    with pytest.raises(ValueError):
        layer_metrics(errors, {"a": 1.0, "b": 1.0})               # missing layer
    with pytest.raises(ValueError):
        layer_metrics(errors, {**flops, "b": 0.0})                # zero cost
    with pytest.raises(ValueError):
        layer_metrics(errors, flops, gamma=-1.0)
    with pytest.raises(ValueError):
        layer_metrics(errors, flops, gamma=float("nan"))
    with pytest.raises(ValueError):
        layer_metrics({**errors, "a": -0.1}, flops)


# ---------------------------------------------------------------- binarization error

def _one_layer_model(weight: float, bias: float) -> nn.Module:
    layer = FullBinConv2d(1, 1, 1, bias=False)
    _set_bn(layer.bn, weight, bias)
    return nn.Sequential(layer)


_X = torch.tensor([[[[1.0, 3.0]]], [[[-1.0, 0.0]]]])  # two images of 1x1x2


def test_binarization_error_hand_computed() -> None:
    model = _one_layer_model(1.0, 0.0)  # bn(x) = x
    # sign:   image 1 (|1|-1)^2 + (|3|-1)^2 = 4; image 2 0 + (0-1)^2 = 1 (sign(0) = +1) -> 5/4
    assert binarization_errors(model, _X, scaled=False) == {"0": pytest.approx(1.25)}
    # scaled: alpha = 2 -> 1 + 1; alpha = 0.5 -> 0.25 + 0.25 -> 2.5 / 4
    assert binarization_errors(model, _X) == {"0": pytest.approx(0.625)}


def test_binarization_error_measures_bn_output() -> None:
    model = _one_layer_model(2.0, 0.0)  # I = 2x: scaled error x4, sign error changes shape
    assert binarization_errors(model, _X)["0"] == pytest.approx(2.5)
    # |I| = 2, 6, 2, 0 -> (1 + 25 + 1 + 1) / 4
    assert binarization_errors(model, _X.numpy(), scaled=False)["0"] == pytest.approx(7.0)


def test_binarization_error_restores_state_and_hooks() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), FullBinConv2d(4, 4, 3),
                          nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    model.train()
    x = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    running = model[2].bn.running_mean.clone()
    errs = binarization_errors(model, x, batch_size=3)
    assert list(errs) == ["0", "2", "4"]
    assert all(e >= 0 and math.isfinite(e) for e in errs.values())
    assert model.training
    assert torch.equal(model[2].bn.running_mean, running)   # eval mode: stats untouched
    assert all(not m._forward_pre_hooks for m in model.modules())


def test_binarization_error_float_layers_are_standardized() -> None:
    # A float layer has no BN of its own: its input is standardized per channel, so an affine
    # change of the image leaves its error unchanged.
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    x = torch.rand(16, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    e1 = binarization_errors(model, x)["0"]
    e2 = binarization_errors(model, 10.0 * x - 3.0)["0"]
    assert e1 == pytest.approx(e2, rel=2e-3)  # only the BN epsilon differs


@pytest.mark.parametrize("bad, exc", [
    (torch.zeros(0, 1, 4, 4), ValueError),
    (torch.zeros(2, 1, 4, 4, dtype=torch.int64), TypeError),
    (torch.full((2, 1, 4, 4), float("nan")), ValueError),
    ([[1.0]], TypeError),
])
def test_binarization_error_rejects_bad_images(bad: object, exc: type) -> None:
    with pytest.raises(exc):
        binarization_errors(_one_layer_model(1.0, 0.0), bad)  # type: ignore[arg-type]


def test_layer_flops_counts_macs() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 3, stride=2),
                          nn.Flatten(), nn.Linear(16 * 2 * 2, 5))
    x = torch.zeros(2, 3, 6, 6)
    assert layer_flops(model, x) == {"0": 6 * 6 * 8 * 3 * 9.0, "1": 2 * 2 * 16 * 8 * 9.0,
                                     "3": 64 * 5.0}


def _toy_fbin_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(),
                         FullBinConv2d(8, 8, 3, padding=1), nn.ReLU(),
                         FullBinConv2d(8, 8, 3, padding=1), nn.ReLU(),
                         FullBinConv2d(8, 8, 3), nn.Flatten(), nn.Linear(8 * 4 * 4, 4))


def test_hybrid_assignment_follows_algorithm_1() -> None:
    torch.manual_seed(0)
    model = _toy_fbin_model()
    x = torch.randn(32, 1, 6, 6)
    res = P.analyze(model, x, ratio=0.5)
    assert res.layers == ["0", "2", "4", "6", "8"]
    assert list(res.errors) == res.layers[1:]
    assert res.gamma == pytest.approx(default_gamma(res.errors, res.costs))
    assert res.metrics == pytest.approx(layer_metrics(res.errors, res.costs, res.gamma))
    assert res.weight_binary == partition(res.metrics, 0.5)
    assert 1 <= len(res.weight_binary) <= 2
    assign = hybrid_assignment(model, x, ratio=0.5)
    assert assign == res.assignment
    assert assign["0"] == "fprec"
    assert {k for k, v in assign.items() if v == "wbin"} == set(res.weight_binary)
    assert set(assign.values()) <= {"fprec", "wbin", "fbin"}


def test_hybrid_assignment_gamma_drives_cheap_layers_to_wbin() -> None:
    # A huge gamma makes 1/NF dominate: the cheapest layer (the classifier) keeps float input.
    torch.manual_seed(0)
    model = _toy_fbin_model()
    x = torch.randn(16, 1, 6, 6)
    assert P.analyze(model, x, ratio=0.25, gamma=1e12).weight_binary == ["8"]


def test_latency_aware_costs() -> None:
    torch.manual_seed(0)
    model = _toy_fbin_model()
    x = torch.randn(16, 1, 6, 6)
    times = P.measure_layer_times(model, x, repeats=2)
    assert list(times) == ["0", "2", "4", "6", "8"] and all(t > 0 for t in times.values())
    fixed = {"2": 1.0, "4": 1.0, "6": 1.0, "8": 1e-6}
    res = P.analyze(model, x, ratio=0.25, gamma=1.0, costs=fixed)
    assert res.costs == fixed and res.weight_binary == ["8"]
    res2 = P.analyze(model, x, ratio=0.25, gamma=1.0, costs=lambda name, mod: fixed[name])
    assert res2.weight_binary == ["8"]
    assert set(P.analyze(model, x, costs="latency").costs) == {"2", "4", "6", "8"}
    with pytest.raises(ValueError):
        P.analyze(model, x, costs={"2": 1.0})
    with pytest.raises(ValueError):
        P.analyze(model, x, costs="seconds")


# ---------------------------------------------------------------- other strategies

def test_budgeted_selection_greedy_knapsack() -> None:
    errors = {"a": 1.0, "b": 4.0, "c": 3.0, "d": 0.5}
    costs = {"a": 1.0, "b": 8.0, "c": 2.0, "d": 1.0}   # error/cost: a 1, b 0.5, c 1.5, d 0.5
    # total 12; 25% may stay float -> 3: c (2) then a (1); b does not fit
    assert budgeted_selection(errors, costs, binary_fraction=0.75) == ["a", "c"]
    # 2.5 float: c fits, a does not (3 > 2.5), d ties with b on ratio but only d fits
    assert budgeted_selection(errors, costs, max_cost=2.5) == ["c"]
    assert budgeted_selection(errors, costs, max_cost=0.0) == []
    assert budgeted_selection(errors, costs, binary_fraction=0.0) == ["a", "b", "c", "d"]
    assert budgeted_selection(errors, costs, binary_fraction=1.0) == []
    with pytest.raises(ValueError):
        budgeted_selection(errors, costs)
    with pytest.raises(ValueError):
        budgeted_selection(errors, costs, binary_fraction=0.5, max_cost=1.0)
    with pytest.raises(ValueError):
        budgeted_selection(errors, costs, binary_fraction=1.5)
    with pytest.raises(ValueError):
        budgeted_selection(errors, {**costs, "a": -1.0}, max_cost=1.0)


def test_budgeted_selection_fills_remainder_with_cheaper_layer() -> None:
    errors = {"a": 4.0, "b": 4.0, "c": 0.1}
    costs = {"a": 2.0, "b": 3.0, "c": 1.0}             # ratios 2, 1.33, 0.1
    assert budgeted_selection(errors, costs, max_cost=3.0) == ["a", "c"]


def test_layerwise_priority_binarizes_deepest_first() -> None:
    layers = ["l1", "l2", "l3", "l4"]
    costs = {"l1": 4.0, "l2": 3.0, "l3": 2.0, "l4": 1.0}
    assert layerwise_priority(layers, costs, binary_fraction=0.0) == layers
    assert layerwise_priority(layers, costs, binary_fraction=0.1) == ["l1", "l2", "l3"]
    assert layerwise_priority(layers, costs, binary_fraction=0.3) == ["l1", "l2"]  # 3/10
    assert layerwise_priority(layers, costs, binary_fraction=0.31) == ["l1"]
    assert layerwise_priority(layers, costs, binary_fraction=1.0) == []
    with pytest.raises(ValueError):
        layerwise_priority([], costs, binary_fraction=0.5)
    with pytest.raises(ValueError):
        layerwise_priority(["l1", "l1"], costs, binary_fraction=0.5)
    with pytest.raises(ValueError):
        layerwise_priority(layers, costs, binary_fraction=-0.5)


def test_assignment_from_selection() -> None:
    assert assignment_from_selection(["a", "b", "c"], ["c"]) == {
        "a": "fprec", "b": "fbin", "c": "wbin"}
    with pytest.raises(ValueError):
        assignment_from_selection(["a", "b"], ["z"])
    with pytest.raises(ValueError):
        assignment_from_selection(["a"], [], first="int8")


def test_binrelu() -> None:
    x = torch.tensor([-2.0, -0.5, 0.0, 0.25, 1.0, 3.0], requires_grad=True)
    y = BinReLU()(x)
    assert y.tolist() == [0.0, 0.0, 0.0, 0.25, 1.0, 1.0]
    y.sum().backward()
    assert x.grad is not None and x.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 0.0]


def test_plot_metrics(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("matplotlib")
    out = P.plot_metrics({"a": 1.0, "b": 3.0, "c": 2.0}, ["b"], tmp_path / "fig2.png")
    data = (tmp_path / "fig2.png").read_bytes()
    assert out.endswith("fig2.png") and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    with pytest.raises(ValueError):
        P.plot_metrics({"a": 1.0}, ["zz"], tmp_path / "x.png")


def test_weightbin_and_linear_layers_are_measured() -> None:
    torch.manual_seed(0)
    fbl = FullBinLinear(8, 3, bias=False)
    _set_bn(fbl.bn, 1.0, 0.0)  # type: ignore[arg-type]
    model = nn.Sequential(nn.Conv2d(1, 2, 1), WeightBinConv2d(2, 2, 1), nn.Flatten(), fbl)
    x = torch.randn(6, 1, 2, 2)
    errs = binarization_errors(model, x)
    assert list(errs) == ["0", "1", "3"]
    model.eval()
    with torch.no_grad():
        flat = model[2](model[1](model[0](x)))  # FullBinLinear input; its bn is the identity
    mag = flat.abs().double()
    expected = (mag - mag.mean(dim=1, keepdim=True)).square().mean().item()
    assert errs["3"] == pytest.approx(expected)


def test_zoo_model_round_trip() -> None:
    models = pytest.importorskip("hbn_engine.models")
    torch.manual_seed(0)
    fbin = models.sketchanet("fbin", num_classes=5)
    x = torch.randn(3, *fbin.input_size)
    res = P.analyze(fbin, x, ratio=0.4)
    assert res.layers == models.layer_names("sketchanet")
    assert len(res.weight_binary) / (len(res.layers) - 1) <= 0.4
    hybrid = models.sketchanet("fbin", num_classes=5, layers=res.assignment)
    assert hybrid.hbn_layers == res.assignment


# ---------------------------------------------------------------- end to end on real data

def _runtime_available() -> bool:
    try:
        import hbn_engine.exporter  # noqa: F401
        import hbn_engine.runtime  # noqa: F401
    except ImportError:
        return False
    return True


def test_demo_quick(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("animal_shape_mnist.data", reason="animal-shape-mnist is not installed")
    from hbn_engine.demo import run_demo

    engine = _runtime_available()
    res = run_demo(str(tmp_path), quick=True, engine=engine, verbose=False)
    v = res["variants"]
    assert list(v) == ["fprec", "wbin", "fbin", "hybrid"]
    assert v["fprec"]["accuracy"] > 0.3          # real learning, chance is 0.1
    part = res["partition"]
    assert set(part["errors"]) == {"conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"}
    assert part["weight_binary"] == partition(part["metrics"], 0.4)
    kinds = v["hybrid"]["layers"]
    assert kinds["conv1"] == "fprec"
    assert sorted(n for n, k in kinds.items() if k == "wbin") == sorted(part["weight_binary"])
    eq = {k: e["equivalent_flops"] for k, e in v.items()}
    assert eq["fbin"] <= eq["hybrid"] <= eq["wbin"] == pytest.approx(eq["fprec"])
    assert (tmp_path / "results.json").exists() and (tmp_path / "table.md").exists()
    assert "Hybrid (Alg. 1)" in res["table"]
    if not engine:
        pytest.skip("hbn_engine.runtime/exporter not importable: engine check not run")
    for name, e in v.items():
        info = (name, e["accuracy"], e["engine"])
        assert e["engine"]["status"] == "ok", info
        assert e["engine"]["accuracy"] == e["accuracy"], info
        assert e["engine"]["mismatches"] == 0, info


def test_mini_sketchanet_builder() -> None:
    from hbn_engine.demo import NAMES, mini_sketchanet

    m = mini_sketchanet("fbin", 10, width=4)
    assert list(m.hbn_layers) == NAMES
    assert m.hbn_layers["conv1"] == "fprec" and m.hbn_layers["fc8"] == "fprec"
    assert isinstance(m.conv2, FullBinConv2d) and isinstance(m.fc6, FullBinLinear)
    h = mini_sketchanet("fbin", 10, {"fc7": "wbin"}, width=4)
    assert h.hbn_layers["fc7"] == "wbin" and h.hbn_layers["fc6"] == "fbin"
    small = mini_sketchanet("wbin", 3, input_size=(1, 8, 8), width=4, binrelu=True)
    assert any(isinstance(mod, BinReLU) for mod in small.modules())
    assert small(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    with pytest.raises(ValueError):
        mini_sketchanet("hybrid")
    with pytest.raises(ValueError):
        mini_sketchanet("fbin", layers={"conv9": "wbin"})
    with pytest.raises(ValueError):
        mini_sketchanet("fbin", layers={"conv2": "int4"})
    with pytest.raises(ValueError):
        mini_sketchanet("fbin", layers={"conv1": "fbin"})
    with pytest.raises(ValueError):
        mini_sketchanet("fbin", input_size=(1, 4, 4))


def test_engine_layer_costs() -> None:
    if not _runtime_available():
        pytest.skip("hbn_engine.runtime/exporter not importable")
    from hbn_engine.demo import NAMES, mini_sketchanet

    def build(assignment):  # type: ignore[no-untyped-def]
        torch.manual_seed(0)
        return mini_sketchanet("fbin", 10, assignment, width=8)

    x = torch.rand(8, 1, 28, 28).numpy()
    costs = P.engine_layer_costs(build, NAMES, x, repeats=2)
    assert list(costs) == NAMES[1:] and all(c > 0 for c in costs.values())
    res = P.analyze(build({}), torch.from_numpy(x), costs=costs)
    assert res.costs == costs
    with pytest.raises(ValueError):
        P.engine_layer_costs(build, NAMES[:1], x)
    with pytest.raises(ValueError):
        P.engine_layer_costs(build, NAMES, x[0])


@pytest.mark.parametrize("kwargs", [{"ratio": 1.5}, {"strategies": ["random"]},
                                    {"budget_fraction": -0.1}, {"epochs": 0}])
def test_demo_rejects_bad_arguments_before_training(tmp_path, kwargs) -> None:  # type: ignore[no-untyped-def]
    from hbn_engine.demo import run_demo

    with pytest.raises(ValueError):
        run_demo(str(tmp_path), engine=False, verbose=False, **kwargs)
    assert not (tmp_path / "fprec.pt").exists()


def test_demo_check_engine_without_a_run_says_so(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from hbn_engine.demo import main

    assert main(["--out", str(tmp_path / "none"), "--check-engine"]) == 1
    assert "run the demo with --out" in capsys.readouterr().err
