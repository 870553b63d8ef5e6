"""uint8 image input (issue 14 item 3): export(..., input_norm=(mean, std)) puts the model's
normalisation in the file as its first op (input_norm), and run() takes uint8 pixels NCHW or
NHWC. The u8 path equals the float path on the same pixel values bit for bit; both match
PyTorch on (p - mean) / std, padded first convs included (the pad is 0 in the normalised
domain, i.e. pixel value `mean`, which folding the normalisation into the conv would get
wrong at the borders)."""
from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import hbn_engine  # noqa: E402
from hbn_engine import nn as hnn  # noqa: E402

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def _net(k: int, stride: int, pad: int) -> nn.Module:
    torch.manual_seed(k * 10 + pad)
    return nn.Sequential(
        nn.Conv2d(3, 16, k, stride=stride, padding=pad), nn.BatchNorm2d(16), nn.ReLU(),
        hnn.FullBinConv2d(16, 32, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(32, 10)).eval()


def _torch_ref(net: nn.Module, px: np.ndarray, mean=MEAN, std=STD) -> np.ndarray:
    t = torch.from_numpy(px.astype(np.float32))
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    with torch.no_grad():
        return net((t - m) / s).numpy()


@pytest.mark.parametrize("k,stride,pad", [(3, 1, 1), (7, 2, 3), (5, 1, 2), (3, 1, 0)])
def test_u8_equals_float_and_torch(tmp_path, k: int, stride: int, pad: int) -> None:
    net = _net(k, stride, pad)
    path = str(tmp_path / "m.hbn")
    hbn_engine.export(net, torch.randn(1, 3, 20, 20), path, input_norm=(MEAN, STD))
    m = hbn_engine.load(path)
    assert m.takes_pixels and m.layers[0] == ("input_norm", "input_norm")
    np.testing.assert_allclose(m.input_norm[0], MEAN, rtol=1e-6)
    rng = np.random.default_rng(k + pad)
    px = rng.integers(0, 256, (3, 3, 20, 20), dtype=np.uint8)
    px[0] = 255  # saturated borders: the case where a folded-in normalisation is off most
    y_u8 = m.run(px)
    assert np.array_equal(y_u8, m.run(px.astype(np.float32)))
    assert np.array_equal(y_u8, m.run(np.ascontiguousarray(px.transpose(0, 2, 3, 1))))
    assert np.array_equal(y_u8, m.run(px.transpose(0, 2, 3, 1)))  # strided NHWC view
    ref = _torch_ref(net, px)
    err = np.abs(y_u8 - ref).max() / np.abs(ref).max()
    assert err < 1e-5, err
    assert (y_u8.argmax(1) == ref.argmax(1)).all()


def test_scalar_norm_and_explicit_layout(tmp_path) -> None:
    # A 3x3 input is both NCHW and NHWC shaped: layout= decides, and without it run refuses.
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(36, 5)).eval()
    path = str(tmp_path / "m.hbn")
    hbn_engine.export(net, torch.randn(1, 3, 3, 3), path, input_norm=(127.0, 64.0))
    m = hbn_engine.load(path)
    px = np.random.default_rng(1).integers(0, 256, (2, 3, 3, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="layout="):
        m.run(px)
    a = m.run(px, layout="NCHW")
    b = m.run(np.ascontiguousarray(px.transpose(0, 2, 3, 1)), layout="NHWC")
    assert np.array_equal(a, b)
    np.testing.assert_allclose(a, _torch_ref(net, px, [127.0] * 3, [64.0] * 3), rtol=1e-5,
                               atol=1e-6)


def test_bad_inputs(tmp_path) -> None:
    net = _net(3, 1, 1)
    path = str(tmp_path / "m.hbn")
    hbn_engine.export(net, torch.randn(1, 3, 8, 8), path, input_norm=(MEAN, STD))
    m = hbn_engine.load(path)
    with pytest.raises(TypeError, match="float32 or uint8"):
        m.run(np.zeros((1, 3, 8, 8), dtype=np.int16))
    with pytest.raises(ValueError, match="neither NCHW"):
        m.run(np.zeros((1, 4, 8, 8), dtype=np.uint8))  # wrong channel count
    with pytest.raises(ValueError, match="neither NCHW"):
        m.run(np.zeros((1, 3, 8, 8), dtype=np.uint8), layout="NHWC")
    with pytest.raises(ValueError, match="4-D"):
        m.run(np.zeros((3, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="empty"):
        m.run(np.zeros((0, 3, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="layout= applies"):
        m.run(np.zeros((1, 3, 8, 8), dtype=np.float32), layout="NCHW")
    # A model exported without input_norm takes floats only, natively too.
    plain = str(tmp_path / "plain.hbn")
    hbn_engine.export(net, torch.randn(1, 3, 8, 8), plain)
    p = hbn_engine.load(plain)
    assert not p.takes_pixels and p.input_norm is None
    with pytest.raises(TypeError, match="input_norm"):
        p.run(np.zeros((1, 3, 8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="input_norm"):
        p._ex.run_u8(np.zeros((1, 3, 8, 8), dtype=np.uint8))


@pytest.mark.parametrize("norm,match", [
    (([1.0, 2.0], STD), "2 means"),
    ((MEAN, [1.0, 0.0, 1.0]), "std finite and > 0"),
    ((MEAN, [1.0, float("nan"), 1.0]), "std finite"),
    ((MEAN,), "must be \\(mean, std\\)"),
])
def test_bad_input_norm(tmp_path, norm, match) -> None:
    with pytest.raises(ValueError, match=match):
        hbn_engine.export(_net(3, 1, 1), torch.randn(1, 3, 8, 8), str(tmp_path / "m.hbn"),
                          input_norm=norm)
    assert not os.path.exists(tmp_path / "m.hbn")


def test_pickled_pixel_model_keeps_u8(tmp_path) -> None:
    import pickle

    net = _net(3, 1, 1)
    path = str(tmp_path / "m.hbn")
    hbn_engine.export(net, torch.randn(1, 3, 8, 8), path, input_norm=(MEAN, STD))
    m = hbn_engine.load(path)
    px = np.random.default_rng(2).integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    m2 = pickle.loads(pickle.dumps(m))
    assert np.array_equal(m.run(px), m2.run(px))


class _NormalizedNet(nn.Module):
    """A model that normalises [0, 1] images itself, as with torchvision's Normalize first."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.body = _net(7, 2, 3)

    def forward(self, x):
        return self.body((x - self.mean) / self.std)


def test_model_with_its_own_normalisation_takes_pixels(tmp_path) -> None:
    # input_norm=(0, 255) is torchvision's ToTensor (p / 255 in float32); the model's own
    # normalisation stays in the graph (a per-channel affine op).
    net = _NormalizedNet().eval()
    path = str(tmp_path / "m.hbn")
    hbn_engine.export(net, torch.rand(1, 3, 20, 20), path, input_norm=(0.0, 255.0))
    m = hbn_engine.load(path)
    px = np.random.default_rng(3).integers(0, 256, (2, 20, 20, 3), dtype=np.uint8)
    y = m.run(px)
    with torch.no_grad():
        ref = net(torch.from_numpy(px).permute(0, 3, 1, 2).float().div(255)).numpy()
    assert np.abs(y - ref).max() <= 1e-5 * np.abs(ref).max()
