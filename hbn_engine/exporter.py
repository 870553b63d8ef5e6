"""PyTorch -> .hbn exporter (needs torch).

``export(model, example_input, path)`` traces the model with torch.fx (the hbn_engine.nn layers
are leaves), propagates shapes with ``example_input`` and lowers every node to the engine's ops.
No per-model code: residual adds, ``torch.cat``, pooling and flatten in user models export as
they are. BatchNorm is folded where exact:

* BN before sign (inside FullBinConv2d / FullBinLinear) becomes a per-channel threshold and
  flip: ``sign(a*x + b)`` is ``x < -b/a`` for a > 0, ``x > -b/a`` (flip) for a < 0 and a
  constant channel (threshold -inf / +inf) for a == 0 (sign(0) = +1, hbn/types.h).
* BN after a convolution (inside WeightBinConv2d, or a BatchNorm module right after any conv or
  linear, including a float one) folds into the output transform's per-channel scale and bias.
* Any other BN becomes a standalone per-channel affine op; Dropout and Identity vanish.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from hbn_engine import __version__
from hbn_engine import kernel_layout
from hbn_engine.format import OP_TYPES, Op, op_kind, write_hbn
from hbn_engine.nn import (
    BINARY_LAYERS,
    FullBinConv2d,
    FullBinLinear,
    WeightBinConv2d,
    WeightBinLinear,
)

EXPORTER_VERSION = f"hbn_engine {__version__} exporter 1"

__all__ = ["export", "ExportError", "pack_sign_bits", "EXPORTER_VERSION"]


class ExportError(ValueError):
    """The model uses a module or op the engine cannot run (the message names it)."""


def pack_sign_bits(sign_w: np.ndarray) -> np.ndarray:
    """+-1 weights [OC, IC, KH, KW] (or a boolean "is negative" mask of that shape) ->
    canonical bits uint64 [OC, KH, KW, words] (bit 1 = -1, channels LSB first, tail 0)."""
    oc, ic, kh, kw = sign_w.shape
    neg = np.ascontiguousarray((sign_w < 0 if sign_w.dtype != np.bool_ else sign_w)
                               .transpose(0, 2, 3, 1))
    words = (ic + 63) // 64
    padded = np.zeros((oc, kh, kw, words * 64), dtype=np.uint8)
    padded[..., :ic] = neg
    packed = np.packbits(padded, axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").reshape(oc, kh, kw, words)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float64).numpy()


def _bn_affine(bn: Union[nn.BatchNorm1d, nn.BatchNorm2d]) -> tuple[np.ndarray, np.ndarray]:
    """Eval BatchNorm as y = a * x + b (float64)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ExportError(f"BatchNorm {bn} has no running statistics (track_running_stats=False)")
    mean, var = _np(bn.running_mean), _np(bn.running_var)
    inv = 1.0 / np.sqrt(var + bn.eps)
    gamma = _np(bn.weight) if bn.weight is not None else np.ones_like(mean)
    beta = _np(bn.bias) if bn.bias is not None else np.zeros_like(mean)
    a = gamma * inv
    return a, beta - mean * a


def _sign_thresholds(bn: Optional[nn.Module]) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """BN before sign -> (threshold f32, flip u8) with bit = flip ? x > thr : x < thr."""
    if bn is None or isinstance(bn, nn.Identity):
        return None, None
    if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
        raise ExportError(f"unsupported normalisation {type(bn).__name__} before sign")
    mean, var = _np(bn.running_mean), _np(bn.running_var)
    gamma = _np(bn.weight) if bn.weight is not None else np.ones_like(mean)
    beta = _np(bn.bias) if bn.bias is not None else np.zeros_like(mean)
    std = np.sqrt(var + bn.eps)
    thr = np.empty_like(mean)
    flip = np.zeros(mean.shape, dtype=np.uint8)
    pos, neg, zero = gamma > 0, gamma < 0, gamma == 0
    # bn(x) = gamma * (x - mean) / std + beta < 0  <=>  x < mean - beta * std / gamma (gamma > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = mean - beta * std / gamma
    thr[pos] = t[pos]
    thr[neg] = t[neg]
    flip[neg] = 1
    # Constant channel: sign(beta); bit 1 (-1) always when beta < 0, never otherwise.
    thr[zero] = np.where(beta[zero] < 0, np.inf, -np.inf)
    return thr.astype(np.float32), flip


@dataclass
class _IROp:
    type: str
    name: str
    inputs: list[str]  # value names
    attrs: dict[str, Union[int, float]] = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)
    out: str = ""


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, BINARY_LAYERS) or super().is_leaf_module(m, qualname)


def _pair(v: Any, what: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(i, int) for i in v):
        return (int(v[0]), int(v[1]))
    raise ExportError(f"{what}: unsupported value {v!r}")


class _Lowering:
    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.ops: list[_IROp] = []
        self.value_of: dict[fx.Node, str] = {}  # fx node -> IR value name
        self.rank: dict[str, int] = {}  # IR value -> tensor rank (4 or 2)
        self.input_shape: Optional[tuple[int, int, int]] = None
        self.output: Optional[str] = None

    # helpers -------------------------------------------------------------------------------
    def _shape(self, node: fx.Node) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise ExportError(f"node {node.name} ({node.op} {node.target}) does not produce a "
                              "single tensor")
        return tuple(meta.shape)

    def _in(self, arg: Any, node: fx.Node) -> str:
        if not isinstance(arg, fx.Node) or arg not in self.value_of:
            raise ExportError(f"node {node.name} ({node.target}): argument {arg!r} is not a "
                              "tensor computed by the model")
        return self.value_of[arg]

    def _emit(self, node: fx.Node, type_: str, inputs: list[str], name: Optional[str] = None,
              **kw: Any) -> None:
        op = _IROp(type_, name or node.name, inputs, kw.get("attrs", {}), kw.get("params", {}))
        op.out = f"v{len(self.ops) + 1}:{op.name}"
        self.ops.append(op)
        self.value_of[node] = op.out
        self.rank[op.out] = len(self._shape(node))

    def _alias(self, node: fx.Node, src: str) -> None:
        self.value_of[node] = src

    # lowering ------------------------------------------------------------------------------
    def run(self) -> None:
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                shape = self._shape(node)
                if self.input_shape is not None:
                    raise ExportError("models with more than one input are not supported")
                if len(shape) != 4:
                    raise ExportError(f"the model input must be 4-D NCHW, got shape {shape}")
                self.input_shape = tuple(int(s) for s in shape[1:])
                self.value_of[node] = "input"
                self.rank["input"] = 4
            elif node.op == "call_module":
                self._module(node)
            elif node.op == "call_function":
                self._function(node)
            elif node.op == "call_method":
                self._method(node)
            elif node.op == "get_attr":
                continue  # only an error if a tensor op consumes it (_in raises)
            elif node.op == "output":
                out = node.args[0]
                if isinstance(out, (tuple, list)):
                    if len(out) != 1:
                        raise ExportError("models with more than one output are not supported")
                    out = out[0]
                self.output = self._in(out, node)
        if self.output in (None, "input"):
            raise ExportError("the model output must be computed by at least one op")

    def _module(self, node: fx.Node) -> None:
        m = self.modules[node.target]
        name = str(node.target)
        x = self._in(node.args[0], node) if node.args else None
        if len(node.args) != 1 or node.kwargs:
            raise ExportError(f"module {name} ({type(m).__name__}) called with extra arguments")
        if isinstance(m, (nn.Dropout, nn.Dropout2d, nn.Identity)):
            return self._alias(node, x)
        if hasattr(m, "hbn_op"):  # front-end leaves (hbn_engine/frontend/leaves.py) say their op
            type_, attrs, params = m.hbn_op()
            return self._emit(node, type_, [x], name, attrs=attrs, params=params)
        if isinstance(m, nn.Conv2d):
            if tuple(m.dilation) != (1, 1) or m.padding_mode != "zeros" \
                    or isinstance(m.padding, str):
                raise ExportError(f"module {name} (Conv2d): dilation, string padding and "
                                  "non-zero padding modes are not supported")
            params = {"weight": _np(m.weight).astype(np.float32)}
            if m.bias is not None:
                params["bias"] = _np(m.bias).astype(np.float32)
            attrs = self._conv_attrs(m.stride, m.padding)
            if m.groups != 1:  # grouped / depthwise: its own op (one GEMM per group or direct)
                self._need_rank(node, x, 4, name, "grouped Conv2d")
                return self._emit(node, "conv_grouped_f32", [x], name,
                                  attrs={**attrs, "groups": int(m.groups)}, params=params)
            return self._emit(node, "conv_f32", [x], name, attrs=attrs, params=params)
        if isinstance(m, nn.Linear):
            self._need_rank(node, x, 2, name, "Linear")
            params = {"weight": _np(m.weight).astype(np.float32)[:, :, None, None]}
            if m.bias is not None:
                params["bias"] = _np(m.bias).astype(np.float32)
            return self._emit(node, "conv_f32", [x], name,
                              attrs={**self._conv_attrs(1, 0), "linear": 1}, params=params)
        if isinstance(m, (FullBinConv2d, FullBinLinear)):
            return self._fullbin(node, m, x, name)
        if isinstance(m, (WeightBinConv2d, WeightBinLinear)):
            return self._weightbin(node, m, x, name)
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            a, b = _bn_affine(m)
            return self._emit(node, "batchnorm", [x], name,
                              params={"scale": a.astype(np.float32), "shift": b.astype(np.float32)})
        if isinstance(m, nn.ReLU):
            return self._emit(node, "relu", [x], name)
        if isinstance(m, nn.PReLU):
            return self._emit(node, "prelu", [x], name,
                              params={"slope": _np(m.weight).astype(np.float32).reshape(-1)})
        if isinstance(m, nn.LeakyReLU):
            # max(0, x) + s * min(0, x) is PReLU with one shared slope: the same float ops.
            return self._emit(node, "prelu", [x], name,
                              params={"slope": np.array([m.negative_slope], dtype=np.float32)})
        if isinstance(m, nn.ConstantPad2d):  # nn.ZeroPad2d is a ConstantPad2d(p, 0.0)
            return self._pad(node, x, name, m.padding, m.value)
        if isinstance(m, nn.Hardtanh):  # nn.ReLU6 is a Hardtanh(0, 6)
            return self._clamp(node, x, name, m.min_val, m.max_val)
        if isinstance(m, nn.MaxPool2d):
            if m.dilation not in (1, (1, 1)) or m.return_indices:
                raise ExportError(f"module {name} (MaxPool2d): dilation/return_indices unsupported")
            return self._pool(node, "max_pool", x, name, m.kernel_size, m.stride, m.padding,
                              m.ceil_mode)
        if isinstance(m, nn.AvgPool2d):
            if m.divisor_override is not None:
                raise ExportError(f"module {name} (AvgPool2d): divisor_override unsupported")
            return self._pool(node, "avg_pool", x, name, m.kernel_size, m.stride, m.padding,
                              m.ceil_mode, m.count_include_pad)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return self._adaptive(node, x, name)
        if isinstance(m, nn.Flatten):
            return self._flatten(node, x, name, m.start_dim, m.end_dim)
        if isinstance(m, nn.Softmax):
            return self._softmax(node, x, name, m.dim)
        if isinstance(m, nn.LogSoftmax):
            return self._softmax(node, x, name, m.dim, "log_softmax")
        if isinstance(m, nn.LocalResponseNorm):
            return self._emit(node, "lrn", [x], name, attrs={
                "size": int(m.size), "alpha": float(m.alpha), "beta": float(m.beta),
                "k": float(m.k)})
        raise ExportError(f"unsupported module {name!r} of type {type(m).__module__}."
                          f"{type(m).__name__}")

    def _need_rank(self, node: fx.Node, x: str, rank: int, name: str, what: str) -> None:
        if self.rank.get(x) != rank:
            raise ExportError(f"{name} ({what}) needs a {rank}-D input, got "
                              f"{self.rank.get(x)}-D")

    @staticmethod
    def _conv_attrs(stride: Any, padding: Any) -> dict[str, int]:
        sh, sw = _pair(stride, "stride")
        ph, pw = _pair(padding, "padding")
        return {"stride_h": sh, "stride_w": sw, "pad_h": ph, "pad_w": pw, "act": 0}

    def _binary_weights(self, node: fx.Node, m: nn.Module, x: str, name: str,
                        linear: bool) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """What FullBin and WeightBin layers share: the sign bits as OIHW (bit 1 encodes -1),
        alpha, and the geometry / activation attributes."""
        self._need_rank(node, x, 2 if linear else 4, name, type(m).__name__)
        sign_w, alpha = m.binary_weight()
        w = (sign_w.detach() < 0).cpu().numpy()
        if linear:
            w = w[:, :, None, None]
        attrs = (self._conv_attrs(1, 0) if linear else self._conv_attrs(m.stride, m.padding))
        attrs["in_channels"] = int(w.shape[1])
        attrs["act"] = 1 if m.activation == "relu" else 0
        if linear:
            attrs["linear"] = 1
        return w, _np(alpha), attrs

    def _fullbin(self, node: fx.Node, m: nn.Module, x: str, name: str) -> None:
        w, alpha, attrs = self._binary_weights(node, m, x, name, isinstance(m, FullBinLinear))
        thr, flip = _sign_thresholds(m.bn)
        params = {"weight": pack_sign_bits(w), "scale": alpha.astype(np.float32)}
        if m.bias is not None:
            params["bias"] = _np(m.bias).astype(np.float32)
        if thr is not None:
            params["in_threshold"], params["in_flip"] = thr, flip
        if getattr(m, "input_scale", False):
            attrs["input_scale"] = 1
            if m.bn is None:
                a, b = np.ones(w.shape[1]), np.zeros(w.shape[1])
            else:
                a, b = _bn_affine(m.bn)
            params["bn_scale"], params["bn_shift"] = a.astype(np.float32), b.astype(np.float32)
        self._emit(node, "conv_fbin", [x], name, attrs=attrs, params=params)

    def _weightbin(self, node: fx.Node, m: nn.Module, x: str, name: str) -> None:
        w, scale, attrs = self._binary_weights(node, m, x, name, isinstance(m, WeightBinLinear))
        bias = _np(m.bias) if m.bias is not None else None
        if m.bn is not None:
            a, b = _bn_affine(m.bn)
            bias = (bias if bias is not None else 0.0) * a + b
            scale = scale * a
        params = {"weight": pack_sign_bits(w), "scale": scale.astype(np.float32)}
        if bias is not None:
            params["bias"] = np.asarray(bias, dtype=np.float32)
        self._emit(node, "conv_wbin", [x], name, attrs=attrs, params=params)

    def _pool(self, node: fx.Node, type_: str, x: str, name: str, k: Any, s: Any, p: Any,
              ceil_mode: bool, count_include_pad: bool = True) -> None:
        self._need_rank(node, x, 4, name, type_)
        kh, kw = _pair(k, f"{name} kernel_size")
        sh, sw = _pair(s if s not in (None, []) else k, f"{name} stride")
        ph, pw = _pair(p, f"{name} padding")
        attrs = {"kernel_h": kh, "kernel_w": kw, "stride_h": sh, "stride_w": sw, "pad_h": ph,
                 "pad_w": pw, "ceil_mode": int(bool(ceil_mode))}
        if type_ == "avg_pool":
            attrs["count_include_pad"] = int(bool(count_include_pad))
        self._emit(node, type_, [x], name, attrs=attrs)

    def _adaptive(self, node: fx.Node, x: str, name: str) -> None:
        self._need_rank(node, x, 4, name, "adaptive_avg_pool2d")
        shape = self._shape(node)
        self._emit(node, "adaptive_avg_pool", [x], name,
                   attrs={"out_h": int(shape[2]), "out_w": int(shape[3])})

    def _flatten(self, node: fx.Node, x: str, name: str, start: int, end: int) -> None:
        shape = self._shape(node)
        if self.rank[x] == 2 and len(shape) == 2:
            return self._alias(node, x)
        if self.rank[x] != 4 or len(shape) != 2 or start != 1 or end not in (-1, 3):
            raise ExportError(f"{name}: only flattening NCHW to [N, C*H*W] is supported "
                              f"(start_dim=1), got start_dim={start}, end_dim={end}")
        self._emit(node, "flatten", [x], name)

    def _softmax(self, node: fx.Node, x: str, name: str, dim: Optional[int],
                 type_: str = "softmax", dtype: Any = None) -> None:
        rank = self.rank[x]
        if dim is None and rank in (2, 4):
            dim = 1  # torch's implicit dim for 2-D and 4-D inputs (it warns about it)
        if dim is None or dim not in (1, 1 - rank):
            raise ExportError(f"{name}: {type_} only over dim 1 (channels), got dim={dim}")
        if dtype is not None:
            raise ExportError(f"{name}: {type_} with dtype={dtype} is not supported")
        self._emit(node, type_, [x], name)

    def _clamp(self, node: fx.Node, x: str, name: str, lo: Any, hi: Any) -> None:
        """torch.clamp / Hardtanh / ReLU6 with constant bounds (either may be None)."""
        for what, v in (("min", lo), ("max", hi)):
            if v is not None and (isinstance(v, (fx.Node, torch.Tensor)) or isinstance(v, bool)
                                  or not isinstance(v, (int, float))):
                raise ExportError(f"{name}: clamp {what} must be a Python number, got {v!r}")
        if lo is None and hi is None:
            raise ExportError(f"{name}: clamp needs min or max")
        attrs: dict[str, float] = {}
        for key, v in (("min", lo), ("max", hi)):
            if v is not None:
                f32 = np.float32(v)  # torch casts a scalar bound to the tensor's float32
                if not np.isfinite(f32):
                    raise ExportError(f"{name}: clamp {key}={v!r} is not a finite float32")
                attrs[key] = float(f32)
        if lo is not None and hi is not None and attrs["min"] > attrs["max"]:
            raise ExportError(f"{name}: clamp with min > max ({lo!r} > {hi!r}) is not supported")
        self._emit(node, "clamp", [x], name, attrs=attrs)

    def _pad(self, node: fx.Node, x: str, name: str, pad: Any, value: Any) -> None:
        """Constant padding of W (2 widths) or W and H (4), torch's (left, right, top, bottom)."""
        self._need_rank(node, x, 4, name, "constant pad")
        pad = tuple(pad) if isinstance(pad, (tuple, list)) else pad
        if not (isinstance(pad, tuple) and len(pad) in (2, 4)
                and all(isinstance(p, int) and not isinstance(p, bool) for p in pad)):
            raise ExportError(f"{name}: constant padding of H / W only (2 or 4 integer widths), "
                              f"got pad={pad!r}")
        if any(p < 0 for p in pad):
            raise ExportError(f"{name}: negative padding (cropping) is not supported: {pad!r}")
        left, right, top, bottom = (tuple(pad) + (0, 0))[:4]
        value = 0.0 if value is None else value
        if isinstance(value, (fx.Node, torch.Tensor)) or isinstance(value, bool) \
                or not isinstance(value, (int, float)):
            raise ExportError(f"{name}: pad value must be a Python number, got {value!r}")
        if not np.isfinite(np.float32(value)):
            raise ExportError(f"{name}: pad value {value!r} is not a finite float32 (an -inf pad "
                              "before a max-pool is not supported)")
        attrs: dict[str, Union[int, float]] = {"pad_top": top, "pad_bottom": bottom,
                                               "pad_left": left, "pad_right": right}
        if value != 0:
            attrs["value"] = float(np.float32(value))
        self._emit(node, "pad", [x], name, attrs=attrs)

    def _function(self, node: fx.Node) -> None:
        f, a, kw = node.target, node.args, node.kwargs
        name = node.name
        if node.meta.get("tensor_meta") is None:
            return  # a non-tensor value (e.g. a size); only an error if a tensor op uses it
        if f in (operator.add, operator.iadd, torch.add):
            if len(a) != 2 or kw or not all(isinstance(v, fx.Node) for v in a):
                raise ExportError(f"{name}: only tensor + tensor is supported for add")
            return self._emit(node, "add", [self._in(a[0], node), self._in(a[1], node)], name)
        if f in (torch.cat, torch.concat):
            tensors = a[0]
            dim = a[1] if len(a) > 1 else kw.get("dim", 0)
            x0 = self._in(tensors[0], node)
            if dim not in (1, 1 - self.rank[x0]):
                raise ExportError(f"{name}: torch.cat only along dim 1 (channels), got dim={dim}")
            return self._emit(node, "concat", [self._in(t, node) for t in tensors], name)
        if f is torch.flatten:
            start = a[1] if len(a) > 1 else kw.get("start_dim", 0)
            end = a[2] if len(a) > 2 else kw.get("end_dim", -1)
            return self._flatten(node, self._in(a[0], node), name, start, end)
        if f in (F.relu, torch.relu):
            return self._emit(node, "relu", [self._in(a[0], node)], name)
        if f is F.pad:
            args = self._fargs(a, kw, ("input", "pad", "mode", "value"),
                               {"mode": "constant", "value": None})
            if args["mode"] != "constant":
                raise ExportError(f"{name}: F.pad mode={args['mode']!r} is not supported "
                                  "(only 'constant')")
            return self._pad(node, self._in(a[0], node), name, args["pad"], args["value"])
        if f in (F.hardtanh, F.hardtanh_):
            args = self._fargs(a, kw, ("input", "min_val", "max_val", "inplace"),
                               {"min_val": -1.0, "max_val": 1.0})
            return self._clamp(node, self._in(a[0], node), name, args["min_val"], args["max_val"])
        if f is F.relu6:
            return self._clamp(node, self._in(a[0], node), name, 0.0, 6.0)
        if f in (torch.clamp, torch.clip, torch.clamp_, torch.clip_):
            args = self._fargs(a, kw, ("input", "min", "max"), {"min": None, "max": None})
            return self._clamp(node, self._in(a[0], node), name, args["min"], args["max"])
        if f in (torch.clamp_min, torch.clamp_max):
            bound = a[1] if len(a) > 1 else kw.get("min", kw.get("max"))
            lo, hi = (bound, None) if f is torch.clamp_min else (None, bound)
            return self._clamp(node, self._in(a[0], node), name, lo, hi)
        if f in (F.dropout, F.dropout2d):
            return self._alias(node, self._in(a[0], node))
        if f is F.max_pool2d:
            args = self._fargs(a, kw, ("input", "kernel_size", "stride", "padding", "dilation",
                                        "ceil_mode", "return_indices"),
                               {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False,
                                "return_indices": False})
            if args["dilation"] not in (1, (1, 1)) or args["return_indices"]:
                raise ExportError(f"{name}: max_pool2d dilation/return_indices unsupported")
            return self._pool(node, "max_pool", self._in(a[0], node), name, args["kernel_size"],
                              args["stride"], args["padding"], args["ceil_mode"])
        if f is F.avg_pool2d:
            args = self._fargs(a, kw, ("input", "kernel_size", "stride", "padding", "ceil_mode",
                                        "count_include_pad", "divisor_override"),
                               {"stride": None, "padding": 0, "ceil_mode": False,
                                "count_include_pad": True, "divisor_override": None})
            if args["divisor_override"] is not None:
                raise ExportError(f"{name}: avg_pool2d divisor_override unsupported")
            return self._pool(node, "avg_pool", self._in(a[0], node), name, args["kernel_size"],
                              args["stride"], args["padding"], args["ceil_mode"],
                              args["count_include_pad"])
        if f is F.adaptive_avg_pool2d:
            return self._adaptive(node, self._in(a[0], node), name)
        if f in (F.softmax, torch.softmax, F.log_softmax, torch.log_softmax):
            type_ = "softmax" if f in (F.softmax, torch.softmax) else "log_softmax"
            names = ("input", "dim", "_stacklevel", "dtype") if f in (F.softmax, F.log_softmax) \
                else ("input", "dim", "dtype")
            args = self._fargs(a, kw, names, {"dim": None, "dtype": None})
            return self._softmax(node, self._in(a[0], node), name, args["dim"], type_,
                                 args["dtype"])
        raise ExportError(f"unsupported function {getattr(f, '__module__', '')}."
                          f"{getattr(f, '__name__', f)} at node {name}")

    @staticmethod
    def _fargs(a: Sequence[Any], kw: dict[str, Any], names: Sequence[str],
               defaults: dict[str, Any]) -> dict[str, Any]:
        out = dict(defaults)
        out.update(dict(zip(names, a)))
        out.update(kw)
        return out

    def _method(self, node: fx.Node) -> None:
        meth, a, name = node.target, node.args, node.name
        if node.meta.get("tensor_meta") is None or meth == "size":
            return
        x = self._in(a[0], node)
        if meth in ("contiguous", "clone", "detach"):
            return self._alias(node, x)
        if meth in ("relu", "relu_"):
            return self._emit(node, "relu", [x], name)
        if meth in ("add", "add_", "__add__"):
            if len(a) != 2 or node.kwargs:
                raise ExportError(f"{name}: only tensor.add(tensor) is supported")
            return self._emit(node, "add", [x, self._in(a[1], node)], name)
        if meth in ("view", "reshape", "flatten"):
            shape = self._shape(node)
            if meth == "flatten":
                start = a[1] if len(a) > 1 else node.kwargs.get("start_dim", 0)
                end = a[2] if len(a) > 2 else node.kwargs.get("end_dim", -1)
                return self._flatten(node, x, name, start, end)
            if len(shape) == 2:
                return self._flatten(node, x, name, 1, -1)
            raise ExportError(f"{name}: {meth} to shape {shape} is not supported "
                              "(only [N, -1])")
        if meth == "mean":
            dims = a[1] if len(a) > 1 else node.kwargs.get("dim")
            dims = tuple(dims) if isinstance(dims, (list, tuple)) else (dims,)
            if self.rank[x] == 4 and sorted(d % 4 for d in dims) == [2, 3]:
                shape = self._shape(node)
                op_name = name if len(shape) == 4 else name + "_pool"
                self._emit(node, "adaptive_avg_pool", [x], op_name, attrs={"out_h": 1, "out_w": 1})
                if len(shape) == 2:
                    self.rank[self.value_of[node]] = 4
                    self._emit(node, "flatten", [self.value_of[node]], name)
                return
            raise ExportError(f"{name}: mean over dims {dims} is not supported")
        if meth in ("clamp", "clip", "clamp_", "clip_"):
            args = self._fargs(a, node.kwargs, ("self", "min", "max"), {"min": None, "max": None})
            return self._clamp(node, x, name, args["min"], args["max"])
        if meth in ("clamp_min", "clamp_min_", "clamp_max", "clamp_max_"):
            bound = a[1] if len(a) > 1 else node.kwargs.get("min", node.kwargs.get("max"))
            lo, hi = (bound, None) if meth.startswith("clamp_min") else (None, bound)
            return self._clamp(node, x, name, lo, hi)
        if meth in ("softmax", "log_softmax"):
            args = self._fargs(a, node.kwargs, ("self", "dim", "dtype"),
                               {"dim": None, "dtype": None})
            return self._softmax(node, x, name, args["dim"], meth, args["dtype"])
        raise ExportError(f"unsupported tensor method .{meth}() at node {name}")


def _pad_folds(pad: _IROp, conv: _IROp) -> bool:
    """Whether a pad op is exactly the conv's own (symmetric, zero) padding grown."""
    a = pad.attrs
    return (a.get("value", 0.0) == 0.0 and not conv.attrs.get("linear", 0)
            and a["pad_top"] == a["pad_bottom"] and a["pad_left"] == a["pad_right"]
            and conv.attrs["pad_h"] + a["pad_top"] <= 64
            and conv.attrs["pad_w"] + a["pad_left"] <= 64)


def _fuse(ops: list[_IROp], output: str) -> tuple[list[_IROp], str]:
    """Fold BN into a preceding conv and ReLU into a preceding conv/add/affine when the
    producer's result has no other consumer."""
    consumers: dict[str, int] = {}
    for op in ops:
        for v in op.inputs:
            consumers[v] = consumers.get(v, 0) + 1
    producer = {op.out: op for op in ops}
    rename: dict[str, str] = {}
    kept: list[_IROp] = []
    for op in ops:
        op.inputs = [rename.get(v, v) for v in op.inputs]
        src = producer.get(op.inputs[0]) if op.inputs else None
        sole = (src is not None and consumers.get(src.out, 0) == 1 and src.out != output)
        if op.type == "batchnorm" and sole and src.type.startswith("conv_") \
                and src.attrs.get("act", 0) == 0:
            a = op.params["scale"].astype(np.float64)
            b = op.params["shift"].astype(np.float64)
            scale = src.params.get("scale")
            bias = src.params.get("bias")
            src.params["scale"] = ((scale.astype(np.float64) if scale is not None else 1.0)
                                   * a).astype(np.float32)
            src.params["bias"] = ((bias.astype(np.float64) if bias is not None else 0.0) * a
                                  + b).astype(np.float32)
            rename[op.out] = src.out
            continue
        if op.type in ("conv_f32", "conv_wbin", "conv_grouped_f32") and src is not None \
                and src.type == "pad" \
                and consumers.get(src.out, 0) == 1 and src.out != output \
                and _pad_folds(src, op):
            # Zero padding before a float-input conv is the conv's own zero padding: the padded
            # taps add exact zeros either way. (Not conv_fbin: it binarizes its input, and a
            # padded 0 would become +1 where its own padding adds nothing.)
            op.attrs["pad_h"] += src.attrs["pad_top"]
            op.attrs["pad_w"] += src.attrs["pad_left"]
            op.inputs = [src.inputs[0]] + op.inputs[1:]
        if op.type == "relu" and sole and (src.type.startswith("conv_")
                                           or src.type in ("add", "batchnorm")) \
                and src.attrs.get("act", 0) == 0:
            src.attrs["act"] = 1
            rename[op.out] = src.out
            continue
        kept.append(op)
    return kept, rename.get(output, output)


def _check_input_norm(input_norm: Any, channels: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        mean, std = input_norm
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        std = np.asarray(std, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError("input_norm must be (mean, std), each a sequence with one value per "
                         f"input channel in pixel units (0..255), got {input_norm!r}") from None
    if mean.size == 1:
        mean = np.repeat(mean, channels)
    if std.size == 1:
        std = np.repeat(std, channels)
    if mean.size != channels or std.size != channels:
        raise ValueError(f"input_norm has {mean.size} means and {std.size} stds, the model "
                         f"input has {channels} channels")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
        raise ValueError("input_norm: mean must be finite and std finite and > 0")
    return mean.astype(np.float32), std.astype(np.float32)


def _int8_targets(ops: list[_IROp], edges: str, int8_layers: Optional[Sequence[str]],
                  wbin: str = "exact") -> list[_IROp]:
    """The ops to quantize: the graph's first and last conv / linear when edges="int8" (those
    are float in FBin / Hybrid models; an edge WeightBin *convolution*, such as SqueezeNet's
    conv10, is taken too, by the rule of wbin="int8"), every WeightBin convolution when
    wbin="int8", plus every layer named (float -> conv_q8, WeightBin -> conv_wbin_q8)."""
    if edges not in ("fp32", "int8"):
        raise ValueError(f"edges must be 'fp32' or 'int8', got {edges!r}")
    if wbin not in ("exact", "int8"):
        raise ValueError(f"wbin must be 'exact' or 'int8', got {wbin!r}")
    if isinstance(int8_layers, str):
        raise ValueError("int8_layers must be a sequence of layer names, not one string")
    convs = [op for op in ops if op.type.startswith("conv_")]
    picked: list[_IROp] = []
    if edges == "int8" and convs:
        picked += [op for op in (convs[0], convs[-1])
                   if op.type == "conv_f32" or _edge_wbin_conv(op)]
    if wbin == "int8":
        # Convolutions only: a WeightBin linear layer reads each weight once per image, so at
        # small batches it streams its weights, and int8 weights are 8x its bits (AlexNet's
        # fc6: 0.24 ms as bits, 0.93 ms as int8, docs/export.md). int8_layers can still name one.
        picked += [op for op in convs if op.type == "conv_wbin" and not op.attrs.get("linear")]
    by_name = {op.name: op for op in convs}
    for name in int8_layers or []:
        op = by_name.get(name)
        if op is None:
            raise ValueError(f"int8_layers: no conv / linear layer named {name!r} (layers: "
                             f"{', '.join(by_name)})")
        if op.type not in ("conv_f32", "conv_wbin"):
            raise ValueError(f"int8_layers: layer {name!r} is {op_kind(op.type)} ({op.type}); "
                             "only float and WeightBin conv / linear layers run in 8 bits")
        picked.append(op)
    out: list[_IROp] = []
    for op in picked:
        if all(op is not o for o in out):
            out.append(op)
    return out


def _edge_wbin_conv(op: _IROp) -> bool:
    """An edge layer that edges="int8" runs as conv_wbin_q8: a WeightBin convolution (its +-1 x
    alpha weights are exactly int8, only the input is quantized: the wbin="int8" rule). A
    WeightBin linear layer stays exact for that rule's reason (it streams its weights at small
    batches, int8 weights are 8x the bits), and so does a conv whose receptive field is over the
    int32 bound of the 8-bit GEMM (wbin="int8" / int8_layers refuse it; edges is a preset and
    leaves it as it is, noted in the report)."""
    from hbn_engine.quant import check_wbin_q8

    if op.type != "conv_wbin" or op.attrs.get("linear"):
        return False
    try:
        check_wbin_q8(op.name, int(op.attrs["in_channels"]), op.params["weight"].shape)
    except ValueError:
        return False
    return True


def _edge_wbin_notes(ops: list[_IROp], targets: list[_IROp]) -> list[str]:
    """Report notes for the edge WeightBin layers edges="int8" leaves exact."""
    convs = [op for op in ops if op.type.startswith("conv_")]
    notes = []
    for op in convs[:1] + ([convs[-1]] if len(convs) > 1 else []):
        if op.type != "conv_wbin" or any(op is t for t in targets):
            continue
        if op.attrs.get("linear"):
            why = ("a linear layer streams its weights at small batches and int8 weights are 8x "
                   "the bits; int8_layers names it to convert it")
        else:
            why = "its receptive field is over the 8-bit GEMM's int32 bound"
        notes.append(f"edges='int8': edge WeightBin layer {op.name} stays exact ({why})")
    return notes


def _calibrate(gm: fx.GraphModule, names: list[str], calibration: torch.Tensor,
               percentile: Optional[float]) -> dict[str, tuple[float, float]]:
    """Input range of each named layer over the calibration batch (PyTorch on the normalised
    graph): min / max, or the given two-sided percentile."""
    modules = dict(gm.named_modules())
    ranges: dict[str, tuple[float, float]] = {}
    hooks = []
    for name in names:
        m = modules.get(name)
        if m is None:
            raise ExportError(f"int8: cannot calibrate layer {name!r}: it is not a module of the "
                              "traced graph")

        def hook(mod: nn.Module, args: tuple, name: str = name) -> None:
            v = args[0].detach().to(torch.float64).reshape(-1)
            if percentile is None:
                lo, hi = float(v.min()), float(v.max())
            else:
                lo = float(torch.quantile(v, 1.0 - percentile / 100.0))
                hi = float(torch.quantile(v, percentile / 100.0))
            old = ranges.get(name)
            ranges[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
        hooks.append(m.register_forward_pre_hook(hook))
    try:
        for chunk in torch.split(calibration, 64):
            gm(chunk)
    finally:
        for h in hooks:
            h.remove()
    return ranges


def _to_conv_q8(op: _IROp, in_scale: float, in_zero: int) -> None:
    """conv_f32 -> conv_q8 in place: BN's folded scale goes into the weights before the
    per-output-channel symmetric quantization, so w_scale stays positive."""
    from hbn_engine.quant import quantize_weights

    w = op.params["weight"].astype(np.float64)
    scale = op.params.get("scale")
    if scale is not None:
        w = w * scale.astype(np.float64)[:, None, None, None]
    wq, w_scale = quantize_weights(w)
    bias = op.params.get("bias")
    op.type = "conv_q8"
    op.params = {"weight": wq, "w_scale": w_scale,
                 "bias": bias if bias is not None else np.zeros(w.shape[0], dtype=np.float32)}
    op.attrs = {**op.attrs, "in_scale": float(in_scale), "in_zero": int(in_zero)}


def _to_wbin_q8(op: _IROp, in_scale: float, in_zero: int) -> None:
    """conv_wbin -> conv_wbin_q8 in place: the sign bits and scale (alpha x BN scale) stay as
    they are (the weights are exactly int8 +-1 with that scale); only the input is quantized."""
    from hbn_engine.quant import check_wbin_q8

    check_wbin_q8(op.name, int(op.attrs["in_channels"]), op.params["weight"].shape)
    if op.params.get("scale") is None:
        op.params["scale"] = np.ones(op.params["weight"].shape[0], dtype=np.float32)
    op.type = "conv_wbin_q8"
    op.attrs = {**op.attrs, "in_scale": float(in_scale), "in_zero": int(in_zero)}


def _int8_reason(info: dict[str, Any]) -> str:
    if info.get("op") == "conv_wbin_q8":
        return (f"WeightBin on 8-bit input (conv_wbin_q8): +-1 weights x alpha (exact), input "
                f"scale {info['in_scale']:.4g} zero {info['in_zero']} from {info['source']}")
    return (f"8-bit (conv_q8): int8 weights per output channel, input scale "
            f"{info['in_scale']:.4g} zero {info['in_zero']} from {info['source']}")


def _quantize_targets(gm: fx.GraphModule, targets: list[_IROp],
                      norm: Optional[tuple[np.ndarray, np.ndarray]],
                      calibration: Optional[torch.Tensor], percentile: Optional[float],
                      image_shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """Turns the target conv_f32 ops into conv_q8 and returns what the metadata records."""
    from hbn_engine.quant import activation_params, norm_activation_params

    if not targets:
        if calibration is not None:
            raise ValueError("calibration given but no layer is int8 (pass edges='int8', "
                             "wbin='int8' or int8_layers=[...])")
        return []
    if percentile is not None and not (isinstance(percentile, (int, float))
                                       and 50.0 < float(percentile) <= 100.0):
        raise ValueError(f"calibration_percentile must be in (50, 100], got {percentile!r}")
    need_cal = [op for op in targets if not (norm is not None and op.inputs == ["input"])]
    ranges: dict[str, tuple[float, float]] = {}
    if need_cal:
        if calibration is None:
            raise ValueError("int8 layers " + ", ".join(op.name for op in need_cal) + " need "
                             "calibration=<float NCHW batch as the model takes it>")
        if not isinstance(calibration, torch.Tensor) or not calibration.is_floating_point() \
                or calibration.dim() != 4 or tuple(calibration.shape[1:]) != image_shape \
                or calibration.shape[0] < 1:
            got = (tuple(calibration.shape), calibration.dtype) \
                if isinstance(calibration, torch.Tensor) else type(calibration).__name__
            raise ValueError(f"calibration must be a float tensor [N, {', '.join(map(str, image_shape))}] "
                             f"(N >= 1, images as the model takes them), got {got}")
        if not torch.isfinite(calibration).all():
            raise ValueError("calibration contains NaN or infinity")
        ranges = _calibrate(gm, [op.name for op in need_cal], calibration.float(), percentile)
    for need in {"conv_q8" if op.type == "conv_f32" else "conv_wbin_q8" for op in targets}:
        if need not in OP_TYPES:
            raise ExportError(f"this build of the engine has no {need} op (8-bit layers)")
    info: list[dict[str, Any]] = []
    for op in targets:
        if any(op is o for o in need_cal):
            lo, hi = ranges[op.name]
            scale, zero = activation_params(lo, hi)
            how = ("calibration " + ("min/max" if percentile is None else
                                     f"{percentile}th percentile") +
                   f" of {int(calibration.shape[0])} images")
        else:
            scale, zero = norm_activation_params(norm[0], norm[1])
            lo, hi = (0 - zero) * scale, (255 - zero) * scale
            how = "the input_norm pixel range"
        entry = {"layer": op.name, "in_scale": scale, "in_zero": zero,
                 "range": [float(lo), float(hi)], "source": how}
        if op.type == "conv_wbin":
            _to_wbin_q8(op, scale, zero)
            entry["op"] = "conv_wbin_q8"
        else:
            _to_conv_q8(op, scale, zero)
        info.append(entry)
    return info


def export(model: nn.Module, example_input: torch.Tensor, path: str, *,
           model_name: Optional[str] = None, variant: Optional[str] = None,
           class_names: Optional[Sequence[str]] = None, sign_zero: str = "exact",
           input_norm: Optional[tuple[Sequence[float], Sequence[float]]] = None,
           edges: str = "fp32", int8_layers: Optional[Sequence[str]] = None,
           calibration: Optional[torch.Tensor] = None,
           calibration_percentile: Optional[float] = None,
           format_version: int = 2, wbin_layout: str = "bits32", wbin: str = "exact") -> Any:
    """Export ``model`` (eval semantics) to a .hbn file at ``path``.

    ``example_input`` is a float NCHW tensor (any batch size) used to trace shapes; the file
    stores the per-image shape and runs with any batch. Raises ExportError naming any module or
    op the engine cannot run. The front end (hbn_engine.frontend, docs/export.md) recognises
    binarization by what the graph computes; ``sign_zero="plus_one"`` accepts sign(0) = +1
    where a torch.sign input can be exactly 0. Returns the front end's ExportReport (per layer:
    FullBin / WeightBin / float / int8 and why).

    ``input_norm=(mean, std)`` (per channel, pixel units 0..255) makes the file take images:
    its first op computes ``(p - mean) / std``, so ``run`` accepts uint8 pixels (NCHW or NHWC)
    or the same pixel values as float32, and the model after it sees what ``model`` saw.

    ``edges="int8"`` runs the graph's first and last conv / linear in 8 bits when they are
    float (the edges of FBin / Hybrid models; an edge WeightBin convolution, e.g. SqueezeNet's
    conv10, runs on 8-bit input as with ``wbin="int8"``, an edge WeightBin linear layer stays
    exact), ``int8_layers=[names]`` any float conv / linear named: weights per output channel (max|w| / 127), activations per tensor from
    ``calibration`` (a float NCHW batch as ``model`` takes it; min / max, or
    ``calibration_percentile``) or, for an input normalised by ``input_norm``, from the pixel
    range. The default (``edges="fp32"``) stays exact. docs/export.md, "8-bit edges".

    ``wbin="int8"`` runs every WeightBin convolution on 8-bit input (``conv_wbin_q8``; naming a
    WeightBin conv or linear layer in ``int8_layers`` does it for that layer): its +-1 weights x alpha are kept exactly (stored as
    bits), its input is quantized per tensor as above. The default (``"exact"``) keeps them
    float. docs/export.md, "WeightBin layers on 8-bit input".

    ``format_version`` 2 (default) stores binary conv weights in their kernels' layouts, which
    the loader uses in place; ``wbin_layout`` picks the WeightBin one: "bits32" (bit panels,
    what every path but AVX-512 and NEON reads; the portable default), "lut128g4" (the AVX-512
    LUT panels) or "auto" (the one this machine's selected kernel path reads: for a file that
    will run where it is exported; hbn_engine.kernel_layout.resolve_wbin_layout). Another path
    repacks from either, with the same outputs (docs/format.md, "Kernel layouts").
    ``format_version=1`` writes the canonical layout older engines read.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    wbin_layout = kernel_layout.resolve_wbin_layout(wbin_layout)  # before the work: a bad name fails fast
    if not isinstance(example_input, torch.Tensor) or example_input.dim() != 4:
        raise ValueError("example_input must be a 4-D NCHW torch.Tensor")
    # Restore every submodule's own mode afterwards (a root-level train() would clobber them).
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            from hbn_engine.frontend import normalize

            gm, report = normalize(model, example_input, sign_zero=sign_zero)
            low = _Lowering(gm)
            low.run()
            ops, output = _fuse(low.ops, low.output)
            c_in = int(example_input.shape[1])
            norm = _check_input_norm(input_norm, c_in) if input_norm is not None else None
            targets = _int8_targets(ops, edges, int8_layers, wbin)
            edge_notes = _edge_wbin_notes(ops, targets) if edges == "int8" else []
            int8_info = _quantize_targets(gm, targets, norm, calibration, calibration_percentile,
                                          tuple(example_input.shape[1:]))
            if norm is not None:
                # The normalisation is the graph's first op; every reader of the input reads it.
                norm_op = _IROp("input_norm", "input_norm", ["input"],
                                params={"mean": norm[0], "std": norm[1]}, out="v0:input_norm")
                for op in ops:
                    op.inputs = [norm_op.out if v == "input" else v for v in op.inputs]
                if output == "input":
                    output = norm_op.out
                ops.insert(0, norm_op)
    finally:
        for m, mode in modes:
            m.training = mode

    # Drop ops the output does not depend on, then number values: 0 = input, op i -> i + 1.
    needed = {output}
    for op in reversed(ops):
        if op.out in needed:
            needed.update(op.inputs)
    ops = [op for op in ops if op.out in needed]
    value_id = {"input": 0}
    tensors: list[np.ndarray] = []
    file_ops: list[Op] = []
    for i, op in enumerate(ops):
        value_id[op.out] = i + 1
        slots = OP_TYPES[op.type][1]
        extra = set(op.params) - set(slots)
        if extra:
            raise AssertionError(f"internal: op {op.name} has unexpected params {extra}")
        refs: list[Optional[int]] = []
        for s in slots:
            if s in op.params:
                tensors.append(np.ascontiguousarray(op.params[s]))
                refs.append(len(tensors) - 1)
            else:
                refs.append(None)
        file_ops.append(Op(op.type, op.name, [value_id[v] for v in op.inputs], refs,
                           dict(op.attrs)))

    hbn_layers = getattr(model, "hbn_layers", None)
    if class_names is None:
        class_names = getattr(model, "class_names", None)
    out_node = [n for n in gm.graph.nodes if n.op == "output"][0].args[0]
    if isinstance(out_node, (tuple, list)):
        out_node = out_node[0]
    out_shape = list(out_node.meta["tensor_meta"].shape)
    metadata = {
        "model_name": model_name or getattr(model, "arch", type(model).__name__),
        "variant": variant if variant is not None else getattr(model, "variant", None),
        "hbn_layers": dict(hbn_layers) if hbn_layers is not None else None,
        "layers": [[op.name, op_kind(op.type)] for op in ops],
        "input_shape": list(low.input_shape),
        "output_shape": out_shape[1:],
        "class_names": list(class_names) if class_names is not None else None,
        "exporter_version": EXPORTER_VERSION,
        "torch_version": torch.__version__,
        "fp32_param_bytes": int(sum(p.numel() for p in model.parameters()) * 4),
    }
    if norm is not None:
        metadata["input_norm"] = {"mean": [float(v) for v in norm[0]],
                                  "std": [float(v) for v in norm[1]]}
    if int8_info:
        metadata["int8"] = int8_info
        for lr in report.layers:
            info = next((i for i in int8_info if i["layer"] == lr.name), None)
            if info is not None:
                lr.kind = "wbin_int8" if info.get("op") == "conv_wbin_q8" else "int8"
                lr.reason = _int8_reason(info)
        report.notes.append("int8 layers: " + ", ".join(i["layer"] for i in int8_info)
                            + " (edges='int8' / wbin='int8' / int8_layers; not exact: quantized)")
    kept = [op.name for op in ops if op.type == "conv_wbin" and op.attrs.get("linear")]
    if wbin == "int8" and kept:
        report.notes.append("wbin='int8': WeightBin linear layers " + ", ".join(kept) + " stay "
                            "exact (they stream their weights at small batches, and int8 "
                            "weights are 8x the bits; name them in int8_layers to convert them)")
    report.notes.extend(edge_notes)
    if report.changed:  # only when the front end rewrote the graph: models it leaves as
        metadata["frontend"] = report.to_json()  # written export byte-identically to before
    for op in ops:
        for pname, t in op.params.items():
            # +-inf thresholds are legitimate (constant channels); NaN never is.
            bad = np.isnan(t) if pname == "in_threshold" else ~np.isfinite(t)
            if t.dtype == np.float32 and bad.any():
                raise ExportError(f"layer {op.name}: non-finite values in {pname} (parameters "
                                  "or BatchNorm statistics)")
    write_hbn(path, file_ops, tensors, metadata, low.input_shape, value_id[output],
              version=format_version, wbin_layout=wbin_layout)
    return report
