"""The idiom corpus: one small model per way public BNN code writes a binary layer."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hbn_engine.nn import BinActive, FullBinConv2d

from .common import (
    ApproxSign,
    HardBinaryConv,
    Idiom,
    LearnableBias,
    PlusOneSTE,
    PreprocConv2d,
    RPReLU,
    RSign,
    SignSTE,
)


def _bin_weight(w: torch.Tensor) -> torch.Tensor:
    return w.sign() * w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)


class Stem(nn.Module):
    """Float first layer shared by most idioms (binary layers follow it)."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return self.bn(self.conv(x))


class Head(nn.Module):
    def __init__(self, c: int, classes: int = 10):
        super().__init__()
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# 1. binarization inside a custom autograd.Function (XNOR-Net) ---------------------------------
class XnorSTE(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.bn = nn.BatchNorm2d(8)
        self.conv = nn.Conv2d(8, 16, 3, padding=1)
        self.head = Head(16)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = SignSTE.apply(self.bn(x))
        x = F.conv2d(x, _bin_weight(self.conv.weight), self.conv.bias, padding=1)
        return self.head(F.relu(x))


# 2. torch.sign / Tensor.sign in a forward (Bi-Real, ReActNet) --------------------------------
class TorchSign(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.conv1 = HardBinaryConv(8, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = HardBinaryConv(16, 16, stride=2)
        self.bn2 = nn.BatchNorm2d(16)
        self.head = Head(16)

    def forward(self, x):
        x = self.stem(x)
        x = self.bn1(self.conv1(torch.sign(x)))
        x = self.bn2(self.conv2(x.sign()))
        return self.head(x)


# 3. where(x >= 0, 1, -1) and where(x > 0, 1, -1) ------------------------------------------------
class WhereSign(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x):
        # binarize the raw input (exact zeros in it) with -1 at 0 (x > 0) ...
        x = torch.where(x > 0, 1.0, -1.0)
        x = F.conv2d(x, _bin_weight(self.conv1.weight), padding=1)
        x = self.bn(F.max_pool2d(x, 2))
        # ... and with +1 at 0 (x >= 0)
        x = torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
        x = F.conv2d(x, _bin_weight(self.conv2.weight), padding=1)
        return self.fc(x.view(x.size(0), -1))


# 4. hardtanh then sign (BinaryNet) --------------------------------------------------------------
class BinarizeLinear(nn.Linear):
    """BinaryNet's layer: binarizes its input unless it is the first layer (784 features)."""

    def forward(self, input):
        if input.size(1) != 784:
            input = input.sign()
        w = self.weight.sign()
        out = F.linear(input, w)
        if self.bias is not None:
            out += self.bias.view(1, -1).expand_as(out)
        return out


class BinarizeConv2d(nn.Conv2d):
    def forward(self, input):
        if input.size(1) != 3:
            input = input.sign()
        out = F.conv2d(input, self.weight.sign(), None, self.stride, self.padding,
                       self.dilation, self.groups)
        if self.bias is not None:
            out += self.bias.view(1, -1, 1, 1).expand_as(out)
        return out


class BinaryNetVGG(nn.Module):
    """conv-pool-BN-hardtanh stacks; the first BinarizeConv2d sees the 3-channel image and does
    not binarize it; the classifier's hardtanh feeds a binarized linear layer."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            BinarizeConv2d(3, 16, 3, padding=1, bias=True), nn.BatchNorm2d(16), nn.Hardtanh(),
            BinarizeConv2d(16, 16, 3, padding=1, bias=True), nn.MaxPool2d(2), nn.BatchNorm2d(16),
            nn.Hardtanh(inplace=True),
            BinarizeConv2d(16, 32, 3, padding=1, bias=True), nn.MaxPool2d(2), nn.BatchNorm2d(32),
            nn.Hardtanh(inplace=True))
        self.classifier = nn.Sequential(
            BinarizeLinear(32 * 4 * 4, 64, bias=True), nn.BatchNorm1d(64), nn.Hardtanh(),
            BinarizeLinear(64, 10, bias=True), nn.BatchNorm1d(10))

    def forward(self, x):
        x = self.features(x)
        x = x.view(-1, 32 * 4 * 4)
        return self.classifier(x)


# 5. Bi-Real's ApproxSign module (forward sign through the detach trick) ------------------------
class ApproxSignNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.act = ApproxSign()
        self.conv = HardBinaryConv(8, 16)
        self.bn = nn.BatchNorm2d(16)
        self.head = Head(16)

    def forward(self, x):
        x = self.stem(x)
        return self.head(self.bn(self.conv(self.act(x))))


# 6. RSign: learnable threshold before sign (ReActNet) ------------------------------------------
class RSignNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.sign = RSign(8)
        self.conv = HardBinaryConv(8, 8)
        self.bn = nn.BatchNorm2d(8)
        self.head = Head(8)

    def forward(self, x):
        x = self.stem(x)
        return self.head(self.bn(self.conv(self.sign(x))) + x)


# 7. weights binarized in forward: sign(W) * mean|W| per output channel -> WeightBin ------------
class WeightsInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.w = nn.Parameter(torch.randn(16, 8, 3, 3))
        self.fc_weight = nn.Parameter(torch.randn(10, 16))

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(F.conv2d(x, _bin_weight(self.w), padding=1))
        x = x.mean((2, 3))
        return F.linear(x, _bin_weight(self.fc_weight))


# 8. Conv2d subclass with weight_pre_process / activation_pre_process (bnn library) ------------
class PreprocNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.bn = nn.BatchNorm2d(8)
        self.conv = PreprocConv2d(8, 16, 3, padding=1, bias=False)
        self.head = Head(16)

    def forward(self, x):
        return self.head(self.conv(self.bn(F.relu(self.stem(x)))))


# 9. weights stored already binarized (plain nn.Conv2d / nn.Linear) -----------------------------
def stored_binary() -> nn.Module:
    torch.manual_seed(9)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    with torch.no_grad():
        for m in (net[3], net[8]):
            m.weight.copy_(_bin_weight(m.weight))
    return net


# 10. learned per-channel scale multiplied after a binary conv ----------------------------------
class ScaledBinConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.conv = HardBinaryConv(8, 8)
        self.scale = nn.Parameter(torch.rand(1, 8, 1, 1) + 0.5)
        self.head = Head(8)

    def forward(self, x):
        x = self.stem(x)
        y = self.conv(torch.sign(x)) * self.scale
        return self.head(y + x)


# 11. BN whose parameters are clamped inside forward ----------------------------------------------
class ClampedBN(nn.BatchNorm2d):
    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var,
                            self.weight.clamp(min=0.05), self.bias, False, 0.0, self.eps)


class ClampedBNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.bn = ClampedBN(8)
        self.conv = HardBinaryConv(8, 16)
        self.bn2 = ClampedBN(16)
        self.head = Head(16)

    def forward(self, x):
        x = self.stem(x)
        return self.head(self.bn2(self.conv(torch.sign(self.bn(x)))))


# 12. dead code: an unused mean(|x|) ---------------------------------------------------------------
class DeadCode(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.conv = HardBinaryConv(8, 16)
        self.head = Head(16)

    def forward(self, x):
        x = self.stem(x)
        k = torch.mean(torch.abs(x), dim=1, keepdim=True)  # XNOR's K, computed and not used
        _ = F.avg_pool2d(k, 3, 1, 1)
        return self.head(self.conv(torch.sign(x)))


# 13. shape-dependent Python control flow ----------------------------------------------------------
class ShapeFlow(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.conv = HardBinaryConv(8, 16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        if x.size(1) != 3:
            raise ValueError("expects RGB")
        x = self.stem(x)
        if x.dim() == 4:
            x = self.conv(torch.sign(x))
        n, c = x.shape[:2]
        return self.fc(F.adaptive_avg_pool2d(x, 1).view(n, c) if len(x) > 0 else x)


# 14. subclasses of nn.Conv2d / nn.Linear with the binarization inside (BinaryNet layers) are in
#     BinaryNetVGG; here an XNOR-style Linear subclass with a float input
class XnorLinear(nn.Linear):
    def forward(self, x):
        return F.linear(x, _bin_weight(self.weight), self.bias)


class SubclassNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.fc = XnorLinear(8 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.flatten(F.relu(self.stem(x)), 1))


# 15. hbn_engine.nn: BinActive and FullBinConv2d without its BN --------------------------------
class HbnBinActive(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.act = BinActive()
        self.conv = nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.fb = FullBinConv2d(16, 16, 3, padding=1, bn=False, activation=None)
        self.head = Head(16)
        with torch.no_grad():
            self.conv.weight.copy_(_bin_weight(self.conv.weight))

    def forward(self, x):
        x = self.stem(x)
        return self.head(self.fb(self.bn(self.conv(self.act(x)))) + torch.cat([x, x], 1))


# 16. sign(0): torch.sign of a relu output is {0, 1} valued -------------------------------------
class SignOfRelu(nn.Module):
    """sign(relu(x) - t): channels with t == 0 binarize a {0, 1}-valued tensor (relu's zeros
    are exact), the others a shifted one."""

    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.t = nn.Parameter(torch.tensor([0.0, 0.3, 0.0, 0.5, 0.0, 0.2, 0.0, 0.4]).view(1, 8, 1, 1))
        self.conv = HardBinaryConv(8, 16)
        self.head = Head(16)

    def forward(self, x):
        return self.head(self.conv(torch.sign(F.relu(self.stem(x)) - self.t)))


class BinConv2d(nn.Conv2d):
    """A binary conv as {0, 1}-activation recipes write it: an nn.Conv2d whose forward
    binarizes the weights, sign(W) * mean|W| per output channel (no bias)."""

    def forward(self, x):
        w = self.weight
        alpha = w.abs().mean(dim=(1, 2, 3), keepdim=True)
        return F.conv2d(x, torch.sign(w) * alpha, None, self.stride, self.padding)


class SignOfReluBlocks(nn.Module):
    """sign(relu(...)) in its common spellings, each straight into a binary conv (odd channel
    counts, a stride, padding, a max-pool between):
    torch.sign(F.relu(bn(x))), x.clamp(min=0).sign(), torch.sign(F.relu6(x)), an STE over
    nn.ReLU's output, torch.sign(max_pool(relu(x))), and a binary linear layer at the end."""

    def __init__(self, form: str = "relu"):
        super().__init__()
        self.form = form
        self.stem = Stem(7)
        self.conv1 = BinConv2d(7, 13, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(13)
        self.conv2 = BinConv2d(13, 20, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(20)
        self.relu = nn.ReLU()
        self.conv3 = BinConv2d(20, 24, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(24)
        self.fc = nn.Linear(24 * 2 * 2, 10, bias=False)

    def act(self, x):
        if self.form == "relu":
            return torch.sign(F.relu(x))
        if self.form == "clamp":
            return x.clamp(min=0).sign()
        if self.form == "relu6":
            return torch.sign(F.relu6(x))
        return SignSTE.apply(self.relu(x))  # "ste"

    def forward(self, x):
        x = self.act(self.stem(x))
        x = self.act(self.bn1(self.conv1(x)))
        x = self.bn2(self.conv2(x))
        x = torch.sign(F.max_pool2d(F.relu(x), 2))  # 4x4 -> 2x2, a {0, 1} value pooled
        x = self.act(self.bn3(self.conv3(x)))
        w = self.fc.weight
        return F.linear(torch.flatten(x, 1), torch.sign(w) * w.abs().mean(1, keepdim=True))


class PaddedSignOfRelu(nn.Module):
    """Explicit zero pads around torch.sign(relu(x)): before the sign (torch.sign(0) = 0 on the
    padded border) and after it (the conv's own padding), convs with padding=0."""

    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.conv1 = BinConv2d(8, 12, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(12)
        self.pad = nn.ZeroPad2d(1)
        self.conv2 = BinConv2d(12, 16, 3, bias=False)
        self.head = Head(16)

    def forward(self, x):
        x = self.conv1(torch.sign(F.pad(F.relu(self.stem(x)), (1, 1, 1, 1))))
        return self.head(self.conv2(self.pad(torch.sign(F.relu(self.bn1(x))))))


class PooledSignOfRelu(nn.Module):
    """A max-pool between the sign and the binary conv: conv(max_pool(sign(relu(bn(x))))),
    the pooled {0, 1} activations (nn.MaxPool2d with padding, and F.max_pool2d)."""

    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.conv1 = BinConv2d(8, 24, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.conv2 = BinConv2d(24, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.conv3 = BinConv2d(16, 16, 1, bias=False)
        self.head = Head(16)

    def forward(self, x):
        x = self.conv1(F.max_pool2d(torch.sign(F.relu(self.stem(x))), 1))
        x = self.conv2(self.pool(torch.sign(F.relu(self.bn1(x)))))
        return self.head(self.conv3(F.max_pool2d(torch.sign(F.relu(self.bn2(x))), 2)))


class PooledSign(nn.Module):
    """The +-1 case: an STE sign of BN(x), then max-pool, then the binary conv."""

    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.bn = nn.BatchNorm2d(8)
        self.conv = BinConv2d(8, 16, 3, padding=1, bias=False)
        self.head = Head(16)

    def forward(self, x):
        return self.head(self.conv(F.max_pool2d(SignSTE.apply(self.bn(F.relu(self.stem(x)))), 2)))


class PooledMixedSign(SignOfRelu):
    """max_pool(sign(relu(x) - t)) with t = 0 on some channels: values -1, 0 and +1, which no
    FullBin kernel represents, so the conv stays WeightBin on the standalone sign (exact)."""

    def __init__(self):
        super().__init__()
        self.conv = BinConv2d(8, 16, 3, padding=1, bias=False)

    def forward(self, x):
        return self.head(self.conv(F.max_pool2d(torch.sign(F.relu(self.stem(x)) - self.t), 2)))


class XnorKSignOfRelu(nn.Module):
    """XNOR-Net's K computed in forward from a relu output binarized with torch.sign: the
    engine's input scale (K from the conv's float input) with {0, 1} inputs."""

    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.bn = nn.BatchNorm2d(8)
        self.conv = HardBinaryConv(8, 16)
        self.head = Head(16)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        k = F.avg_pool2d(torch.mean(x.abs(), 1, keepdim=True), 3, 1, 1)
        return self.head(self.conv(torch.sign(x)) * k)


class PlusOneReference(nn.Module):
    """What the engine computes for SignOfRelu with sign_zero='plus_one': sign(0) = +1."""

    def __init__(self, net: SignOfRelu):
        super().__init__()
        self.net = net

    def forward(self, x):
        n = self.net
        return n.head(n.conv(PlusOneSTE.apply(F.relu(n.stem(x)) - n.t)))


# refusals: ops that need a new engine op, and things that can never export -----------------------
class RPReLUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.act = RPReLU(8)
        self.head = Head(8)

    def forward(self, x):
        return self.head(self.act(self.stem(x)))


class Simple(nn.Module):
    """stem -> op -> head, for single-op refusals."""

    def __init__(self, op: nn.Module, c_out: int = 8):
        super().__init__()
        self.stem = Stem(8)
        self.op = op
        self.head = Head(c_out)

    def forward(self, x):
        return self.head(self.op(self.stem(x)))


class Functional(nn.Module):
    def __init__(self, fn, c_out: int = 8):
        super().__init__()
        self.stem = Stem(8)
        self.fn = fn
        self.head = Head(c_out)

    def forward(self, x):
        return self.head(self.fn(self.stem(x)))


class LogSoftmaxHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.head = Head(8)

    def forward(self, x):
        return F.log_softmax(self.head(self.stem(x)), dim=1)


class XnorK(nn.Module):
    """XNOR-Net's K computed in the user's forward: mean over channels of |x|, averaged over
    the conv window (as avg_pool2d, or as XNOR-Net's conv with a constant 1/(k*k) kernel)."""

    def __init__(self, form: str = "pool"):
        super().__init__()
        self.form = form
        self.stem = Stem(8)
        self.bn = nn.BatchNorm2d(8)
        self.conv = HardBinaryConv(8, 16)
        self.register_buffer("k_weight", torch.full((1, 1, 3, 3), 1.0 / 9))
        self.head = Head(16)

    def forward(self, x):
        x = self.bn(F.relu(self.stem(x)))
        a = torch.mean(x.abs(), 1, keepdim=True)
        if self.form == "pool":
            k = F.avg_pool2d(a, 3, 1, 1)
        elif self.form == "conv":
            k = F.conv2d(a, self.k_weight, padding=1)
        else:  # a window that is not the conv's: no engine equivalent
            k = F.avg_pool2d(a, 2, 1, 1)[:, :, :8, :8]
        return self.head(self.conv(torch.sign(x)) * k)


class DataFlow(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.head = Head(8)

    def forward(self, x):
        x = self.stem(x)
        if x.mean() > 0:
            x = x * 2
        return self.head(x)


class SignIntoFloat(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.head = Head(8)

    def forward(self, x):
        return self.head(self.conv(torch.sign(self.stem(x))))


class SignIntoResidual(nn.Module):
    """The binarized tensor used twice: by a binary conv and, as +-1 floats, in a residual
    add (the standalone sign keeps torch.sign(0) = 0)."""

    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.conv = HardBinaryConv(8, 8)
        self.head = Head(8)

    def forward(self, x):
        s = torch.sign(self.stem(x))
        return self.head(self.conv(s) + s)


class GroupedBinary(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.w = nn.Parameter(torch.randn(8, 4, 3, 3))
        self.head = Head(8)

    def forward(self, x):
        return self.head(F.conv2d(torch.sign(self.stem(x)), _bin_weight(self.w), padding=1,
                                  groups=2))


class GroupedFloat(nn.Module):
    """The original AlexNet's two-group float conv."""

    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.conv = nn.Conv2d(8, 12, 3, padding=1, groups=2)
        self.head = Head(12)

    def forward(self, x):
        return self.head(F.relu(self.conv(F.relu(self.stem(x)))))


class DepthwiseFloat(nn.Module):
    """ReActNet-MobileNet's float depthwise-separable block (depthwise 3x3, pointwise 1x1)."""

    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.head = Head(16)

    def forward(self, x):
        return self.head(self.pw(F.relu6(self.bn(self.dw(self.stem(x))))))


class ArithmeticSign(nn.Module):
    """The sign written as arithmetic in forward: (x >= 0).float() * 2 - 1, and Bi-Real's
    detach trick inlined (no module, no autograd.Function)."""

    def __init__(self):
        super().__init__()
        self.stem = Stem(8)
        self.conv1 = HardBinaryConv(8, 8)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = HardBinaryConv(8, 16)
        self.head = Head(16)

    def forward(self, x):
        x = self.stem(x)
        s = (x >= 0).float() * 2 - 1
        x = self.bn(self.conv1(s)) + x
        c = torch.clamp(x, -1, 1)
        s = torch.sign(x).detach() - c.detach() + c
        return self.head(self.conv2(s))


S = (3, 8, 8)
IDIOMS: list[Idiom] = [
    Idiom("autograd_function_ste", XnorSTE, S, {"conv": "fbin", "stem.conv": "fprec"}),
    Idiom("torch_sign_forward", TorchSign, S, {"conv1": "fbin", "conv2": "fbin"}),
    Idiom("where_sign", WhereSign, (3, 12, 12), {"conv1": "fbin", "conv2": "fbin",
                                                 "fc": "fprec"}, zeros_in_input=True),
    Idiom("binarynet_hardtanh_sign", BinaryNetVGG, (3, 16, 16),
          {"features.0": "wbin", "features.3": "fbin", "features.7": "fbin",
           "classifier.0": "fbin", "classifier.3": "fbin"}),
    Idiom("bireal_approx_sign", ApproxSignNet, S, {"conv": "fbin"}),
    Idiom("reactnet_rsign", RSignNet, S, {"conv": "fbin"}),
    Idiom("weights_binarized_in_forward", WeightsInForward, S,
          {"w": "wbin", "fc_weight": "wbin"}),
    Idiom("conv_subclass_weight_pre_process", PreprocNet, S, {"conv": "fbin"}),
    Idiom("stored_binary_weights", stored_binary, S, {"0": "fprec", "3": "wbin", "8": "wbin"}),
    Idiom("scale_after_binary_conv", ScaledBinConv, S, {"conv": "fbin"}),
    Idiom("bn_clamped_in_forward", ClampedBNNet, S, {"conv": "fbin"}),
    Idiom("dead_code", DeadCode, S, {"conv": "fbin"}),
    Idiom("shape_control_flow", ShapeFlow, S, {"conv": "fbin"}),
    Idiom("linear_subclass", SubclassNet, S, {"fc": "wbin"}),
    Idiom("hbn_binactive_and_bn_free_fullbin", HbnBinActive, S, {"conv": "fbin", "fb": "fbin"}),
    Idiom("sign_as_arithmetic", ArithmeticSign, S, {"conv1": "fbin", "conv2": "fbin"}),
    Idiom("sign_of_relu_exact", lambda: SignOfReluBlocks("relu"), S,
          {"conv1": "fbin", "conv2": "fbin", "conv3": "fbin", "fc": "fbin", "stem.conv": "fprec"}),
    Idiom("clamp_min0_sign_exact", lambda: SignOfReluBlocks("clamp"), S,
          {"conv1": "fbin", "conv2": "fbin", "conv3": "fbin", "fc": "fbin"}),
    Idiom("sign_of_relu6_exact", lambda: SignOfReluBlocks("relu6"), S,
          {"conv1": "fbin", "conv2": "fbin", "conv3": "fbin", "fc": "fbin"}),
    Idiom("ste_of_relu_exact", lambda: SignOfReluBlocks("ste"), S,
          {"conv1": "fbin", "conv2": "fbin", "conv3": "fbin", "fc": "fbin"}),
    Idiom("xnor_k_sign_of_relu", XnorKSignOfRelu, S, {"conv": "fbin"}),
    Idiom("zero_pads_around_sign_of_relu", PaddedSignOfRelu, S, {"conv1": "fbin", "conv2": "fbin"}),
    Idiom("max_pool_after_sign", PooledSign, S, {"conv": "fbin"}),
    Idiom("max_pool_after_mixed_sign", PooledMixedSign, S, {"conv": "wbin"}),
    Idiom("max_pool_after_sign_of_relu", PooledSignOfRelu, (3, 12, 12),
          {"conv1": "fbin", "conv2": "fbin", "conv3": "fbin"}),
    Idiom("sign_of_relu_mixed_refused", SignOfRelu, S,
          refuse=r"node sign .*torch\.sign.*can be exactly 0.*can also be negative \(channels 1, 3, "
                 r"5, 7\).*sign_zero='plus_one'"),
    Idiom("sign_of_relu_plus_one", SignOfRelu, S, {"conv": "fbin"}, sign_zero="plus_one",
          reference=PlusOneReference),
    Idiom("rprelu", RPReLUNet, S, {"stem.conv": "fprec", "head.fc": "fprec"}),
    Idiom("prelu", lambda: Simple(nn.PReLU(8)), S, {"stem.conv": "fprec", "head.fc": "fprec"}),
    Idiom("leaky_relu", lambda: Simple(nn.LeakyReLU(0.1)), S, {"stem.conv": "fprec", "head.fc": "fprec"}),
    Idiom("hardtanh_activation", lambda: Simple(nn.Hardtanh()), S,
          {"stem.conv": "fprec", "head.fc": "fprec"}),
    Idiom("clamp_activation", lambda: Functional(lambda x: x.clamp(-1, 1)), S,
          {"stem.conv": "fprec", "head.fc": "fprec"}),
    Idiom("relu6_one_sided_clamp", lambda: Functional(lambda x: F.relu6(x).clamp(max=2.5)), S,
          {"stem.conv": "fprec", "head.fc": "fprec"}),
    Idiom("log_softmax", LogSoftmaxHead, S, {"stem.conv": "fprec", "head.fc": "fprec"}),
    Idiom("constant_pad", lambda: Simple(nn.ConstantPad2d(1, 0.0)), S,
          {"stem.conv": "fprec", "head.fc": "fprec"}),
    Idiom("f_pad_value", lambda: Functional(lambda x: F.pad(x, (2, 0, 1, 1), value=-0.5)), S,
          {"stem.conv": "fprec", "head.fc": "fprec"}),
    Idiom("grouped_binary_conv", GroupedBinary, S,
          refuse=r"node conv2d.*groups=2.*binarized.*binary grouped convs are not an engine op"),
    Idiom("alexnet_grouped_float_conv", GroupedFloat, S,
          {"stem.conv": "fprec", "conv": "fprec", "head.fc": "fprec"}),
    Idiom("mobilenet_depthwise_float_conv", DepthwiseFloat, S,
          {"stem.conv": "fprec", "dw": "fprec", "pw": "fprec", "head.fc": "fprec"}),
    Idiom("xnor_k_in_forward", XnorK, S, {"conv": "fbin"}),
    Idiom("xnor_k_as_constant_conv", lambda: XnorK("conv"), S, {"conv": "fbin"}),
    Idiom("xnor_k_other_window", lambda: XnorK("other"), S,
          refuse=r"node mul\w* .*product of two tensors"),
    Idiom("data_dependent_control_flow", DataFlow, S,
          refuse=r"node gt .*control flow on a value computed from the model input"),
    Idiom("sign_into_float_conv", SignIntoFloat, S, {"stem.conv": "fprec", "conv": "fprec"}),
    Idiom("sign_into_residual_add", SignIntoResidual, S, {"conv": "fbin"}),
]
