"""hbn_engine.frontend units: exact sign thresholds, sign probing, the report and metadata,
`hbn inspect`, graph hygiene (dead code, in-place ops, parameters untouched)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine.cli import main  # noqa: E402
from hbn_engine.frontend import normalize, probe_sign, sign_thresholds  # noqa: E402
from hbn_engine.frontend.leaves import BinaryConv  # noqa: E402
from hbn_engine.nn import FullBinConv2d, WeightBinConv2d  # noqa: E402

from conftest import randomize_bn  # noqa: E402
from idioms.common import ApproxSign, HardBinaryConv  # noqa: E402
from idioms.models import DeadCode, RSignNet  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("strict", [True, False])
def test_sign_thresholds_exact_at_every_float(strict, rng) -> None:
    """bit(x) = (a*x + b < 0) (strict) or (<= 0), for float32 x on and around each threshold.
    a is a power of two (or 0) and b a float32, so a*x + b is exact in float64."""
    a = np.array([1.0, -1.0, 2.0, -0.5, 0.0, 0.0, 4.0, -8.0] * 8)
    b = rng.standard_normal(a.size).astype(np.float32).astype(np.float64)
    b[5::8] = 0.0  # a == 0, b == 0: sign(0)
    b[6::8] = 0.0  # threshold exactly 0
    thr, flip = sign_thresholds(a, b, strict)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(a != 0, -b / a, 0).astype(np.float32)
    steps = [np.nextafter(t, np.float32(-np.inf)), t, np.nextafter(t, np.float32(np.inf))]
    xs = np.stack(steps + [rng.standard_normal(a.size).astype(np.float32) for _ in range(8)]
                  + [np.zeros(a.size, np.float32), -np.zeros(a.size, np.float32)])
    got = np.where(flip, xs > thr, xs < thr)
    v = a * xs.astype(np.float64) + b
    want = v < 0 if strict else v <= 0
    np.testing.assert_array_equal(got, want)


def test_probe_sign_decides_by_what_forward_computes() -> None:
    like = torch.randn(2, 4, 5, 5)
    assert probe_sign(torch.sign, like, "s").zero == 0
    assert probe_sign(lambda x: torch.where(x >= 0, 1.0, -1.0), like, "w").zero == 1
    assert probe_sign(lambda x: torch.where(x > 0, 1.0, -1.0), like, "w").zero == -1
    approx = probe_sign(ApproxSign(), like, "a")
    assert approx is not None and approx.zero == 0
    for not_sign in (torch.tanh, lambda x: torch.sign(x + 0.1), lambda x: torch.sign(x) * 2,
                     lambda x: torch.sign(x - x.mean()), lambda x: x[:, :2]):
        assert probe_sign(not_sign, like, "n") is None


def _model(cls, shape=(3, 8, 8), seed=0):
    torch.manual_seed(seed)
    m = cls()
    x = torch.randn(8, *shape)
    randomize_bn(m, seed=seed, calib=x)
    return m.eval(), x


def test_normalised_graph_computes_what_the_model_does() -> None:
    model, x = _model(RSignNet)
    gm, report = normalize(model, x)
    assert any(isinstance(m, BinaryConv) and m.kind == "fbin" for m in gm.modules())
    with torch.no_grad():
        np.testing.assert_allclose(gm(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-5)
    assert report.changed


def test_dead_code_pruned_and_parameters_untouched() -> None:
    model, x = _model(DeadCode)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    gm, _ = normalize(model, x[:1])
    names = [n.target for n in gm.graph.nodes]
    assert "abs" not in [getattr(t, "__name__", t) for t in names]
    assert F.avg_pool2d not in names
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


class InPlace(nn.Module):
    """In-place ops on activations and on a parameter's .data inside forward."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Parameter(torch.ones(1, 4, 1, 1))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        y = self.conv(x)
        y.add_(self.b)
        F.relu(y, inplace=True)
        w = self.b.data.clamp_(0, 0.5)  # noqa: F841 (mutates nothing at export)
        return self.head(y.mean((2, 3)))


def test_in_place_ops_do_not_corrupt_values_or_parameters(tmp_path) -> None:
    torch.manual_seed(0)
    model = InPlace().eval()
    before = model.b.detach().clone()
    x = torch.randn(4, 3, 6, 6)
    hbn_engine.export(model, x[:1], str(tmp_path / "i.hbn"))
    assert torch.equal(model.b.detach(), before)
    with torch.no_grad():
        ref = model(x).numpy()  # the relu_ result is unused, its mutation is not
    np.testing.assert_allclose(hbn_engine.load(tmp_path / "i.hbn").run(x.numpy()), ref,
                               rtol=1e-5, atol=1e-5)


def test_report_metadata_and_inspect(tmp_path, capsys) -> None:
    model, x = _model(RSignNet)
    path = tmp_path / "r.hbn"
    report = hbn_engine.export(model, x[:1], str(path))
    text = str(report)
    assert "FullBin" in text and "conv" in text and "float" in text
    meta = hbn_engine.load(path).metadata
    assert meta["frontend"]["layers"] == [lr.to_json() for lr in report.layers]
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "layer kernels (export front end)" in out
    assert "input is torch.sign" in out and "weights are +-alpha" in out


def test_models_written_for_the_engine_export_as_before(tmp_path, capsys) -> None:
    """Only hbn_engine.nn layers and plain float layers: nothing rewritten, no front-end key
    (the zoo's files stay byte-identical), and the report still names every layer's kind."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                          FullBinConv2d(8, 8, 3, padding=1), WeightBinConv2d(8, 4, 3)).eval()
    path = tmp_path / "h.hbn"
    report = hbn_engine.export(model, torch.randn(1, 3, 8, 8), str(path))
    assert not report.changed
    assert report.kinds() == {"0": "fprec", "2": "fbin", "3": "wbin"}
    assert "frontend" not in hbn_engine.load(path).metadata
    assert main(["inspect", str(path)]) == 0
    assert "exported as written" in capsys.readouterr().out


def test_fullbin_without_bn_matches_its_definition(tmp_path) -> None:
    torch.manual_seed(3)
    layer = FullBinConv2d(8, 6, 3, padding=1, bn=False, activation=None).eval()
    assert layer.bn is None and "bn=False" in repr(layer)
    x = torch.randn(2, 8, 5, 5)
    sign_w, alpha = layer.binary_weight()
    want = F.conv2d(torch.where(x >= 0, 1.0, -1.0), sign_w, None, 1, 1) * alpha.view(1, -1, 1, 1)
    with torch.no_grad():
        want = want + layer.bias.view(1, -1, 1, 1)
        np.testing.assert_allclose(layer(x).numpy(), want.numpy(), rtol=1e-6, atol=1e-6)
    hbn_engine.export(layer, x, str(tmp_path / "f.hbn"))
    with torch.no_grad():
        np.testing.assert_array_equal(hbn_engine.load(tmp_path / "f.hbn").run(x.numpy()),
                                      layer(x).numpy())


def test_sign_zero_option_validated(tmp_path) -> None:
    with pytest.raises(ValueError, match="sign_zero"):
        hbn_engine.export(nn.Sequential(nn.Conv2d(3, 3, 1)), torch.randn(1, 3, 4, 4),
                          str(tmp_path / "x.hbn"), sign_zero="zero")


def test_weights_with_exact_zeros_stay_float_and_say_why() -> None:
    torch.manual_seed(5)
    conv = nn.Conv2d(4, 4, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.sign(conv.weight) * 0.5)
        conv.weight[0, 0, 0, 0] = 0.0  # torch.sign(0) = 0 in a "binarized" weight
    _, report = normalize(nn.Sequential(conv).eval(), torch.randn(1, 4, 6, 6))
    assert report.kinds() == {"0": "fprec"}
    assert "exact zeros" in report.layers[0].reason


def test_functional_binary_conv_naming(tmp_path) -> None:
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = HardBinaryConv(3, 4)

        def forward(self, x):
            return self.body(x)

    _, report = normalize(Net().eval(), torch.randn(1, 3, 6, 6))
    assert report.kinds() == {"body": "wbin"}


class NumpyInside(nn.Module):
    """fx cannot trace a forward that leaves torch (here numpy); it becomes one opaque node."""

    def forward(self, x):
        return torch.from_numpy(np.tanh(x.numpy()))


class NumpySign(nn.Module):
    def forward(self, x):
        return torch.from_numpy(np.where(x.numpy() >= 0, 1.0, -1.0).astype(np.float32))


def test_untraceable_module_falls_back_to_an_opaque_node(tmp_path) -> None:
    class Net(nn.Module):
        def __init__(self, act):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.act = act
            self.body = HardBinaryConv(4, 4)

        def forward(self, x):
            return self.body(self.act(self.conv(x)))

    x = torch.randn(2, 3, 6, 6)
    with pytest.raises(hbn_engine.exporter.ExportError,
                       match=r"module act \(NumpyInside\): torch.fx could not trace"):
        hbn_engine.export(Net(NumpyInside()).eval(), x, str(tmp_path / "a.hbn"))
    # the same fallback for a sign written in numpy: probed, recognised, exported
    model = Net(NumpySign()).eval()
    report = hbn_engine.export(model, x, str(tmp_path / "b.hbn"))
    assert report.kinds()["body"] == "fbin"
    with torch.no_grad():
        np.testing.assert_allclose(hbn_engine.load(tmp_path / "b.hbn").run(x.numpy()),
                                   model(x).numpy(), rtol=1e-5, atol=1e-5)


def test_ops_the_engine_gains_are_left_to_the_lowering() -> None:
    """The op registry knows prelu, so the front end leaves PReLU to the lowering, and RSign
    after RPReLU is not refused for exact zeros: PReLU maps a continuous value to a continuous
    one (zero only at zero)."""
    from hbn_engine.frontend import rewrite
    from idioms.networks import reactnet

    assert rewrite._engine_has(("prelu",))
    torch.manual_seed(0)
    model = reactnet("rprelu")
    x = torch.randn(4, 3, 32, 32)
    randomize_bn(model, calib=x)
    gm, report = normalize(model.eval(), x[:1])
    assert sum(isinstance(m, nn.PReLU) for m in gm.modules()) == 6
    assert sum(k == "fbin" for k in report.kinds().values()) == 6


@pytest.mark.parametrize("form", ["pool", "conv"])
def test_xnor_k_becomes_the_engines_input_scale(form, tmp_path) -> None:
    from hbn_engine.format import read_hbn
    from idioms.models import XnorK

    torch.manual_seed(0)
    model = XnorK(form)
    x = torch.randn(4, 3, 8, 8)
    randomize_bn(model, calib=x)
    report = hbn_engine.export(model.eval(), x[:1], str(tmp_path / "k.hbn"))
    assert report.kinds() == {"stem.conv": "fprec", "conv": "fbin", "head.fc": "fprec"}
    assert "input scale K" in report.layers[1].reason
    op = next(o for o in read_hbn(str(tmp_path / "k.hbn")).ops if o.type == "conv_fbin")
    assert op.attrs["input_scale"] == 1
