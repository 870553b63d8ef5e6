"""conv_grouped_f32: grouped (AlexNet groups=2) and depthwise (groups = channels, with a channel
multiplier, MobileNet / ReActNet-MobileNet) float convs exported and run against PyTorch on
every kernel path; binary grouped convs refused; the bad-file errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hbn_engine
from hbn_engine.exporter import ExportError
from hbn_engine.format import FormatError, Op, encode_hbn

from conftest import randomize_bn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _check(model: nn.Module, x: torch.Tensor, tmp_path, kinds: list[str]) -> None:
    model.eval()
    p = tmp_path / "m.hbn"
    hbn_engine.export(model, x[:1], str(p))
    eng = hbn_engine.load(p)
    ops = [hbn_engine.format.read_hbn(str(p)).ops[i].type for i in range(len(eng.layers))]
    assert ops == kinds, ops
    with torch.no_grad():
        want = model(x).numpy()
    got = eng.run(x.numpy())
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-6 * scale)


# (in, out, kernel, stride, padding, groups, bias)
GEOMETRIES = {
    "alexnet_groups2": (6, 8, 3, 2, 1, 2, True),
    "groups3_5x5": (9, 6, 5, 1, 2, 3, False),
    "groups_odd_channels": (15, 10, (3, 1), (1, 2), (1, 0), 5, True),
    "depthwise_3x3": (7, 7, 3, 1, 1, 7, False),
    "depthwise_stride2": (5, 5, 3, 2, 1, 5, True),
    "depthwise_multiplier2": (5, 10, 3, 1, 0, 5, True),
    "depthwise_1x1": (3, 3, 1, 1, 0, 3, True),
}


@pytest.mark.parametrize("geo", list(GEOMETRIES))
def test_grouped_conv_matches_torch(tmp_path, each_isa: str, geo: str) -> None:
    ic, oc, k, s, p, g, bias = GEOMETRIES[geo]
    torch.manual_seed(len(geo))
    model = nn.Sequential(nn.Conv2d(ic, oc, k, s, p, groups=g, bias=bias), nn.BatchNorm2d(oc),
                          nn.ReLU())
    x = torch.randn(3, ic, 9, 8)
    x[0, :, 0, 0] = 0.0
    randomize_bn(model, seed=1, calib=x)
    _check(model, x, tmp_path, ["conv_grouped_f32"])  # BN and ReLU fold into it


def test_depthwise_separable_block(tmp_path, each_isa: str) -> None:
    # MobileNet block: depthwise 3x3 -> BN -> ReLU6 -> pointwise 1x1 -> BN, then a residual
    torch.manual_seed(2)

    class Block(nn.Module):
        def __init__(self, c: int = 12):
            super().__init__()
            self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.pw = nn.Conv2d(c, c, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)

        def forward(self, x):
            return self.bn2(self.pw(F.relu6(self.bn1(self.dw(x))))) + x

    model = Block()
    x = torch.randn(2, 12, 7, 7)
    randomize_bn(model, seed=2, calib=x)
    _check(model, x, tmp_path, ["conv_grouped_f32", "clamp", "conv_f32", "add"])


def test_grouped_conv_in_forward(tmp_path) -> None:
    # F.conv2d(..., groups=2) with parameters: the front end rebuilds it as a float layer
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 3, 3, 3))
            self.b = nn.Parameter(torch.randn(8))

        def forward(self, x):
            return F.conv2d(x, self.w, self.b, stride=1, padding=1, groups=2)

    torch.manual_seed(3)
    _check(Net(), torch.randn(2, 6, 5, 5), tmp_path, ["conv_grouped_f32"])


def test_grouped_pm_alpha_weights_stay_float(tmp_path) -> None:
    # +-alpha weights in a grouped conv (every depthwise 1x1 is) run as the float grouped conv
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False))
    w = model[0].weight
    with torch.no_grad():
        w.copy_(w.sign() * w.abs().mean((1, 2, 3), keepdim=True))
    report = hbn_engine.export(model.eval(), torch.randn(1, 4, 5, 5), str(tmp_path / "m.hbn"))
    assert report.kinds() == {"0": "fprec"}
    assert "groups=2" in report.layers[0].reason
    _check(model, torch.randn(2, 4, 5, 5), tmp_path, ["conv_grouped_f32"])


def test_binary_grouped_conv_refused(tmp_path) -> None:
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 4, 3, 3))

        def forward(self, x):
            w = self.w.sign() * self.w.abs().mean((1, 2, 3), keepdim=True)
            return F.conv2d(torch.sign(x), w, padding=1, groups=2)

    with pytest.raises(ExportError, match=r"groups=2.*binarized.*binary grouped convs"):
        hbn_engine.export(Net().eval(), torch.randn(1, 8, 5, 5), str(tmp_path / "m.hbn"))


def test_dilated_conv_still_refused(tmp_path) -> None:
    with pytest.raises(ExportError, match="dilation"):
        hbn_engine.export(nn.Conv2d(4, 4, 3, dilation=2, groups=2).eval(),
                          torch.randn(1, 4, 7, 7), str(tmp_path / "m.hbn"))


def _file(weight: np.ndarray, attrs: dict, shape=(4, 5, 5), flat: bool = False) -> bytes:
    base = {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1, **attrs}
    if flat:
        ops = [Op("flatten", "f", [0], []), Op("conv_grouped_f32", "g", [1], [0, None, None], base)]
    else:
        ops = [Op("conv_grouped_f32", "g", [0], [0, None, None], base)]
    return encode_hbn(ops, [weight], {}, shape, len(ops))


def test_grouped_conv_bad_files() -> None:
    w = np.ones((4, 2, 3, 3), np.float32)
    hbn_engine.load(_file(w, {"groups": 2}))
    with pytest.raises(FormatError, match="'g'.*input channels 4 not divisible by groups 3"):
        hbn_engine.load(_file(np.ones((3, 1, 3, 3), np.float32), {"groups": 3}))
    with pytest.raises(FormatError, match="'g'.*output channels 3 not divisible by groups 2"):
        hbn_engine.load(_file(np.ones((3, 2, 3, 3), np.float32), {"groups": 2}))
    with pytest.raises(FormatError, match="'g'.*2 input channels per group"):
        hbn_engine.load(_file(w, {"groups": 4}))
    with pytest.raises(FormatError, match="'g'.*groups = 0"):
        hbn_engine.load(_file(w, {"groups": 0}))
    with pytest.raises(FormatError, match="'g'.*missing attribute groups"):
        hbn_engine.load(_file(w, {}))
    with pytest.raises(FormatError, match="'g'.*non-finite"):
        bad = w.copy()
        bad[0, 0, 0, 0] = np.inf
        hbn_engine.load(_file(bad, {"groups": 2}))
    with pytest.raises(FormatError, match="'g'.*flat"):
        hbn_engine.load(_file(w, {"groups": 2}, shape=(4, 1, 1), flat=True))
    with pytest.raises(FormatError, match="'g'.*kernel larger"):
        hbn_engine.load(_file(np.ones((4, 2, 9, 9), np.float32), {"groups": 2}))
