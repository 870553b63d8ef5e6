"""hbn_engine.models: shapes of every model/variant, layer naming and kinds, the paper's
default assignments, ``layers=`` overrides and their errors, fx traceability, training."""
from __future__ import annotations

import pytest
import torch
import torch.fx
from torch import nn

from hbn_engine import models
from hbn_engine.nn import BINARY_LAYERS, FullBinConv2d, FullBinLinear, WeightBinConv2d, \
    WeightBinLinear

BUILDERS = {"alexnet": models.alexnet, "resnet18": models.resnet18,
            "sketchanet": models.sketchanet, "squeezenet": models.squeezenet}
INPUT = {"alexnet": (3, 227, 227), "resnet18": (3, 224, 224), "sketchanet": (1, 225, 225),
         "squeezenet": (3, 224, 224)}
COMBOS = [(a, v) for a in BUILDERS for v in ("fprec", "wbin", "fbin", "hybrid")]
COMBOS.append(("alexnet", "hybrid2"))
TYPES = {"fprec": (nn.Conv2d, nn.Linear), "wbin": (WeightBinConv2d, WeightBinLinear),
         "fbin": (FullBinConv2d, FullBinLinear)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def meta_model(arch: str, variant: str = "hybrid", **kw) -> nn.Module:
    # Structure-only checks need no weights: build on the meta device (instant for AlexNet).
    with torch.device("meta"):
        return BUILDERS[arch](variant, **kw)


@pytest.mark.parametrize("arch,variant", COMBOS)
def test_forward_shape_at_paper_input_size(arch: str, variant: str) -> None:
    torch.manual_seed(0)
    model = BUILDERS[arch](variant, num_classes=10).eval()
    assert model.input_size == INPUT[arch]
    with torch.no_grad():
        y = model(torch.randn(2, *model.input_size))
    assert y.shape == (2, 10) and torch.isfinite(y).all()


@pytest.mark.parametrize("arch,variant", COMBOS)
def test_layers_named_and_typed_as_declared(arch: str, variant: str) -> None:
    model = meta_model(arch, variant)
    assert model.hbn_layers == models.default_layers(arch, variant)
    assert list(model.hbn_layers) == models.layer_names(arch)
    modules = dict(model.named_modules())
    for name, kind in model.hbn_layers.items():
        assert isinstance(modules[name], TYPES[kind]), (name, kind, type(modules[name]))
    first = models.layer_names(arch)[0]
    assert model.hbn_layers[first] == "fprec"
    # every conv/linear of the model is one of the configurable layers
    layers = {n for n, m in modules.items()
              if isinstance(m, (nn.Conv2d, nn.Linear) + BINARY_LAYERS[1:])}
    assert layers == set(model.hbn_layers)


def test_paper_default_assignments() -> None:
    a = models.default_layers("alexnet", "hybrid")
    assert a == {"conv1": "fprec", "conv2": "fbin", "conv3": "fbin", "conv4": "fbin",
                 "conv5": "fbin", "fc6": "wbin", "fc7": "wbin", "fc8": "fprec"}
    assert models.default_layers("alexnet", "hybrid2") == {**a, "fc8": "wbin"}
    assert models.default_layers("alexnet", "fbin")["fc8"] == "fprec"
    assert models.default_layers("alexnet", "wbin")["fc8"] == "fprec"
    s = models.default_layers("sketchanet", "hybrid")
    assert [s[n] for n in models.layer_names("sketchanet")] == \
        ["fprec"] + ["fbin"] * 4 + ["wbin"] * 3
    assert models.default_layers("sketchanet", "fbin")["fc8"] == "fprec"
    r = models.default_layers("resnet18", "hybrid")
    names = models.layer_names("resnet18")
    cut = names.index("layer3.1.conv1")
    assert all(r[n] == "fbin" for n in names[1:cut])
    assert all(r[n] == "wbin" for n in names[cut:])
    assert r["layer3.0.downsample"] == "fbin" and r["layer4.0.downsample"] == "wbin"
    q = models.default_layers("squeezenet", "hybrid")
    assert q["fire2.expand3x3"] == "wbin" and q["fire3.squeeze"] == "wbin"
    assert q["fire3.expand1x1"] == "fbin" and q["fire8.expand3x3"] == "fbin"
    assert q["fire9.expand1x1"] == "wbin" and q["conv10"] == "wbin"
    assert sum(k == "wbin" for k in q.values()) == 13  # Table 11: 12 WBin rows + conv10
    for arch in BUILDERS:
        for variant in ("wbin", "fbin"):
            kinds = models.default_layers(arch, variant)
            assert list(kinds.values())[1:-1] == [variant] * (len(kinds) - 2)


def test_layers_override() -> None:
    model = meta_model("alexnet", "fbin", layers={"fc8": "wbin", "conv3": "fprec"})
    assert model.hbn_layers["fc8"] == "wbin" and model.hbn_layers["conv3"] == "fprec"
    assert model.hbn_layers["conv2"] == "fbin"
    assert isinstance(model.fc8, WeightBinLinear) and isinstance(model.conv3, nn.Conv2d)
    r = meta_model("resnet18", "fprec", layers={"layer2.0.downsample": "wbin",
                                                 "layer1.1.conv2": "fbin"})
    assert isinstance(r.get_submodule("layer2.0.downsample"), WeightBinConv2d)
    assert isinstance(r.get_submodule("layer1.1.conv2"), FullBinConv2d)
    q = meta_model("squeezenet", "fprec", layers={"fire2.squeeze": "fbin"})
    assert isinstance(q.get_submodule("fire2.squeeze"), FullBinConv2d)
    assert models.layer_names("squeezenet")[:3] == ["conv1", "fire2.squeeze",
                                                    "fire2.expand1x1"]


def test_override_and_argument_errors() -> None:
    with pytest.raises(ValueError, match="conv9"):
        models.alexnet("hybrid", layers={"conv9": "wbin"})
    with pytest.raises(ValueError, match="xnor"):
        models.sketchanet("fprec", layers={"conv2": "xnor"})
    with pytest.raises(ValueError, match="first layer 'conv1'"):
        models.resnet18("fprec", layers={"conv1": "wbin"})
    with pytest.raises(ValueError, match="hybrid2"):
        models.resnet18("hybrid2")
    with pytest.raises(ValueError, match="variant"):
        models.squeezenet("binary")
    with pytest.raises(ValueError, match="num_classes"):
        models.squeezenet("fprec", num_classes=0)
    with pytest.raises(TypeError, match="mapping"):
        models.alexnet("fprec", layers=["conv2"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="vgg"):
        models.layer_names("vgg")
    with pytest.raises(ValueError, match="variant"):
        models.default_layers("alexnet", "nope")


class _LeafTracer(torch.fx.Tracer):
    # The exporter's view: the binary layers are single ops.
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, BINARY_LAYERS) or super().is_leaf_module(m, qualname)


@pytest.mark.parametrize("arch", list(BUILDERS))
def test_fx_traceable_with_binary_layers_as_leaves(arch: str) -> None:
    model = meta_model(arch, "hybrid")
    graph = _LeafTracer().trace(model)
    called = [n.target for n in graph.nodes if n.op == "call_module"]
    assert [c for c in called if c in model.hbn_layers] == list(model.hbn_layers)


def test_traced_graph_matches_eager() -> None:
    torch.manual_seed(0)
    model = models.squeezenet("hybrid", num_classes=5).eval()
    gm = torch.fx.GraphModule(model, _LeafTracer().trace(model))
    x = torch.randn(1, 3, 96, 96)  # global pooling: any size >= 35 runs
    with torch.no_grad():
        assert torch.equal(gm(x), model(x))


def test_hybrid_resnet_trains() -> None:
    torch.manual_seed(0)
    model = models.resnet18("hybrid", num_classes=4).train()
    x = torch.randn(2, 3, 64, 64)  # small input keeps this fast; pooling is adaptive
    loss = nn.functional.cross_entropy(model(x), torch.tensor([1, 3]))
    loss.backward()
    modules = dict(model.named_modules())
    for name in model.hbn_layers:
        g = modules[name].weight.grad
        assert g is not None and g.abs().sum() > 0, name
