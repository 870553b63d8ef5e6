"""hbn_engine.nn: sign convention, STE gradients, and each layer's eval output against an
independent float64 numpy computation of the maths the engine reproduces."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hbn_engine.nn import (
    BINARY_LAYERS,
    BinActive,
    FullBinConv2d,
    FullBinLinear,
    WeightBinConv2d,
    WeightBinLinear,
    binarize,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- numpy reference (float64)


def np_sign(x: np.ndarray) -> np.ndarray:
    # The engine's rule (csrc/hbn/types.h): bit 0 = +1 for x >= 0, including -0.0.
    return np.where(x >= 0, 1.0, -1.0)


def np_bn(x: np.ndarray, bn: torch.nn.Module) -> np.ndarray:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = bn.running_mean.double().numpy().reshape(shape)
    var = bn.running_var.double().numpy().reshape(shape)
    gamma = bn.weight.detach().double().numpy().reshape(shape)
    beta = bn.bias.detach().double().numpy().reshape(shape)
    return (x - mean) / np.sqrt(var + bn.eps) * gamma + beta


def np_conv(x: np.ndarray, w: np.ndarray, stride: tuple[int, int],
            padding: tuple[int, int]) -> np.ndarray:
    """Direct convolution (cross-correlation), zero padding, no bias: [N,C,H,W] x [O,C,KH,KW]."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w)
    return out


def np_avgpool_include_pad(x: np.ndarray, k: tuple[int, int], stride: tuple[int, int],
                           padding: tuple[int, int]) -> np.ndarray:
    """XNOR-Net's K: mean over channels and over the window, padded zeros counted -> [N,1,H,W]."""
    c = x.shape[1]
    mean_filter = np.full((1, c, k[0], k[1]), 1.0 / (k[0] * k[1] * c))
    return np_conv(x, mean_filter, stride, padding)


def np_binary_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np_sign(w), np.abs(w).reshape(w.shape[0], -1).mean(axis=1)


def randomize_bn(bn: torch.nn.Module, gen: torch.Generator, zero_channel: bool = False) -> None:
    n = bn.num_features
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(n, generator=gen, dtype=bn.running_mean.dtype) * 0.3)
        bn.running_var.copy_(torch.rand(n, generator=gen, dtype=bn.running_var.dtype) + 0.5)
        bn.weight.copy_(torch.randn(n, generator=gen, dtype=bn.weight.dtype))
        bn.bias.copy_(torch.randn(n, generator=gen, dtype=bn.bias.dtype) * 0.2)
        if zero_channel:
            # gamma = beta = 0 makes the normalized channel exactly (+-)0: sign must give +1.
            bn.weight[0] = 0.0
            bn.bias[0] = 0.0


def plant_zero_weights(layer: torch.nn.Module) -> None:
    with torch.no_grad():
        flat = layer.weight.view(-1)
        flat[0] = 0.0
        flat[1] = -0.0


# ---------------------------------------------------------------- binarize


def test_binarize_values_and_sign_of_zero() -> None:
    x = torch.tensor([-2.0, -1e-30, -0.0, 0.0, 1e-30, 3.0])
    assert binarize(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    assert BinActive()(x).tolist() == binarize(x).tolist()
    for dtype in (torch.float32, torch.float64):
        assert binarize(x.to(dtype)).dtype == dtype
    with pytest.raises(TypeError):
        binarize(torch.tensor([1, 2]))
    with pytest.raises(TypeError):
        binarize([1.0])  # type: ignore[arg-type]


def test_binarize_straight_through_gradient_is_clipped() -> None:
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    g = torch.arange(1.0, 8.0)
    binarize(x).backward(g)
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


# ---------------------------------------------------------------- layers vs reference

CONV_CASES = [
    # in, out, kernel, stride, padding, bias, input_scale, activation
    (3, 5, 3, 1, 1, True, False, "relu"),
    (4, 6, (3, 2), (2, 1), (1, 0), False, True, None),
    (2, 3, 1, 1, 0, True, True, "relu"),
    (5, 4, 3, 2, 0, True, True, None),
]


@pytest.mark.parametrize("cin,cout,k,s,p,bias,scale,act", CONV_CASES)
def test_fullbinconv2d_matches_reference(cin, cout, k, s, p, bias, scale, act) -> None:
    gen = torch.Generator().manual_seed(cin * 100 + cout)
    layer = FullBinConv2d(cin, cout, k, stride=s, padding=p, bias=bias, input_scale=scale,
                          activation=act).double()
    randomize_bn(layer.bn, gen, zero_channel=True)
    plant_zero_weights(layer)
    layer.eval()
    x = torch.randn(2, cin, 7, 6, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        y = layer(x).numpy()

    xn = np_bn(x.numpy(), layer.bn)
    sw, alpha = np_binary_weight(layer.weight.detach().numpy())
    ref = np_conv(np_sign(xn), sw, layer.stride, layer.padding) * alpha.reshape(1, -1, 1, 1)
    if scale:
        ref = ref * np_avgpool_include_pad(np.abs(xn), layer.kernel_size, layer.stride,
                                           layer.padding)
    if bias:
        ref = ref + layer.bias.detach().numpy().reshape(1, -1, 1, 1)
    if act == "relu":
        ref = np.maximum(ref, 0)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bn", [True, False])
@pytest.mark.parametrize("cin,cout,k,s,p,bias,act", [
    (3, 5, 3, 1, 1, True, "relu"), (4, 2, (1, 3), (1, 2), (0, 1), False, None)])
def test_weightbinconv2d_matches_reference(cin, cout, k, s, p, bias, act, bn) -> None:
    gen = torch.Generator().manual_seed(7 + cin)
    layer = WeightBinConv2d(cin, cout, k, stride=s, padding=p, bias=bias, bn=bn,
                            activation=act).double()
    if bn:
        randomize_bn(layer.bn, gen)
    plant_zero_weights(layer)
    layer.eval()
    x = torch.randn(2, cin, 6, 7, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        y = layer(x).numpy()
    sw, alpha = np_binary_weight(layer.weight.detach().numpy())
    ref = np_conv(x.numpy(), sw, layer.stride, layer.padding) * alpha.reshape(1, -1, 1, 1)
    if bias:
        ref = ref + layer.bias.detach().numpy().reshape(1, -1, 1, 1)
    if bn:
        ref = np_bn(ref, layer.bn)
    if act == "relu":
        ref = np.maximum(ref, 0)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias,act", [(True, "relu"), (False, None)])
def test_fullbinlinear_matches_reference(bias, act) -> None:
    gen = torch.Generator().manual_seed(3)
    layer = FullBinLinear(13, 7, bias=bias, activation=act).double()
    randomize_bn(layer.bn, gen, zero_channel=True)
    plant_zero_weights(layer)
    layer.eval()
    x = torch.randn(4, 13, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        y = layer(x).numpy()
    sw, alpha = np_binary_weight(layer.weight.detach().numpy())
    ref = np_sign(np_bn(x.numpy(), layer.bn)) @ sw.T * alpha
    if bias:
        ref = ref + layer.bias.detach().numpy()
    if act == "relu":
        ref = np.maximum(ref, 0)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias,bn,act", [(True, False, "relu"), (False, True, None),
                                         (True, True, "relu")])
def test_weightbinlinear_matches_reference(bias, bn, act) -> None:
    gen = torch.Generator().manual_seed(4)
    layer = WeightBinLinear(11, 6, bias=bias, bn=bn, activation=act).double()
    if bn:
        randomize_bn(layer.bn, gen)
    plant_zero_weights(layer)
    layer.eval()
    x = torch.randn(3, 11, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        y = layer(x).numpy()
    sw, alpha = np_binary_weight(layer.weight.detach().numpy())
    ref = x.numpy() @ sw.T * alpha
    if bias:
        ref = ref + layer.bias.detach().numpy()
    if bn:
        ref = np_bn(ref, layer.bn)
    if act == "relu":
        ref = np.maximum(ref, 0)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_float32_layer_close_to_float64_reference() -> None:
    """The float32 module (what gets exported) agrees with the float64 maths."""
    gen = torch.Generator().manual_seed(11)
    layer = FullBinConv2d(8, 4, 3, padding=1, input_scale=True)
    randomize_bn(layer.bn, gen)
    layer.eval()
    x = torch.randn(1, 8, 5, 5, generator=gen)
    with torch.no_grad():
        y32 = layer(x).double()
        y64 = layer.double()(x.double())
    torch.testing.assert_close(y32, y64, rtol=1e-5, atol=1e-5)


def test_binary_weight_contract() -> None:
    layer = WeightBinConv2d(3, 4, 3)
    plant_zero_weights(layer)
    sign_w, alpha = layer.binary_weight()
    assert sign_w.shape == layer.weight.shape and alpha.shape == (4,)
    assert set(sign_w.unique().tolist()) <= {-1.0, 1.0}
    assert sign_w.view(-1)[:2].tolist() == [1.0, 1.0]  # +0.0 and -0.0
    torch.testing.assert_close(alpha, layer.weight.detach().abs().mean(dim=(1, 2, 3)))
    lin = FullBinLinear(5, 3)
    _, a = lin.binary_weight()
    torch.testing.assert_close(a, lin.weight.detach().abs().mean(dim=1))


def test_attributes_and_validation() -> None:
    c = FullBinConv2d(3, 8, 3, stride=2, padding=1)
    assert (c.kernel_size, c.stride, c.padding) == ((3, 3), (2, 2), (1, 1))
    assert c.input_scale is False and c.activation == "relu"
    assert isinstance(c.bn, torch.nn.BatchNorm2d) and c.bn.num_features == 3
    assert c.weight.shape == (8, 3, 3, 3) and c.bias.shape == (8,)
    w = WeightBinConv2d(3, 8, (1, 3))
    assert w.bias is None and w.bn.num_features == 8 and w.kernel_size == (1, 3)
    assert WeightBinConv2d(3, 8, 1, bn=False).bn is None
    fl = FullBinLinear(6, 2)
    assert fl.bn.num_features == 6 and fl.weight.shape == (2, 6)
    wl = WeightBinLinear(6, 2, bn=True)
    assert wl.bn.num_features == 2 and WeightBinLinear(6, 2).bn is None
    with pytest.raises(ValueError, match="activation"):
        FullBinConv2d(3, 8, 3, activation="tanh")
    with pytest.raises(ValueError, match="in_channels"):
        WeightBinConv2d(0, 8, 3)
    with pytest.raises(TypeError, match="kernel_size"):
        FullBinConv2d(3, 8, "3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="padding"):
        FullBinConv2d(3, 8, 3, padding=-1)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        c(torch.zeros(1, 4, 5, 5))
    with pytest.raises(ValueError, match=r"\[N, 6\]"):
        fl(torch.zeros(2, 5))
    assert all(issubclass(t, torch.nn.Module) for t in BINARY_LAYERS)


# ---------------------------------------------------------------- training


def _layers_and_inputs():
    return [
        (FullBinConv2d(3, 4, 3, padding=1, input_scale=True), torch.randn(4, 3, 5, 5)),
        (WeightBinConv2d(3, 4, 3, padding=1), torch.randn(4, 3, 5, 5)),
        (FullBinLinear(6, 5), torch.randn(4, 6)),
        (WeightBinLinear(6, 5, bn=True), torch.randn(4, 6)),
    ]


@pytest.mark.parametrize("index", range(4))
def test_gradients_reach_weight_bn_and_input(index: int) -> None:
    torch.manual_seed(index)
    layer, x = _layers_and_inputs()[index]
    layer.train()
    x.requires_grad_(True)
    target = torch.randn_like(layer(x))
    torch.nn.functional.mse_loss(layer(x), target).backward()
    for name, grad in [("weight", layer.weight.grad), ("bn.weight", layer.bn.weight.grad),
                       ("input", x.grad)]:
        assert grad is not None and grad.abs().sum() > 0, name
    if layer.bias is not None:
        assert layer.bias.grad.abs().sum() > 0


def test_training_keeps_real_weights_and_eval_is_deterministic() -> None:
    torch.manual_seed(0)
    layer = FullBinConv2d(3, 4, 3, padding=1)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    before = layer.weight.detach().clone()
    x = torch.randn(8, 3, 6, 6)
    for _ in range(2):
        opt.zero_grad()
        layer(x).square().mean().backward()
        opt.step()
    assert not torch.equal(before, layer.weight)
    assert not set(layer.weight.detach().abs().unique().tolist()) <= {1.0}  # still real-valued
    layer.eval()
    with torch.no_grad():
        assert torch.equal(layer(x), layer(x))
