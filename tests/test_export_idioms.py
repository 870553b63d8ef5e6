"""The idiom corpus (tests/idioms): every model exports and matches PyTorch eval, with the
expected kernel kind per layer, or is refused with a message naming the node.

Exactness: binary layers compute integers, so the only legitimate differences are float
round-off in float layers (~1e-7 relative) and a value landing within round-off of a sign
threshold, where fp32 rounding may flip the bit. Such ties are counted on the normalised graph
(the inputs of every FullBin layer within 1e-5 of its threshold) and reported; a mismatch is
only tolerated when ties exist, and the counts are asserted small.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine.exporter import ExportError  # noqa: E402
from hbn_engine.frontend import normalize  # noqa: E402
from hbn_engine.frontend.leaves import BinaryConv  # noqa: E402

from conftest import randomize_bn  # noqa: E402
from idioms.models import IDIOMS  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
N = 16
REL_TOL = 1e-5


def inputs(shape: tuple[int, int, int], n: int, zeros: bool, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    if zeros:  # exact zeros where a sign rule at 0 decides the bit
        x[torch.rand(x.shape, generator=g) < 0.2] = 0.0
    return x


def ties(model: nn.Module, x: torch.Tensor, sign_zero: str = "exact") -> tuple[int, int]:
    """(bits, total): FullBin input bits of the normalised graph that differ between a float32
    and a float64 evaluation (values within fp32 round-off of a sign threshold), out of all
    FullBin input bits."""
    gm, _ = normalize(model, x, sign_zero=sign_zero)
    got: dict[str, list] = {}

    def grab(gmod: nn.Module, key: str) -> list:
        hooks = []
        for name, m in gmod.named_modules():
            if isinstance(m, BinaryConv) and m.kind == "fbin":
                hooks.append(m.register_forward_pre_hook(
                    lambda mod, a, name=name: got.setdefault(key, []).append(
                        (name, mod.input_signs(a[0]).float()))))
        return hooks

    g64 = copy.deepcopy(gm).double()
    hooks = grab(gm, "f32") + grab(g64, "f64")
    try:
        with torch.no_grad():
            gm(x)
            g64(x.double())
    finally:
        for h in hooks:
            h.remove()
    pairs = list(zip(got.get("f32", []), got.get("f64", [])))
    flips = sum(int((s32 != s64).sum()) for (_, s32), (_, s64) in pairs)
    return flips, sum(s32.numel() for (_, s32), _ in pairs)


def build(idiom, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    model = idiom.build()
    x = inputs(idiom.shape, N, idiom.zeros_in_input, seed)
    randomize_bn(model, seed=seed, calib=x)
    return model.eval(), x


def compare(y: np.ndarray, ref: np.ndarray, n_ties: int, what: str) -> dict:
    scale = float(np.abs(ref).max())
    assert scale > 0, f"{what}: degenerate reference"
    # the inputs must lead to different outputs, or top-1 agreement would mean nothing
    if len(ref) > 1:
        assert float(ref.std(axis=0).max()) > 1e-2 * scale, f"{what}: degenerate reference"
    err = float(np.abs(y - ref).max()) / scale
    agree = int((y.argmax(1) == ref.argmax(1)).sum()) if ref.ndim == 2 else len(ref)
    if n_ties == 0:
        assert err <= REL_TOL, f"{what}: max relative error {err:.3g}"
        assert agree == len(ref), f"{what}: top-1 agreement {agree}/{len(ref)}"
    return {"err": err, "top1": agree, "ties": n_ties}


EXPORTS = [i for i in IDIOMS if i.refuse is None]
REFUSALS = [i for i in IDIOMS if i.refuse is not None]


@pytest.mark.parametrize("idiom", EXPORTS, ids=[i.name for i in EXPORTS])
def test_idiom_exports_and_matches(idiom, tmp_path) -> None:
    model, x = build(idiom)
    path = tmp_path / f"{idiom.name}.hbn"
    report = hbn_engine.export(model, x[:1], str(path), sign_zero=idiom.sign_zero)
    kinds = report.kinds()
    for layer, kind in idiom.kinds.items():
        assert kinds.get(layer) == kind, f"{layer}: {kinds.get(layer)} (report:\n{report})"
    engine = hbn_engine.load(path)
    assert dict(engine.layers).items() >= {k: v for k, v in idiom.kinds.items()}.items()
    # The front end records its report only when it rewrote the graph (so files of models it
    # leaves alone, the zoo's among them, keep their bytes); hbn inspect then reads "layers".
    if "frontend" in engine.metadata:
        assert engine.metadata["frontend"]["layers"] == [lr.to_json() for lr in report.layers]
    else:
        assert all(lr.kind == kind for lr in report.layers
                   for name, kind in engine.layers if name == lr.name)
    ref_model = idiom.reference(model) if idiom.reference else model
    with torch.no_grad():
        ref = ref_model(x).numpy()
    n_ties, n_bits = ties(model, x, idiom.sign_zero)
    res = compare(engine.run(x.numpy()), ref, n_ties, idiom.name)
    assert n_ties <= 1e-3 * max(n_bits, 1), f"{n_ties} of {n_bits} sign bits at a threshold"
    if idiom.reference:  # the model's own semantics differ: show that they really do
        with torch.no_grad():
            own = model(x).numpy()
        assert np.abs(own - ref).max() > 1e-3 * np.abs(ref).max()
    print(f"{idiom.name}: {res}")


@pytest.mark.parametrize("idiom", REFUSALS, ids=[i.name for i in REFUSALS])
def test_idiom_refused_naming_the_node(idiom, tmp_path) -> None:
    model, x = build(idiom)
    with pytest.raises(ExportError, match=idiom.refuse):
        hbn_engine.export(model, x[:1], str(tmp_path / "r.hbn"), sign_zero=idiom.sign_zero)


# whole networks written without hbn_engine.nn ------------------------------------------------
from idioms import networks  # noqa: E402

NETWORKS = [
    pytest.param("birealnet", "rprelu", id="birealnet-rprelu"),
    pytest.param("reactnet", "rprelu", id="reactnet-rprelu"),
    pytest.param("birealnet", "none", id="birealnet-no-activation"),
    pytest.param("reactnet", "none", id="reactnet-no-activation"),
    pytest.param("xnor_nin", None, id="xnor-nin"),
    pytest.param("relusignnet", "none", id="relusignnet-01-activations"),
    pytest.param("relusignnet", "rprelu", id="relusignnet-01-activations-rprelu"),
]


def build_network(arch: str, act, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(seed)
    if arch == "xnor_nin":
        model = networks.binop_binarize(networks.xnor_nin())
    else:
        model = getattr(networks, arch)(act)
    x = inputs((3, 32, 32), 32, False, seed)
    randomize_bn(model, seed=seed, calib=x)
    return model.eval(), x


@pytest.mark.parametrize("arch,act", NETWORKS)
def test_whole_network(arch, act, tmp_path) -> None:
    model, x = build_network(arch, act)
    path = tmp_path / f"{arch}.hbn"
    report = hbn_engine.export(model, x[:1], str(path))
    kinds = report.kinds()
    assert all(k in ("fbin", "wbin", "fprec") for k in kinds.values())
    binary = [n for n, k in kinds.items() if k == "fbin"]
    floats = [n for n, k in kinds.items() if k == "fprec"]
    # every binary conv became FullBin; only the stem, the 1x1 downsample convs and the
    # classifier stay float
    if arch == "xnor_nin":
        assert len(binary) == 7 and floats == ["xnor.0", "xnor.13"], str(report)
    else:
        assert all("downsample" in n or "shortcut" in n or n in ("conv1", "fc")
                   for n in floats), str(report)
        assert len(binary) == (3 if arch == "birealnet" else 6), str(report)
    if arch == "relusignnet":  # every binary conv takes {0, 1} inputs
        assert all("{0, 1}-valued" in lr.reason for lr in report.layers if lr.kind == "fbin")
    engine = hbn_engine.load(path)
    with torch.no_grad():
        ref = model(x).numpy()
    n_ties, n_bits = ties(model, x)
    res = compare(engine.run(x.numpy()), ref, n_ties, arch)
    res_b1 = compare(engine.run(x[:1].numpy()), ref[:1], n_ties, arch)
    assert n_ties <= 1e-3 * n_bits
    print(f"{arch}-{act}: {res} batch1 err {res_b1['err']:.2g}, {n_bits} sign bits")
