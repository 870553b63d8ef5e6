"""The paper's model zoo: AlexNet, ResNet-18, Sketch-A-Net and SqueezeNet 1.0 (needs torch).

Every builder takes ``variant`` ("fprec", "wbin", "fbin", "hybrid"; AlexNet also "hybrid2"),
``num_classes`` and ``layers``, a mapping ``{layer name: "fprec" | "wbin" | "fbin"}`` that
overrides the variant per layer. A layer name is the qualified module name of the layer in
``model.named_modules()`` (``"conv2"``, ``"fc6"``, ``"layer1.0.conv1"``, ``"fire2.squeeze"``);
:func:`layer_names` lists them and :func:`default_layers` gives a variant's assignment. The
first conv is always full precision.

The returned model (in training mode, like torchvision's) has ``hbn_layers`` (name -> kind
built, forward order) and ``input_size`` ((C, H, W) of one image) attributes. Architecture
choices and every difference from the paper's tables: docs/models.md.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Optional

from torch import nn

from hbn_engine.models import _alexnet, _resnet, _sketchanet, _squeezenet
from hbn_engine.models._common import KINDS, HBNSequential, check_num_classes, resolve_kinds

__all__ = ["ARCHS", "KINDS", "alexnet", "default_layers", "layer_names", "resnet18",
           "sketchanet", "squeezenet", "build"]

_SPECS: dict[str, ModuleType] = {
    "alexnet": _alexnet,
    "resnet18": _resnet,
    "sketchanet": _sketchanet,
    "squeezenet": _squeezenet,
}
ARCHS = tuple(_SPECS)


def _spec(arch: str) -> ModuleType:
    if arch not in _SPECS:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {list(ARCHS)}")
    return _SPECS[arch]


def layer_names(arch: str) -> list[str]:
    """The configurable conv/linear layers of ``arch`` in forward order, first layer included."""
    return list(_spec(arch).NAMES)


def default_layers(arch: str, variant: str) -> dict[str, str]:
    """The paper's kind for every layer of ``arch`` in ``variant`` (forward order)."""
    spec = _spec(arch)
    if variant not in spec.DEFAULTS:
        raise ValueError(f"unknown variant {variant!r} for {arch}; expected one of "
                         f"{sorted(spec.DEFAULTS)}")
    return dict(spec.DEFAULTS[variant])


def build(arch: str, variant: str = "hybrid", num_classes: int = 1000,
          layers: Optional[Mapping[str, str]] = None) -> nn.Module:
    """Build ``arch`` by name (see the per-architecture builders)."""
    spec = _spec(arch)
    kinds = resolve_kinds(arch, spec.NAMES, spec.DEFAULTS, variant, layers)
    model = HBNSequential(spec.build(kinds, check_num_classes(num_classes)))
    model.hbn_layers = {n: kinds[n] for n in spec.NAMES}
    model.input_size = tuple(spec.INPUT_SIZE)
    model.arch = arch
    model.variant = variant
    return model


def alexnet(variant: str = "hybrid", num_classes: int = 1000,
            layers: Optional[Mapping[str, str]] = None) -> nn.Module:
    """AlexNet (96-256-384-384-256, ungrouped, as in XNOR-Net), input 3x227x227.

    Variants: "hybrid" = Hybrid-1 (conv2-5 FullBin, fc6-7 WeightBin, fc8 float), "hybrid2"
    (fc8 weight-binarized too), "wbin"/"fbin" (fc8 float), "fprec".
    """
    return build("alexnet", variant, num_classes, layers)


def sketchanet(variant: str = "hybrid", num_classes: int = 1000,
               layers: Optional[Mapping[str, str]] = None) -> nn.Module:
    """Sketch-A-Net, input 1x225x225 (TU-Berlin has 250 classes: pass num_classes=250).

    Hybrid: conv2-5 FullBin, fc6-8 WeightBin. FBin keeps fc8 float, WBin binarizes it.
    """
    return build("sketchanet", variant, num_classes, layers)


def resnet18(variant: str = "hybrid", num_classes: int = 1000,
             layers: Optional[Mapping[str, str]] = None) -> nn.Module:
    """ResNet-18, input 3x224x224. Hybrid: layer1-layer3.0 FullBin, layer3.1-layer4 WeightBin;
    fc weight-binarized in every binary variant."""
    return build("resnet18", variant, num_classes, layers)


def squeezenet(variant: str = "hybrid", num_classes: int = 1000,
               layers: Optional[Mapping[str, str]] = None) -> nn.Module:
    """SqueezeNet 1.0, input 3x224x224. Hybrid: fire2, fire9 and all squeeze layers WeightBin,
    the other expand layers FullBin; conv10 weight-binarized in every binary variant."""
    return build("squeezenet", variant, num_classes, layers)
