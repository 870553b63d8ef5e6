"""hbn_engine.flops against the paper's Tables 8-11 (per layer) and Tables 3, 4, 7 (totals).

The table values below are typed in from the paper's appendix. Paper units: parameters in
multiples of 1e5 (Bin column: FPrec / 32 for binarized layers), FLOPs in multiples of 1e7.
Rows the paper gets inconsistent (docs/models.md) are checked against the value our
architecture must give instead, with the reason next to them.
Accounting needs only shapes, so the models are built on the meta device (no weights).
"""
from __future__ import annotations

import pytest
import torch

from hbn_engine import flops, models

# name: (FPrec params, Bin params, FPrec FLOPs, Repeats, WBin FLOPs, FBin FLOPs, Hybrid FLOPs)
TABLE8_ALEXNET = {
    "conv1": (0.23, 0.232, 10.54, 0.00, 10.54, 10.54, 10.54),
    "conv2": (3.07, 0.096, 44.79, 0.00, 44.79, 0.77, 0.77),
    "conv3": (6.64, 0.207, 14.95, 0.71, 4.34, 0.07, 0.07),
    "conv4": (8.85, 0.276, 22.43, 0.71, 6.50, 0.11, 0.11),
    "conv5": (5.90, 0.184, 14.95, 0.60, 5.98, 0.10, 0.10),
    "fc6": (377.49, 11.796, 3.77, 0.00, 3.77, 0.07, 3.77),
    "fc7": (167.77, 5.243, 1.68, 0.00, 1.68, 0.03, 1.68),
    "fc8": (40.96, 1.280, 0.41, 0.00, 0.41, 0.41, 0.41),
}
TABLE9_SKETCHANET = {
    "conv1": (0.23, 0.232, 7.26, 0.00, 7.26, 7.26, 7.26),
    "conv2": (3.07, 0.096, 19.68, 0.00, 19.68, 0.34, 0.34),
    "conv3": (6.64, 0.207, 6.64, 0.58, 2.80, 0.05, 0.05),
    "conv4": (8.85, 0.276, 13.27, 0.62, 5.02, 0.09, 0.09),
    "conv5": (5.90, 0.184, 13.27, 0.61, 5.19, 0.09, 0.09),
    "fc6": (47.19, 1.475, 0.64, 0.00, 0.64, 0.01, 0.64),
    "fc7": (2.62, 0.082, 0.03, 0.00, 0.03, 0.00, 0.03),
    "fc8": (1.28, 0.040, 0.05, 0.00, 0.05, 0.05, 0.05),
}
TABLE10_RESNET18 = {
    "conv1": (0.09, 0.094, 11.80, 0.00, 11.80, 11.80, 11.80),
    "layer1.0.conv1": (0.37, 0.012, 11.56, 0.23, 8.86, 0.15, 0.15),
    "layer1.0.conv2": (0.37, 0.012, 11.56, 0.31, 7.99, 0.14, 0.14),
    "layer1.1.conv1": (0.37, 0.012, 11.56, 0.23, 8.90, 0.15, 0.15),
    "layer1.1.conv2": (0.37, 0.012, 11.56, 0.23, 8.86, 0.15, 0.15),
    "layer2.0.conv1": (0.74, 0.023, 5.78, 0.49, 2.92, 0.05, 0.05),
    "layer2.0.conv2": (1.47, 0.046, 11.56, 0.39, 7.02, 0.12, 0.12),
    "layer2.0.downsample": (0.08, 0.003, 0.64, 0.00, 0.64, 0.01, 0.01),
    "layer2.1.conv1": (1.47, 0.046, 11.56, 0.38, 7.19, 0.12, 0.12),
    "layer2.1.conv2": (1.47, 0.046, 11.56, 0.39, 7.08, 0.12, 0.12),
    "layer3.0.conv1": (2.95, 0.092, 5.78, 0.57, 2.46, 0.04, 0.04),
    "layer3.0.conv2": (5.90, 0.184, 11.56, 0.50, 5.74, 0.10, 0.10),
    "layer3.0.downsample": (0.33, 0.010, 0.64, 0.00, 0.64, 0.01, 0.01),
    "layer3.1.conv1": (5.90, 0.184, 11.56, 0.52, 5.51, 0.10, 5.51),
    "layer3.1.conv2": (5.90, 0.184, 11.56, 0.57, 5.00, 0.09, 5.00),
    "layer4.0.conv1": (11.80, 0.369, 5.78, 0.70, 1.76, 0.03, 1.76),
    "layer4.0.conv2": (23.59, 0.737, 11.56, 0.67, 3.83, 0.07, 3.83),
    "layer4.0.downsample": (1.31, 0.041, 0.64, 0.00, 0.64, 0.01, 0.64),
    "layer4.1.conv1": (23.59, 0.737, 11.56, 0.71, 3.38, 0.06, 3.38),
    "layer4.1.conv2": (23.59, 0.737, 11.56, 0.76, 2.73, 0.05, 2.73),
    "fc": (5.12, 0.160, 0.05, 0.00, 0.05, 0.05, 0.05),
}
TABLE11_SQUEEZENET = {
    "conv1": (0.14, 0.141, 16.77, 0.00, 16.77, 16.77, 16.77),
    "fire2.squeeze": (0.02, 0.000, 0.45, 0.00, 0.45, 0.01, 0.45),
    "fire2.expand1x1": (0.01, 0.000, 0.30, 0.00, 0.30, 0.01, 0.30),
    "fire2.expand3x3": (0.09, 0.003, 2.69, 0.25, 2.03, 0.03, 2.03),
    "fire3.squeeze": (0.02, 0.001, 0.60, 0.00, 0.60, 0.01, 0.60),
    "fire3.expand1x1": (0.01, 0.000, 0.30, 0.00, 0.30, 0.01, 0.01),
    "fire3.expand3x3": (0.09, 0.003, 2.69, 0.20, 2.15, 0.04, 0.04),
    "fire4.squeeze": (0.04, 0.001, 1.19, 0.00, 1.19, 0.02, 1.19),
    "fire4.expand1x1": (0.04, 0.001, 1.19, 0.00, 1.19, 0.02, 0.02),
    "fire4.expand3x3": (0.37, 0.012, 10.75, 0.33, 7.15, 0.12, 0.12),
    "fire5.squeeze": (0.08, 0.003, 0.60, 0.00, 0.60, 0.01, 0.60),
    "fire5.expand1x1": (0.04, 0.001, 0.30, 0.00, 0.30, 0.01, 0.01),
    "fire5.expand3x3": (0.37, 0.012, 2.69, 0.36, 1.73, 0.03, 0.03),
    "fire6.squeeze": (0.12, 0.004, 0.90, 0.00, 0.90, 0.02, 0.90),
    "fire6.expand1x1": (0.09, 0.003, 0.67, 0.00, 0.67, 0.01, 0.01),
    "fire6.expand3x3": (0.83, 0.026, 6.05, 0.48, 3.15, 0.05, 0.05),
    "fire7.squeeze": (0.18, 0.006, 1.34, 0.00, 1.34, 0.02, 1.34),
    "fire7.expand1x1": (0.09, 0.003, 0.67, 0.00, 0.67, 0.01, 0.01),
    "fire7.expand3x3": (0.83, 0.026, 6.05, 0.54, 2.77, 0.05, 0.05),
    "fire8.squeeze": (0.25, 0.008, 1.79, 0.00, 1.79, 0.03, 1.79),
    "fire8.expand1x1": (0.16, 0.005, 1.19, 0.00, 1.19, 0.02, 0.02),
    "fire8.expand3x3": (1.47, 0.046, 10.75, 0.63, 4.02, 0.07, 0.07),
    "fire9.squeeze": (0.33, 0.010, 0.55, 0.00, 0.55, 0.01, 0.55),
    "fire9.expand1x1": (0.16, 0.005, 0.28, 0.00, 0.28, 0.00, 0.28),
    "fire9.expand3x3": (1.47, 0.046, 2.49, 0.74, 0.66, 0.01, 0.66),
    "conv10": (5.12, 0.160, 8.65, 0.00, 8.65, 8.65, 8.65),
}

# Rows where the paper's table does not describe the network whose other columns it reports,
# with the value our (documented) architecture gives: (column, layer) -> (ours, reason).
# AlexNet: Table 8's parameter column is torchvision's 64-192-384-256-256 AlexNet, its FLOPs
# column the 96-256-384-384-256 one we build (XNOR-Net's).
ALEXNET_MISMATCH = {
    "conv1": 96 * 3 * 11 * 11, "conv2": 256 * 96 * 5 * 5, "conv3": 384 * 256 * 3 * 3,
    "conv4": 384 * 384 * 3 * 3, "conv5": 256 * 384 * 3 * 3,
}
# Sketch-A-Net: Table 9 repeats AlexNet's conv parameters and counts fc6 on a 6x6 map (as
# AlexNet's), while its FLOPs column is Sketch-A-Net's (7x7 map into fc6).
SKETCHANET_PARAM_MISMATCH = {
    "conv1": 64 * 1 * 15 * 15, "conv2": 128 * 64 * 5 * 5, "conv3": 256 * 128 * 3 * 3,
    "conv4": 256 * 256 * 3 * 3, "conv5": 256 * 256 * 3 * 3, "fc6": 512 * 256 * 7 * 7,
}
# ... and its fc8 FLOPs (0.05e7 = 512 * 1000) count 1000 classes while its params (1.28e5 =
# 512 * 250) count TU-Berlin's 250.
SKETCHANET_FC8_FLOPS = 512 * 250

REPEATS = {
    "alexnet": {n: r[3] for n, r in TABLE8_ALEXNET.items() if r[3]},
    "sketchanet": {n: r[3] for n, r in TABLE9_SKETCHANET.items() if r[3]},
    "resnet18": {n: r[3] for n, r in TABLE10_RESNET18.items() if r[3]},
    "squeezenet": {n: r[3] for n, r in TABLE11_SQUEEZENET.items() if r[3]},
}
NUM_CLASSES = {"alexnet": 1000, "sketchanet": 250, "resnet18": 1000, "squeezenet": 1000}


def close(ours: float, paper: float, last_digit: float, slack: float = 0.0) -> bool:
    """Within 2%, or within half a unit of the table's last printed digit (0.01 -> 0.005)
    plus ``slack`` (the rounding of the Repeats column the value was derived from)."""
    return abs(ours - paper) <= max(0.02 * abs(paper), 0.5 * last_digit + slack) + 1e-12


_cache: dict[tuple, flops.ModelSummary] = {}


def stats(arch: str, variant: str, layers=None, repeats=None) -> flops.ModelSummary:
    key = (arch, variant, tuple(sorted((layers or {}).items())), repeats is not None)
    if key not in _cache:
        with torch.device("meta"):
            model = models.build(arch, variant, NUM_CLASSES[arch], layers)
        _cache[key] = flops.summary(model, REPEATS[arch] if repeats else None)
    return _cache[key]


def by_name(summary: flops.ModelSummary) -> dict[str, flops.LayerStats]:
    return {r.name: r for r in summary.layers}


TABLES = {"alexnet": TABLE8_ALEXNET, "sketchanet": TABLE9_SKETCHANET,
          "resnet18": TABLE10_RESNET18, "squeezenet": TABLE11_SQUEEZENET}
# The model whose kinds Table N's Bin column describes (every layer but the first binarized).
BIN_VARIANT = {"alexnet": "hybrid2", "sketchanet": "wbin", "resnet18": "wbin",
               "squeezenet": "wbin"}


@pytest.mark.parametrize("arch", list(TABLES))
def test_rows_are_the_models_layers_in_order(arch: str) -> None:
    assert [r.name for r in stats(arch, "fprec").layers] == list(TABLES[arch])
    assert list(TABLES[arch]) == models.layer_names(arch)


@pytest.mark.parametrize("arch", list(TABLES))
def test_fprec_params_and_flops_per_layer(arch: str) -> None:
    rows = by_name(stats(arch, "fprec"))
    for name, paper in TABLES[arch].items():
        r = rows[name]
        if arch == "alexnet" and name in ALEXNET_MISMATCH:
            assert r.params == ALEXNET_MISMATCH[name], name
        elif arch == "sketchanet" and name in SKETCHANET_PARAM_MISMATCH:
            assert r.params == SKETCHANET_PARAM_MISMATCH[name], name
        else:
            assert close(r.params / 1e5, paper[0], 0.01), (name, r.params / 1e5, paper[0])
        if arch == "sketchanet" and name == "fc8":
            assert r.flops == SKETCHANET_FC8_FLOPS
        else:
            assert close(r.flops / 1e7, paper[2], 0.01), (name, r.flops / 1e7, paper[2])
        assert r.equivalent_flops == r.flops and r.binary_params == r.params


@pytest.mark.parametrize("arch", list(TABLES))
def test_bin_params_column(arch: str) -> None:
    rows = by_name(stats(arch, BIN_VARIANT[arch]))
    skip = ALEXNET_MISMATCH if arch == "alexnet" else (
        SKETCHANET_PARAM_MISMATCH if arch == "sketchanet" else {})
    for i, (name, paper) in enumerate(TABLES[arch].items()):
        r = rows[name]
        assert r.kind == ("fprec" if i == 0 else "wbin" if arch != "alexnet" or
                          name.startswith("fc") else "fbin")
        expected = r.params if i == 0 else r.params / 32
        assert r.binary_params == expected
        if name not in skip:
            assert close(r.binary_params / 1e5, paper[1], 0.001), (name, r.binary_params, paper[1])


@pytest.mark.parametrize("arch", list(TABLES))
@pytest.mark.parametrize("column,variant", [(4, "wbin"), (5, "fbin"), (6, "hybrid")])
def test_binary_flops_columns_with_paper_repeats(arch: str, column: int, variant: str) -> None:
    """WBin = FLOPs * (1 - Repeats), FBin = WBin / 58, Hybrid picks per layer (appendix C)."""
    rows = by_name(stats(arch, variant, repeats=True))
    for name, paper in TABLES[arch].items():
        r = rows[name]
        if arch == "sketchanet" and name == "fc8":
            assert r.equivalent_flops == SKETCHANET_FC8_FLOPS  # never FullBin, 250 classes
            continue
        slack = 0.005 * paper[2] / (58 if r.kind == "fbin" else 1)
        assert close(r.equivalent_flops / 1e7, paper[column], 0.01, slack), \
            (name, r.kind, r.equivalent_flops / 1e7, paper[column])


# Tables 3, 4, 7: FLOPs in millions (with the paper's repeats) and memory compression.
TOTALS = {
    ("alexnet", "fprec"): (1135, 1.0), ("alexnet", "wbin"): (780, 10.4),
    ("alexnet", "fbin"): (121, 10.4), ("alexnet", "hybrid"): (174, 10.4),
    ("alexnet", "hybrid2"): (174, 31.6),
    ("resnet18", "fprec"): (1814, 1.0), ("resnet18", "wbin"): (1030, 31.2),
    ("resnet18", "fbin"): (134, 31.2), ("resnet18", "hybrid"): (359, 31.2),
    ("sketchanet", "fprec"): (608, 1.0), ("sketchanet", "wbin"): (406, 29.2),
    ("sketchanet", "fbin"): (78, 19.7), ("sketchanet", "hybrid"): (85, 29.2),
    ("squeezenet", "fprec"): (610, 1.0), ("squeezenet", "wbin"): (412, 23.7),
    ("squeezenet", "fbin"): (92, 23.7), ("squeezenet", "hybrid"): (164, 23.7),
}


@pytest.mark.parametrize("arch,variant", list(TOTALS))
def test_model_totals_vs_tables_3_4_7(arch: str, variant: str) -> None:
    s = stats(arch, variant, repeats=True)
    paper_flops, paper_mem = TOTALS[(arch, variant)]
    ours_m = s.equivalent_flops / 1e6
    if arch == "squeezenet":
        # Table 11's Total row is not the sum of its own rows (FPrec rows sum to 818.9M, not
        # 610.9M); Table 7 copies the totals. We reproduce the sum of the paper's rows.
        column = {"fprec": 2, "wbin": 4, "fbin": 5, "hybrid": 6}[variant]
        row_sum = sum(r[column] for r in TABLE11_SQUEEZENET.values()) * 10
        assert abs(ours_m - row_sum) <= 0.02 * row_sum
        assert abs(ours_m - paper_flops) > 0.2 * paper_flops
    else:
        assert abs(ours_m - paper_flops) <= 0.02 * paper_flops + 0.5, (ours_m, paper_flops)
    if arch == "sketchanet" and variant != "fprec":
        # Table 9 computes memory from AlexNet's conv parameters; ours are Sketch-A-Net's.
        w = [64 * 15 * 15, 128 * 64 * 25, 256 * 128 * 9, 256 * 256 * 9, 256 * 256 * 9,
             512 * 256 * 49, 512 * 512, 512 * 250]
        last_float = variant == "fbin"
        binary = w[0] + sum(w[1:-1]) / 32 + (w[-1] if last_float else w[-1] / 32)
        assert s.compression == pytest.approx(sum(w) / binary)
        assert abs(s.compression - paper_mem) > 0.03 * paper_mem
    else:
        assert abs(s.compression - paper_mem) <= 0.01 * paper_mem, (s.compression, paper_mem)
    assert s.speedup == pytest.approx(s.flops / s.equivalent_flops)
    assert s.memory_bytes == pytest.approx(4 * s.binary_params)
    assert s.fp32_memory_bytes == 4 * s.params


def test_table3_last_layer_float_variants() -> None:
    """Table 3's ImageNet FBin (XNOR) and Hybrid-1 ResNet-18 keep fc float: 13.4x."""
    for variant in ("fbin", "hybrid"):
        s = stats("resnet18", variant, layers={"fc": "fprec"}, repeats=True)
        assert abs(s.compression - 13.4) <= 0.01 * 13.4


def test_first_layer_never_reduced_and_speedup() -> None:
    s = stats("alexnet", "fbin")
    first = s.layers[0]
    assert first.kind == "fprec" and first.equivalent_flops == first.flops
    fbin = [r for r in s.layers if r.kind == "fbin"]
    assert fbin and all(r.equivalent_flops == pytest.approx(r.flops / 58) for r in fbin)
    assert s.speedup > 1


def test_layer_table_on_a_plain_torch_model_and_errors() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, groups=1),
                              torch.nn.Conv2d(8, 8, 3, groups=2), torch.nn.Flatten(),
                              torch.nn.Linear(8 * 4 * 4, 10))
    rows = flops.layer_table(net, input_size=(3, 6, 6))
    assert [r.flops for r in rows] == [8 * 3 * 9 * 36, 8 * 4 * 9 * 16, 10 * 128]
    assert [r.params for r in rows] == [8 * 3 * 9, 8 * 4 * 9, 10 * 128]
    assert rows[1].output_shape == (8, 4, 4)
    assert net.training  # mode restored
    with pytest.raises(ValueError, match="input_size"):
        flops.layer_table(net)
    with pytest.raises(ValueError, match="nope"):
        flops.layer_table(net, repeats={"nope": 0.1}, input_size=(3, 6, 6))
    with pytest.raises(ValueError, match="fractions"):
        flops.layer_table(net, repeats={"0": 1.5}, input_size=(3, 6, 6))
    text = flops.format_table(net, input_size=(3, 6, 6))
    assert "total" in text and "speed-up 1.0x" in text
