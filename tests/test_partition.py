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
    inv = {"a": 0.01, "b": 0.001, "c": 0.1}
    # mean rule (default): the two terms have equal means over the candidates
    g = (1.5 / 3) / (0.111 / 3)
    assert default_gamma(errors, flops) == pytest.approx(g)
    assert default_gamma(errors, flops, "mean") == pytest.approx(g)
    m = layer_metrics(errors, flops)
    assert m == pytest.approx({n: errors[n] + g * inv[n] for n in errors})
    assert sum(g * inv[n] for n in errors) == pytest.approx(sum(errors.values()))
    # median rule: median(E) / median(1/NF)
    assert default_gamma(errors, flops, "median") == pytest.approx(0.4 / 0.01)
    assert layer_metrics(errors, flops, "median") == pytest.approx(
        {"a": 0.2 + 0.4, "b": 0.4 + 0.04, "c": 0.9 + 4.0})
    # range rule: spread of E / spread of 1/NF = 0.7 / (0.1 - 0.001)
    gr = 0.7 / 0.099
    assert default_gamma(errors, flops, "range") == pytest.approx(gr)
    mr = layer_metrics(errors, flops, "range")
    assert max(mr.values()) - mr["c"] == 0.0
    for rule in P.GAMMA_RULES:
        assert default_gamma(errors, {"a": 5.0, "b": 5.0, "c": 5.0}, rule) == 0.0
    with pytest.raises(ValueError):
        default_gamma(errors, flops, "geometric")
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


# ---------------------------------------------------------------- gamma bands

def test_gamma_bands_hand_case() -> None:
    # M = E + g / NF. At g = 0 the top error (c) is alone; as g grows the cheap layer b catches up
    # (M_b = M_c at g = 0.5 / (1 - 0.01) ...) and finally b alone wins.
    errors = {"a": 0.1, "b": 0.2, "c": 0.7, "d": 0.15}
    costs = {"a": 100.0, "b": 1.0, "c": 100.0, "d": 100.0}
    bands = P.gamma_bands(errors, costs, 0.25)
    assert bands[0].lo == 0.0 and math.isinf(bands[-1].hi)
    assert all(x.hi == y.lo for x, y in zip(bands, bands[1:]))
    assert bands[0].weight_binary == ("c",) and bands[-1].weight_binary == ("b",)
    # Exactly one switch, where M_b = M_c: 0.2 + g = 0.7 + g / 100
    assert len(bands) == 2
    assert bands[1].lo == pytest.approx(0.5 / 0.99, rel=1e-5)
    assert P.band_of(bands, 0.0) is bands[0] and P.band_of(bands, 1e9) is bands[1]
    with pytest.raises(ValueError):
        P.band_of(bands, -1.0)


@pytest.mark.parametrize("seed", range(4))
def test_gamma_bands_agree_with_partition(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"l{i}" for i in range(7)]
    errors = {n: rng.uniform(0.3, 0.45) for n in names}
    costs = {n: 10 ** rng.uniform(3, 7) for n in names}
    bands = P.gamma_bands(errors, costs, 0.4)
    for b in bands:
        if math.isinf(b.hi):
            probes = [b.lo * 2 + 1, b.lo * 1e3 + 1e9]
        elif b.lo == 0:
            probes = [0.0, b.hi / 2]
        else:
            probes = [b.lo * (1 + 1e-4), math.sqrt(b.lo * b.hi), b.hi * (1 - 1e-4)]
        for g in probes:
            m = layer_metrics(errors, costs, g)
            assert tuple(partition(m, 0.4)) == b.weight_binary, (g, b)
    assert all(x.weight_binary != y.weight_binary for x, y in zip(bands, bands[1:]))


def test_gamma_bands_equal_costs_single_band() -> None:
    bands = P.gamma_bands({"a": 0.1, "b": 0.5, "c": 0.2}, {"a": 3.0, "b": 3.0, "c": 3.0}, 0.4)
    assert len(bands) == 1 and bands[0].weight_binary == ("b",)


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
    assert res.kinds == {"0": "fprec", "2": "fbin", "4": "fbin", "6": "fbin", "8": "fprec"}
    # P counts the FullBin layers only: the float first conv and float classifier never compete
    assert res.candidates == ["2", "4", "6"]
    assert list(res.errors) == res.candidates and res.errors == res.errors_scaled
    assert res.errors_literal == pytest.approx(
        {n: v for n, v in binarization_errors(model, x, scaled=False).items() if n in res.candidates})
    assert res.gamma_rule == "mean"
    assert res.gamma == pytest.approx(default_gamma(res.errors, res.costs, "mean"))
    assert res.rule_gammas == pytest.approx({r: default_gamma(res.errors, res.costs, r)
                                             for r in P.GAMMA_RULES})
    assert res.metrics == pytest.approx(layer_metrics(res.errors, res.costs, res.gamma))
    assert res.weight_binary == partition(res.metrics, 0.5)
    assert 1 <= len(res.weight_binary) <= 1  # K / 3 <= 0.5
    assert res.band.lo <= res.gamma < res.band.hi
    assert res.band.weight_binary == tuple(res.weight_binary)
    assign = hybrid_assignment(model, x, ratio=0.5)
    assert assign == res.assignment
    assert assign["0"] == "fprec" and assign["8"] == "fprec"
    assert {k for k, v in assign.items() if v == "wbin"} == set(res.weight_binary)
    assert {k for k, v in assign.items() if v == "fbin"} == set(res.candidates) - set(res.weight_binary)
    literal = P.analyze(model, x, ratio=0.5, scaled=False, gamma="median")
    assert literal.errors == literal.errors_literal and literal.gamma_rule == "median"
    assert P.analyze(model, x, ratio=0.5, gamma=2.0).gamma_rule is None


def test_hybrid_assignment_gamma_drives_cheapest_fullbin_layer_to_wbin() -> None:
    # A huge gamma makes 1/NF dominate: the cheapest *FullBin* layer keeps float input; the float
    # classifier (cheaper still) is not a candidate and stays float.
    torch.manual_seed(0)
    model = _toy_fbin_model()
    x = torch.randn(16, 1, 6, 6)
    flops = layer_flops(model, x)
    cheapest = min(["2", "4", "6"], key=lambda n: flops[n])
    assert flops["8"] < flops[cheapest]
    res = P.analyze(model, x, ratio=0.34, gamma=1e12)
    assert res.weight_binary == [cheapest]
    assert res.assignment["8"] == "fprec"


def test_analyze_needs_fullbin_layers_or_explicit_candidates() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.Flatten(),
                          nn.Linear(4 * 2 * 2, 3))
    x = torch.randn(4, 1, 6, 6)
    with pytest.raises(ValueError, match="no FullBin layers"):
        P.analyze(model, x)
    res = P.analyze(model, x, ratio=0.5, candidates=["4", "2"])
    assert res.candidates == ["2", "4"] and res.assignment["0"] == "fprec"
    assert set(res.assignment.values()) <= {"fprec", "wbin"}
    with pytest.raises(ValueError):
        P.analyze(model, x, candidates=["nope"])
    with pytest.raises(TypeError):
        P.analyze(model, x, candidates="2")


def test_latency_aware_costs() -> None:
    torch.manual_seed(0)
    model = _toy_fbin_model()
    x = torch.randn(16, 1, 6, 6)
    times = P.measure_layer_times(model, x, repeats=2)
    assert list(times) == ["0", "2", "4", "6", "8"] and all(t > 0 for t in times.values())
    fixed = {"2": 1.0, "4": 1.0, "6": 1e-6}
    res = P.analyze(model, x, ratio=0.34, gamma=1.0, costs=fixed)
    assert res.costs == fixed and res.weight_binary == ["6"]
    res2 = P.analyze(model, x, ratio=0.34, gamma=1.0, costs=lambda name, mod: fixed[name])
    assert res2.weight_binary == ["6"]
    assert set(P.analyze(model, x, costs="latency").costs) == {"2", "4", "6"}
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


def test_assignment_from_selection_keeps_other_kinds() -> None:
    kinds = {"a": "fprec", "b": "fbin", "c": "fbin", "d": "fprec", "e": "wbin"}
    assert assignment_from_selection(kinds, ["c"]) == {
        "a": "fprec", "b": "fbin", "c": "wbin", "d": "fprec", "e": "wbin"}
    assert assignment_from_selection(kinds, []) == kinds
    with pytest.raises(ValueError):
        assignment_from_selection(kinds, ["z"])
    with pytest.raises(ValueError):
        assignment_from_selection({"a": "int8"}, [])
    with pytest.raises(TypeError):
        assignment_from_selection(["a", "b"], ["b"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        assignment_from_selection(kinds, "c")


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
    errors = {"a": 0.1, "b": 0.2, "c": 0.7, "d": 0.15}
    costs = {"a": 100.0, "b": 1.0, "c": 100.0, "d": 100.0}
    bands = P.gamma_bands(errors, costs, 0.25)
    P.plot_metrics(layer_metrics(errors, costs, 0.3), ["c"], tmp_path / "bands.png",
                   bands=bands, gamma=0.3, rule_gammas=P.rule_gammas(errors, costs))
    assert len((tmp_path / "bands.png").read_bytes()) > len(data)
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


@pytest.mark.parametrize("arch", ["alexnet", "resnet18", "sketchanet", "squeezenet"])
def test_zoo_fbin_picks_only_fullbin_layers(arch: str, one_torch_thread: None) -> None:
    models = pytest.importorskip("hbn_engine.models")
    torch.manual_seed(0)
    build = getattr(models, arch)
    fbin = build("fbin", num_classes=5)
    x = torch.randn(2, *fbin.input_size)
    ratio = 0.6 if arch == "squeezenet" else 0.4  # the paper's R per model
    res = P.analyze(fbin, x, ratio=ratio)
    kinds = dict(fbin.hbn_layers)
    assert res.layers == models.layer_names(arch) and res.kinds == kinds
    fullbin = [n for n, k in kinds.items() if k == "fbin"]
    assert res.candidates == fullbin
    assert set(kinds.values()) != {"fbin"}  # every zoo FBin model has non-FullBin layers
    assert res.weight_binary and set(res.weight_binary) <= set(fullbin)
    assert len(res.weight_binary) / len(fullbin) <= ratio
    for name, kind in kinds.items():
        assert res.assignment[name] == ("wbin" if name in res.weight_binary else kind), name
    # Also at the extremes of gamma, where the cheapest layer wins: never a non-FullBin layer.
    for gamma in (0.0, 1e15):
        assert set(partition(layer_metrics(res.errors, res.costs, gamma), ratio)) <= set(fullbin)
    hybrid = build("fbin", num_classes=5, layers=res.assignment)
    assert hybrid.hbn_layers == res.assignment


def test_binarization_error_of_gaussian_inputs_is_near_constant() -> None:
    # Standard normal I: scaled E = Var|z| = 1 - 2/pi, literal E = E(|z| - 1)^2 = 2 - 2 sqrt(2/pi)
    model = _one_layer_model(1.0, 0.0)
    x = torch.randn(64, 1, 64, 64, generator=torch.Generator().manual_seed(3))
    scaled, literal = P.binarization_error_pair(model, x)
    assert scaled["0"] == pytest.approx(1 - 2 / math.pi, abs=0.005)
    assert literal["0"] == pytest.approx(2 - 2 * math.sqrt(2 / math.pi), abs=0.005)
    assert binarization_errors(model, x) == scaled
    assert binarization_errors(model, x, scaled=False) == literal


# ---------------------------------------------------------------- engine costs

def _runtime_available() -> bool:
    try:
        import hbn_engine.exporter  # noqa: F401
        import hbn_engine.runtime  # noqa: F401
    except ImportError:
        return False
    return True


def test_engine_layer_costs() -> None:
    if not _runtime_available():
        pytest.skip("hbn_engine.runtime/exporter not importable")
    from hbn_engine.demo import NAMES, default_kinds, mini_sketchanet

    def build(assignment):  # type: ignore[no-untyped-def]
        torch.manual_seed(0)
        return mini_sketchanet("fbin", 10, assignment, width=8)

    x = torch.rand(8, 1, 28, 28).numpy()
    kinds = default_kinds("fbin")  # conv1 and fc8 float: only conv2..fc7 are candidates
    costs = P.engine_layer_costs(build, kinds, x, repeats=2)
    assert list(costs) == NAMES[1:-1] and all(c > 0 for c in costs.values())
    res = P.analyze(build({}), torch.from_numpy(x), costs=costs)
    assert res.costs == costs
    # A plain name list means first layer float, the rest FullBin (every later layer a candidate)
    assert list(P.engine_layer_costs(build, NAMES[:3], x, repeats=1)) == NAMES[1:3]
    with pytest.raises(ValueError):
        P.engine_layer_costs(build, NAMES[:1], x)
    with pytest.raises(ValueError):
        P.engine_layer_costs(build, {"conv1": "fprec", "fc8": "fprec"}, x)
    with pytest.raises(ValueError):
        P.engine_layer_costs(build, kinds, x[0])
