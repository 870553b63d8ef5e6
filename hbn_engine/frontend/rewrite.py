"""Normalisation passes on a concretely traced graph (see docs/export.md).

1. fold every subgraph that depends on parameters / buffers only into a constant;
2. prune nodes the output does not depend on;
3. per conv / linear (module leaf, ``F.conv2d`` / ``F.linear`` call, any subclass traced into):
   read the effective weight, check the +-alpha-per-output-channel form, look for a sign-like
   op feeding it (through flatten / dropout) and fold the arithmetic before the sign (RSign
   bias, BatchNorm, scales, hardtanh) into per-channel thresholds -> FullBin, WeightBin or
   float layer;
4. elementwise arithmetic with per-channel constants (a learned scale after a conv, a bias,
   a BatchNorm with parameters computed in forward) -> one per-channel affine op, which the
   lowering folds into a preceding conv;
5. refuse what is left that the engine cannot run yet, naming the node and the reason.
"""
from __future__ import annotations

import dataclasses
import math
import operator
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from hbn_engine.exporter import ExportError
from hbn_engine.frontend.leaves import BinaryConv, ChannelAffine, SignActivation
from hbn_engine.frontend.report import ExportReport, LayerReport
from hbn_engine.frontend.signs import SignInfo, probe_sign
from hbn_engine.frontend.trace import ConcreteTracer
from hbn_engine.nn import BinActive, FullBinConv2d, FullBinLinear, WeightBinConv2d, WeightBinLinear

__all__ = ["Normalizer", "SIGN_ZERO_MODES"]

SIGN_ZERO_MODES = ("exact", "plus_one")
ALPHA_TOL = 4 * 2.0 ** -23  # four float32 ulps of 1.0

_ADD = {operator.add, operator.iadd, torch.add}
_SUB = {operator.sub, operator.isub, torch.sub}
_MUL = {operator.mul, operator.imul, torch.mul}
_DIV = {operator.truediv, operator.itruediv, torch.div}
_ARITH_METHODS = {"add": "add", "add_": "add", "sub": "sub", "sub_": "sub", "mul": "mul",
                  "mul_": "mul", "div": "div", "div_": "div"}
_CMP = {operator.ge: "ge", operator.gt: "gt", operator.le: "le", operator.lt: "lt",
        torch.ge: "ge", torch.gt: "gt", torch.le: "le", torch.lt: "lt"}
_MIRROR = {"ge": "le", "le": "ge", "gt": "lt", "lt": "gt"}
_RELU_FNS = {F.relu, torch.relu, F.relu_, torch.relu_}
# elementwise ops a sign written as arithmetic may be made of (probed as one function)
_ELEMENTWISE_FNS = {operator.add, operator.sub, operator.mul, operator.truediv, operator.neg,
                    operator.ge, operator.gt, operator.le, operator.lt, operator.eq, operator.ne,
                    operator.and_, operator.or_, operator.invert, operator.abs, abs,
                    torch.add, torch.sub, torch.mul, torch.div, torch.where, torch.sign,
                    torch.ge, torch.gt, torch.le, torch.lt, torch.abs, torch.clamp, torch.clip,
                    torch.heaviside, torch.logical_and, torch.logical_or, torch.logical_not,
                    F.hardtanh}
_ELEMENTWISE_METHODS = {"add", "sub", "mul", "div", "neg", "ge", "gt", "le", "lt", "eq", "ne",
                        "abs", "sign", "clamp", "clip", "float", "type", "to", "type_as",
                        "detach", "clone", "contiguous", "__and__", "__or__", "__invert__",
                        "logical_and", "logical_or", "logical_not", "int", "bool"}
_CLAMP_FNS = {torch.clamp, torch.clip, torch.clamp_}
FRONTEND_LEAVES_SKIP = (SignActivation, ChannelAffine, BinaryConv)
_PASS_MODULES = (nn.Identity, nn.Dropout, nn.Dropout2d, nn.Dropout1d)
_MAXPOOL = (nn.MaxPool2d,)
_AVGPOOL = (nn.AvgPool2d, nn.AdaptiveAvgPool2d)



@dataclass
class _Conv:
    node: fx.Node
    x: fx.Node
    weight: torch.Tensor
    bias: Optional[torch.Tensor]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    linear: bool
    name: str
    module: bool  # a call_module leaf (kept as it is when it stays float)


@dataclass
class _Sign:
    node: fx.Node  # the sign-like node
    u: fx.Node  # its input
    info: SignInfo
    offset: float  # the sign is sign(u - offset)


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))


def _f32_up(t: np.ndarray) -> np.ndarray:
    """Smallest float32 >= t (elementwise, t float64)."""
    f = t.astype(np.float32)
    low = f.astype(np.float64) < t
    f[low] = np.nextafter(f[low], np.float32(np.inf))
    return f


def _f32_down(t: np.ndarray) -> np.ndarray:
    f = t.astype(np.float32)
    high = f.astype(np.float64) > t
    f[high] = np.nextafter(f[high], np.float32(-np.inf))
    return f


def sign_thresholds(a: np.ndarray, b: np.ndarray, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the engine's (threshold, flip) for "bit = -1 iff a*x + b < 0" (strict,
    sign(0) = +1) or "... <= 0" (not strict, sign(0) = -1), exact for every float32 x given the
    real-valued a, b: bit = flip ? x > thr : x < thr."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    thr = np.zeros(a.shape, np.float32)
    flip = np.zeros(a.shape, np.bool_)
    pos, neg, zero = a > 0, a < 0, a == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -b / a
    if strict:  # a>0: x < t;  a<0: x > t
        thr[pos] = _f32_up(t[pos])
        thr[neg] = _f32_down(t[neg])
        const_neg = b < 0
    else:  # a>0: x <= t  <=> x < next(down(t));  a<0: x >= t <=> x > prev(up(t))
        thr[pos] = np.nextafter(_f32_down(t[pos]), np.float32(np.inf))
        thr[neg] = np.nextafter(_f32_up(t[neg]), np.float32(-np.inf))
        const_neg = b <= 0
    flip[neg] = True
    thr[zero] = np.where(const_neg[zero], np.float32(np.inf), np.float32(-np.inf))
    return thr, flip


def _engine_has(names: tuple[str, ...]) -> bool:
    """Whether the engine format knows one of these op types (then the lowering decides)."""
    try:
        from hbn_engine.format import OP_TYPES
    except ImportError:  # the registry redesign may move the table: defer to the lowering
        return True
    return any(n in OP_TYPES for n in names)


class Normalizer:
    """Runs the passes on ``gm`` (traced by ``tracer``); fills ``report``."""

    def __init__(self, gm: fx.GraphModule, tracer: ConcreteTracer, sign_zero: str,
                 report: ExportReport) -> None:
        if sign_zero not in SIGN_ZERO_MODES:
            raise ValueError(f"sign_zero must be one of {SIGN_ZERO_MODES}, got {sign_zero!r}")
        self.gm, self.graph, self.tr = gm, gm.graph, tracer
        self.sign_zero = sign_zero
        self.report = report
        self._new_leaves: list[tuple[fx.Node, str]] = []
        self._region_cache: dict[fx.Node, Optional[tuple[fx.Node, SignInfo, float]]] = {}
        self._uid = 0

    # small helpers ---------------------------------------------------------------------
    def val(self, n: Any) -> Any:
        return self.tr.value_of(n) if isinstance(n, fx.Node) else n

    def is_act(self, n: Any) -> bool:
        """A value computed from the model input (an activation)."""
        return isinstance(n, fx.Node) and self.tr.depends_on_input(n)

    def is_const(self, n: Any) -> bool:
        if isinstance(n, fx.Node):
            return n.op != "placeholder" and not self.tr.depends_on_input(n)
        return isinstance(n, (int, float, torch.Tensor)) and not isinstance(n, bool)

    def module(self, n: fx.Node) -> Optional[nn.Module]:
        return self.gm.get_submodule(str(n.target)) if n.op == "call_module" else None

    def scope(self, n: fx.Node) -> str:
        """Qualified name of the innermost user module the node was traced in."""
        stack = n.meta.get("nn_module_stack") or {}
        return list(stack.values())[-1][0] if stack else ""

    def _name_for(self, n: fx.Node, prefer_scope: bool) -> str:
        s = self.scope(n)
        return s if (prefer_scope and s) else (f"{s}.{n.name}" if s else n.name)

    def _replace(self, n: fx.Node, new: fx.Node) -> None:
        n.replace_all_uses_with(new)
        self.report.changed = True

    def _add_leaf(self, n: fx.Node, module: nn.Module, x: fx.Node, name: str) -> fx.Node:
        """A call_module node for ``module`` replacing ``n``; installed under ``name`` once the
        graph is final (see finish)."""
        self._uid += 1
        tmp = f"_hbn_frontend_{self._uid}"
        self.gm.add_submodule(tmp, module)
        with self.graph.inserting_after(n):
            new = self.graph.call_module(tmp, (x,))
        self.tr.values[new] = self.tr.values.get(n)
        self.tr.depends[new] = True
        self._new_leaves.append((new, name))
        self._replace(n, new)
        return new

    # 1. constants ------------------------------------------------------------------------
    def fold_constants(self) -> None:
        for n in list(self.graph.nodes):
            if n.op in ("placeholder", "output", "get_attr") or self.tr.depends_on_input(n):
                continue
            users = [u for u in n.users if u.op == "output" or self.tr.depends_on_input(u)]
            if not users:
                continue
            v = self.val(n)
            if isinstance(v, torch.Tensor):
                self._uid += 1
                name = f"_hbn_const_{self._uid}"
                self.gm.register_buffer(name, v.detach().clone())
                with self.graph.inserting_before(n):
                    c = self.graph.get_attr(name)
                c.meta["hbn_origin"] = self._origin(n)
                self.tr.values[c] = getattr(self.gm, name)
                self.tr.depends[c] = False
                for u in users:
                    u.replace_input_with(n, c)
            else:
                for u in users:
                    u.args = fx.node.map_arg(u.args, lambda m: v if m is n else m)
                    u.kwargs = fx.node.map_arg(u.kwargs, lambda m: v if m is n else m)
            self.report.changed = True

    @staticmethod
    def _origin(n: fx.Node) -> str:
        """The parameter a folded constant was computed from (its owner's path for a
        ``.weight``), for naming the layer it feeds."""
        seen, stack = set(), [n]
        while stack:
            m = stack.pop()
            if m in seen:
                continue
            seen.add(m)
            if m.op == "get_attr":
                t = str(m.target)
                return t[: -len(".weight")] if t.endswith(".weight") else t
            stack.extend(m.all_input_nodes)
        return ""

    # 2. dead code --------------------------------------------------------------------------
    def prune(self) -> None:
        out = next(n for n in self.graph.nodes if n.op == "output")
        live: set[fx.Node] = set()
        stack = [out]
        while stack:
            n = stack.pop()
            if n not in live:
                live.add(n)
                stack.extend(n.all_input_nodes)
        for n in reversed(list(self.graph.nodes)):
            if n not in live and n.op != "placeholder":
                if n.op not in ("get_attr",) and not n.name.startswith("_hbn"):
                    self.report.changed = True
                self.graph.erase_node(n)

    # per-channel constants -------------------------------------------------------------------
    def per_channel(self, const: Any, act: fx.Node) -> Optional[np.ndarray]:
        """``const`` as one float64 value per channel (dim 1) of ``act``, or None when it
        varies along another dim or does not broadcast to it."""
        v = self.val(const)
        shape = tuple(self.val(act).shape)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return np.full(shape[1] if len(shape) > 1 else 1, float(v))
        if not isinstance(v, torch.Tensor) or not v.is_floating_point() and v.numel() != 1:
            return None
        try:
            e = torch.broadcast_to(v.detach().to(torch.float64), shape)
        except RuntimeError:
            return None
        if len(shape) < 2:
            return None
        idx = (0, slice(None)) + (0,) * (len(shape) - 2)
        ref = e[idx]
        if not torch.equal(e, ref.view((1, -1) + (1,) * (len(shape) - 2)).expand(shape)):
            return None
        return ref.numpy().copy()

    def arith(self, n: fx.Node) -> Optional[tuple[str, fx.Node, Any, bool]]:
        """(op, activation, constant, activation_first) for add/sub/mul/div of an activation
        and a constant."""
        if n.op == "call_function":
            t = n.target
            op = ("add" if t in _ADD else "sub" if t in _SUB else "mul" if t in _MUL
                  else "div" if t in _DIV else None)
            if op is None and t is operator.neg and self.is_act(n.args[0]):
                return ("mul", n.args[0], -1.0, True)
        elif n.op == "call_method":
            op = _ARITH_METHODS.get(str(n.target))
        else:
            return None
        if op is None or len(n.args) != 2:
            return None
        if set(n.kwargs) - {"out"} or n.kwargs.get("out") is not None:
            return None
        a, b = n.args
        if self.is_act(a) and self.is_const(b):
            return (op, a, b, True)
        if self.is_act(b) and self.is_const(a) and op in ("add", "sub", "mul"):
            return (op, b, a, False)
        return None

    def affine_of(self, n: fx.Node) -> Optional[tuple[fx.Node, np.ndarray, np.ndarray, str]]:
        """(x, a, b, description) when n computes a[c] * x + b[c] per channel exactly up to
        float rounding: arithmetic with per-channel constants, eval BatchNorm (module or
        F.batch_norm with constant parameters), or a ChannelAffine leaf."""
        ar = self.arith(n)
        if ar is not None:
            op, x, c, first = ar
            v = self.per_channel(c, x)
            if v is None:
                return None
            one, zero = np.ones_like(v), np.zeros_like(v)
            if op == "add":
                return x, one, v, "+ bias"
            if op == "sub":
                return (x, one, -v, "- bias") if first else (x, -one, v, "bias -")
            if op == "mul":
                return x, v, zero, "* scale"
            with np.errstate(divide="ignore"):
                return x, 1.0 / v, zero, "/ scale"
        m = self.module(n)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and not m.training \
                and m.running_mean is not None and len(n.args) == 1:
            w = m.weight if m.affine else None
            bb = m.bias if m.affine else None
            a, b = self._bn(m.running_mean, m.running_var, w, bb, m.eps)
            return n.args[0], a, b, "BN"
        if isinstance(m, ChannelAffine):
            return n.args[0], m.scale.numpy(), m.shift.numpy(), "affine"
        if n.op == "call_function" and n.target is F.batch_norm:
            names = ("input", "running_mean", "running_var", "weight", "bias", "training",
                     "momentum", "eps")
            args = dict(zip(names, n.args))
            args.update(n.kwargs)
            if args.get("training", False) or not self.is_act(args["input"]):
                return None
            parts = [args.get(k) for k in ("running_mean", "running_var", "weight", "bias")]
            if parts[0] is None or parts[1] is None or not all(
                    p is None or self.is_const(p) for p in parts):
                return None
            a, b = self._bn(*[self.val(p) if p is not None else None for p in parts],
                            args.get("eps", 1e-5))
            return args["input"], a, b, "BN"
        return None

    @staticmethod
    def _bn(mean: torch.Tensor, var: torch.Tensor, w: Optional[torch.Tensor],
            b: Optional[torch.Tensor], eps: float) -> tuple[np.ndarray, np.ndarray]:
        mean = mean.detach().double().numpy()
        inv = 1.0 / np.sqrt(var.detach().double().numpy() + eps)
        gamma = w.detach().double().numpy() if w is not None else np.ones_like(mean)
        beta = b.detach().double().numpy() if b is not None else np.zeros_like(mean)
        a = gamma * inv
        return a, beta - mean * a

    # sign-like nodes -----------------------------------------------------------------------
    def sign_of(self, n: fx.Node) -> Optional[tuple[fx.Node, SignInfo, float]]:
        """(input, info, offset) when n is a sign-like op computing sign(input - offset)."""
        if n in self.tr.signs:
            return n.args[0], self.tr.signs[n], 0.0
        if (n.op == "call_function" and n.target is torch.sign) or \
                (n.op == "call_method" and n.target in ("sign", "sign_")):
            return n.args[0], SignInfo(0, f"torch.sign at node {n.name}"), 0.0
        if isinstance(self.module(n), BinActive):
            return n.args[0], SignInfo(1, f"hbn_engine.nn.BinActive {n.target}"), 0.0
        if n.op == "call_function" and n.target is torch.where and len(n.args) == 3 \
                and not n.kwargs:
            w = self._where_sign(n)
            if w is not None:
                return w
        return self._region_sign(n)

    def _elementwise(self, n: Any, shape: tuple) -> bool:
        if not isinstance(n, fx.Node) or not self.is_act(n) or n.op not in (
                "call_function", "call_method"):
            return False
        v = self.val(n)
        if not isinstance(v, torch.Tensor) or tuple(v.shape) != shape:
            return False
        return (n.target in _ELEMENTWISE_FNS) if n.op == "call_function" else \
            str(n.target) in _ELEMENTWISE_METHODS

    def _region_sign(self, n: fx.Node) -> Optional[tuple[fx.Node, SignInfo, float]]:
        """Sign written as elementwise arithmetic in the forward (``(x >= 0).float() * 2 - 1``,
        an inlined straight-through trick, ...): the largest elementwise region ending at n
        with a single activation source x is evaluated on probe inputs as a function of x."""
        if n in self._region_cache:
            return self._region_cache[n]
        self._region_cache[n] = None
        shape = tuple(self.val(n).shape) if isinstance(self.val(n), torch.Tensor) else ()
        if not self._elementwise(n, shape):
            return None
        # the maximal elementwise region ending at n, then every node x that all of the
        # region's activation inputs between x and n come from (farthest first)
        region, stack = {n}, [n]
        while stack:
            m = stack.pop()
            for i in m.all_input_nodes:
                if self.is_act(i) and i not in region and self._elementwise(i, shape) \
                        and i not in self.tr.signs:
                    region.add(i)
                    stack.append(i)
        candidates = set(region) - {n}
        for m in region:
            candidates.update(i for i in m.all_input_nodes if self.is_act(i))
        for x in [m for m in self.graph.nodes if m in candidates]:
            sub, stack, ok = {n}, [n], True
            while stack and ok:
                m = stack.pop()
                for i in m.all_input_nodes:
                    if not self.is_act(i) or i is x or i in sub:
                        continue
                    if i in region:
                        sub.add(i)
                        stack.append(i)
                    else:
                        ok = False
                        break
            if not ok:
                continue
            r = self._probe_region(n, x, [m for m in self.graph.nodes if m in sub])
            if r is not None:
                self._region_cache[n] = r
                return r
        return None

    def _probe_region(self, n: fx.Node, x: fx.Node,
                      order: list[fx.Node]) -> Optional[tuple[fx.Node, SignInfo, float]]:
        def f(t: torch.Tensor) -> Any:
            env: dict[fx.Node, Any] = {x: t}

            def load(m: fx.Node) -> Any:
                return env[m] if m in env else self.val(m)

            for m in order:
                args = fx.node.map_arg(m.args, load)
                kwargs = fx.node.map_arg(m.kwargs, load)
                if m.op == "call_function":
                    env[m] = m.target(*args, **kwargs)
                else:
                    env[m] = getattr(args[0], str(m.target))(*args[1:], **kwargs)
            return env[n]

        info = probe_sign(f, self.val(x), f"elementwise ops ending at node {n.name} (probed)")
        return (x, info, 0.0) if info is not None else None

    def _scalar(self, v: Any) -> Optional[float]:
        v = self.val(v)
        if isinstance(v, bool):
            return None
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, torch.Tensor) and v.numel() >= 1:
            flat = v.detach().flatten()
            if bool((flat == flat[0]).all()):
                return float(flat[0])
        return None

    def _where_sign(self, n: fx.Node) -> Optional[tuple[fx.Node, SignInfo, float]]:
        cond, hi, lo = n.args
        if not isinstance(cond, fx.Node) or not self.is_const(hi) or not self.is_const(lo):
            return None
        a, b = self._scalar(hi), self._scalar(lo)
        cmp = None
        if cond.op == "call_function" and cond.target in _CMP and len(cond.args) == 2:
            cmp = _CMP[cond.target]
        elif cond.op == "call_method" and cond.target in ("ge", "gt", "le", "lt") \
                and len(cond.args) == 2:
            cmp = str(cond.target)
        if cmp is None or a is None or b is None:
            return None
        x, t = cond.args
        if self.is_const(x) and self.is_act(t):
            x, t, cmp = t, x, _MIRROR[cmp]
        tv = self._scalar(t)
        if not self.is_act(x) or tv is None:
            return None
        tv = float(np.float32(tv))  # torch compares a float32 tensor with a float32 scalar
        ops = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}

        def f(v: float) -> float:
            return a if ops[cmp](v, tv) else b

        if f(tv - 1.0) != -1.0 or f(tv + 1.0) != 1.0:
            return None
        return x, SignInfo(int(f(tv)), f"torch.where({cmp}) at node {n.name}"), tv

    def passthrough(self, n: fx.Node) -> Optional[tuple[fx.Node, bool]]:
        """(input, is_flatten) for ops a sign commutes with on the way to a layer."""
        m = self.module(n)
        if isinstance(m, _PASS_MODULES):
            return n.args[0], False
        if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim in (-1,):
            return n.args[0], True
        if n.op == "call_function":
            if n.target in (F.dropout, F.dropout2d) and not n.kwargs.get("training", False) \
                    and (len(n.args) < 3 or not n.args[2]):
                return n.args[0], False
            if n.target is torch.flatten and (n.args[1:2] == (1,) or
                                              n.kwargs.get("start_dim") == 1):
                return n.args[0], True
        if n.op == "call_method":
            if n.target in ("contiguous", "detach", "clone"):
                return n.args[0], False
            if n.target in ("view", "reshape", "flatten"):
                src, out = self.val(n.args[0]), self.val(n)
                if isinstance(out, torch.Tensor) and out.dim() == 2 and src.dim() == 4 \
                        and out.shape[0] == src.shape[0]:
                    return n.args[0], True
        return None

    def find_sign(self, x: fx.Node) -> Optional[_Sign]:
        """The sign-like node feeding ``x`` through ops a sign commutes with, if any."""
        n = x
        while True:
            s = self.sign_of(n)
            if s is not None:
                return _Sign(n, s[0], s[1], s[2])
            p = self.passthrough(n)
            if p is None:
                return None
            n = p[0]

    def presign_chain(self, u: fx.Node) -> tuple[fx.Node, np.ndarray, np.ndarray, list[str]]:
        """Walk back from a sign's input through exactly foldable per-channel arithmetic,
        flatten / dropout, and (with nothing but positive scales after it) hardtanh /
        clamp(lo < 0 < hi): sign(u) = sign(a*x0 + b) with a, b of x0's per-sample shape."""
        shape = tuple(self.val(u).shape[1:])
        a, b = np.ones(shape), np.zeros(shape)
        steps: list[str] = []
        n = u
        while True:
            if self._is_sign_preserving_clamp(n) and np.all(b == 0) and np.all(a > 0):
                steps.append("hardtanh")
                n = n.args[0]
                continue
            p = self.passthrough(n)
            if p is not None:
                xshape = tuple(self.val(p[0]).shape[1:])
                a, b = a.reshape(xshape), b.reshape(xshape)
                n, shape = p[0], xshape
                continue
            aff = self.affine_of(n)
            if aff is None:
                break
            x, a2, b2, what = aff
            shape = tuple(self.val(x).shape[1:])
            cshape = (-1,) + (1,) * (len(shape) - 1)
            a2 = np.broadcast_to(a2, (shape[0],)).reshape(cshape)
            b2 = np.broadcast_to(b2, (shape[0],)).reshape(cshape)
            b = a * b2 + b
            a = np.broadcast_to(a * a2, shape)
            b = np.broadcast_to(b, shape)
            steps.append(what)
            n = x
            shape = tuple(self.val(n).shape[1:])
        return n, np.array(a, np.float64), np.array(b, np.float64), steps

    def _is_clamp(self, n: fx.Node) -> bool:
        return isinstance(self.module(n), nn.Hardtanh) or (
            n.op == "call_function" and n.target in {F.hardtanh, F.hardtanh_} | _CLAMP_FNS) or (
            n.op == "call_method" and n.target in ("clamp", "clip", "clamp_", "clip_"))

    def _is_sign_preserving_clamp(self, n: fx.Node) -> bool:
        """hardtanh / clamp with lo < 0 < hi: sign(clamp(x)) = sign(x), 0 stays 0.
        (ReLU6 is a Hardtanh with min 0: not sign preserving.)"""
        if not self._is_clamp(n) or not n.args or not self.is_act(n.args[0]):
            return False
        lo, hi = self._clamp_bounds(n)
        return lo < 0 < hi

    # can a*value + b be exactly zero with positive probability? ------------------------------
    def zero_prone(self, n: Any, a: np.ndarray, b: np.ndarray, depth: int = 0) -> bool:
        """True when ``a * n + b`` (a, b: float64 arrays of n's per-sample shape) can be exactly
        0 for a set of inputs of positive probability (relu's zeros, a binary conv's integer
        sums, the model input's zeros), not merely by coincidence. Conservative: ops it does
        not know answer True."""
        if depth > 200 or not isinstance(n, fx.Node):
            return True
        if not self.is_act(n):
            return False
        hits0 = bool(np.any((b == 0)))  # where n itself is exactly 0
        if n.op == "placeholder":
            return hits0  # inputs may hold exact zeros (padding, black pixels)
        s = self.sign_of(n)
        if s is not None:
            vals = (-1.0, 1.0) + ((0.0,) if s[1].zero in (0, None) else ())
            return any(bool(np.any(a * v + b == 0)) for v in vals)
        m = self.module(n)
        shape = tuple(self.val(n).shape[1:])
        if isinstance(m, BinaryConv) and m.kind == "fbin":
            # y = scale * k + bias for an integer k, |k| <= IC*KH*KW (padded taps add 0)
            kmax = int(np.prod(m.negative.shape[1:]))
            cshape = (-1,) + (1,) * (len(shape) - 1)
            step = m.scale.double().numpy().reshape(cshape)
            off = (m.bias.double().numpy().reshape(cshape) if m.bias is not None else 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                k = -(a * off + b) / (a * step)
            # structurally on the lattice (float64 arithmetic of float32 parameters), not a
            # value within fp32 round-off of it (a tie, counted by the tests, not refused)
            near = np.abs(k - np.round(k)) <= 1e-9 * np.maximum(1.0, np.abs(k))
            return bool(np.any((near & (np.abs(np.round(k)) <= kmax)) | ((a == 0) & (b == 0))))
        aff = self.affine_of(n)
        if aff is not None:
            x, a2, b2, _ = aff
            cshape = (-1,) + (1,) * (len(shape) - 1)
            a2 = np.broadcast_to(a2, (shape[0],)).reshape(cshape)
            b2 = np.broadcast_to(b2, (shape[0],)).reshape(cshape)
            return self.zero_prone(x, np.broadcast_to(a * a2, shape),
                                   np.broadcast_to(a * b2 + b, shape), depth + 1)
        p = self.passthrough(n)
        if p is not None:
            x = p[0]
            xshape = tuple(self.val(x).shape[1:])
            return self.zero_prone(x, np.reshape(a, xshape), np.reshape(b, xshape), depth + 1)
        relu = isinstance(m, nn.ReLU) or (n.op == "call_function" and n.target in _RELU_FNS) \
            or (n.op == "call_method" and n.target in ("relu", "relu_"))
        slope = self._leaky_slope(n)
        if slope is not None:  # PReLU / LeakyReLU: y on one side, slope * y on the other
            x = n.args[0]
            slope = np.broadcast_to(slope, (shape[0],)).reshape((-1,) + (1,) * (len(shape) - 1))
            if np.any(slope == 0) and hits0:
                return True
            return self.zero_prone(x, a, b, depth + 1) or \
                self.zero_prone(x, np.broadcast_to(a * slope, shape), b, depth + 1)
        clamp = self._is_sign_preserving_clamp(n)
        if relu or clamp:
            x = n.args[0]
            if relu and hits0:
                return True  # relu is exactly 0 on half its inputs
            if clamp:
                lo, hi = self._clamp_bounds(n)
                with np.errstate(divide="ignore", invalid="ignore"):
                    t = -b / a
                if np.any((t == lo) | (t == hi)):
                    return True
            return self.zero_prone(x, a, b, depth + 1)
        per_channel = self._per_channel_ab(a, b, shape)
        pooled = isinstance(m, _MAXPOOL + _AVGPOOL) or (n.op == "call_function" and n.target in (
            F.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d))
        if pooled:
            if per_channel is None:
                return True
            x = n.args[0]
            xshape = tuple(self.val(x).shape[1:])
            pa, pb = (np.broadcast_to(v.reshape((-1,) + (1,) * (len(xshape) - 1)), xshape)
                      for v in per_channel)
            if isinstance(m, _MAXPOOL) or n.target is F.max_pool2d:
                return self.zero_prone(x, pa, pb, depth + 1)  # max picks one of its inputs
            # an average is exactly 0 by more than coincidence only when its window is all 0
            return hits0 and self.zero_prone(x, np.ones(xshape), np.zeros(xshape), depth + 1)
        conv = self.conv_of(n) if n.op != "call_module" or not isinstance(
            m, (BinaryConv, ChannelAffine)) else None
        if conv is not None or isinstance(m, BinaryConv):
            x = conv.x if conv is not None else n.args[0]
            bias = conv.bias if conv is not None else m.bias
            bias = np.zeros(shape[0]) if bias is None else bias.detach().double().numpy()
            cshape = (-1,) + (1,) * (len(shape) - 1)
            at_bias = bool(np.any(a * bias.reshape(cshape) + b == 0))
            xshape = tuple(self.val(x).shape[1:])
            return at_bias and self.zero_prone(x, np.ones(xshape), np.zeros(xshape), depth + 1)
        if n.op == "call_function" and n.target in _ADD and len(n.args) == 2 and \
                all(self.is_act(v) for v in n.args):
            ones = [np.ones(tuple(self.val(v).shape[1:])) for v in n.args]
            return hits0 and all(self.zero_prone(v, o, 0 * o, depth + 1)
                                 for v, o in zip(n.args, ones))
        return True

    # bounds of activations, for sign of a non-negative value ({0, 1} inputs) ----------------
    def value_range(self, n: Any, depth: int = 0) -> tuple[float, float]:
        """Bounds (lo, hi) every element of activation ``n`` provably lies in, from the ops
        that guarantee them (relu, relu6 / hardtanh / clamp, max-pool, average pools, sign-like
        ops, flatten / dropout); (-inf, inf) for anything else."""
        full = (-math.inf, math.inf)
        if depth > 200 or not isinstance(n, fx.Node) or not self.is_act(n) \
                or n.op == "placeholder":
            return full
        m = self.module(n)
        if n.op in ("call_function", "call_method", "call_module") and self.sign_of(n) is not None:
            return (-1.0, 1.0)
        relu = isinstance(m, nn.ReLU) or (n.op == "call_function" and n.target in _RELU_FNS) \
            or (n.op == "call_method" and n.target in ("relu", "relu_"))
        if relu:
            lo, hi = self.value_range(n.args[0], depth + 1)
            return (max(lo, 0.0), max(hi, 0.0))
        if n.op == "call_function" and n.target in (F.relu6,):
            lo, hi = self.value_range(n.args[0], depth + 1)
            return (min(max(lo, 0.0), 6.0), max(min(hi, 6.0), 0.0))
        if self._is_clamp(n) and n.args and self.is_act(n.args[0]):
            clo, chi = self._clamp_bounds(n)
            lo, hi = self.value_range(n.args[0], depth + 1)
            return (min(max(lo, clo), chi), max(min(hi, chi), clo))
        if isinstance(m, _MAXPOOL) or (n.op == "call_function" and n.target is F.max_pool2d):
            return self.value_range(n.args[0], depth + 1)  # a max of its inputs (pads: -inf)
        if isinstance(m, _AVGPOOL) or (n.op == "call_function" and n.target in (
                F.avg_pool2d, F.adaptive_avg_pool2d)):
            lo, hi = self.value_range(n.args[0], depth + 1)  # padded zeros may be averaged in
            return (min(lo, 0.0), max(hi, 0.0))
        p = self.passthrough(n)
        if p is not None:
            return self.value_range(p[0], depth + 1)
        pad = self._constant_pad(n)
        if pad is not None:  # the pad value joins the input's values
            lo, hi = self.value_range(n.args[0], depth + 1)
            return (min(lo, pad), max(hi, pad))
        return full

    def _constant_pad(self, n: fx.Node) -> Optional[float]:
        """The value of a constant pad of an activation (ConstantPad2d / ZeroPad2d, F.pad), else
        None."""
        m = self.module(n)
        if isinstance(m, nn.ConstantPad2d):
            value = m.value
        elif n.op == "call_function" and n.target is F.pad:
            kw = dict(zip(("input", "pad", "mode", "value"), n.args), **n.kwargs)
            if kw.get("mode", "constant") != "constant":
                return None
            value = 0.0 if kw.get("value") is None else kw.get("value")
        else:
            return None
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    def _rectified(self, n: fx.Node) -> Optional[fx.Node]:
        """v when n is relu(v), relu6(v) or clamp / hardtanh(v) with lower bound 0 and an
        upper bound above 0 (so rect(v) > 0 exactly when v > 0)."""
        if not isinstance(n, fx.Node) or not n.args or not self.is_act(n.args[0]):
            return None
        m = self.module(n)
        if isinstance(m, nn.ReLU) or (n.op == "call_function" and n.target in _RELU_FNS | {F.relu6}) \
                or (n.op == "call_method" and n.target in ("relu", "relu_")):
            return n.args[0]
        if self._is_clamp(n):
            lo, hi = self._clamp_bounds(n)
            if lo == 0 and hi > 0:
                return n.args[0]
        return None

    def maybe_negative(self, x: fx.Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Where ``a * x + b`` (x's per-sample shape) can be negative, given x's bounds."""
        lo, hi = self.value_range(x)
        with np.errstate(invalid="ignore"):
            low = np.where(a > 0, a * lo, np.where(a < 0, a * hi, 0.0)) + b
        return ~(low >= 0)

    def _leaky_slope(self, n: fx.Node) -> Optional[np.ndarray]:
        """The negative-side slope(s) of a PReLU / LeakyReLU node, else None."""
        m = self.module(n)
        if isinstance(m, nn.PReLU):
            return m.weight.detach().double().numpy()
        if isinstance(m, nn.LeakyReLU):
            return np.array([float(m.negative_slope)])
        if n.op == "call_function" and n.target is F.prelu and len(n.args) == 2 \
                and self.is_const(n.args[1]):
            return self.val(n.args[1]).detach().double().numpy().reshape(-1)
        if n.op == "call_function" and n.target is F.leaky_relu:
            v = n.args[1] if len(n.args) > 1 else n.kwargs.get("negative_slope", 0.01)
            return np.array([float(v)])
        return None

    @staticmethod
    def _per_channel_ab(a: np.ndarray, b: np.ndarray,
                        shape: tuple) -> Optional[tuple[np.ndarray, np.ndarray]]:
        a = np.broadcast_to(a, shape).reshape(shape[0], -1)
        b = np.broadcast_to(b, shape).reshape(shape[0], -1)
        if np.all(a == a[:, :1]) and np.all(b == b[:, :1]):
            return a[:, 0].copy(), b[:, 0].copy()
        return None

    def _clamp_bounds(self, n: fx.Node) -> tuple[float, float]:
        m = self.module(n)
        if isinstance(m, nn.Hardtanh):
            return float(m.min_val), float(m.max_val)
        if n.op == "call_function" and n.target in (F.hardtanh, F.hardtanh_):
            args = dict(zip(("input", "min_val", "max_val"), n.args))
            args.update(n.kwargs)
            return float(args.get("min_val", -1.0)), float(args.get("max_val", 1.0))
        args = dict(zip(("input", "min", "max"), n.args))
        args.update(n.kwargs)
        lo = -math.inf if args.get("min") is None else self._scalar(args.get("min"))
        hi = math.inf if args.get("max") is None else self._scalar(args.get("max"))
        return float(lo), float(hi)

    # 3. convolutions and linear layers --------------------------------------------------------
    def conv_of(self, n: fx.Node) -> Optional[_Conv]:
        m = self.module(n)
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros" or len(n.args) != 1:
                return None
            pad = m.padding
            return _Conv(n, n.args[0], m.weight.detach(),
                         None if m.bias is None else m.bias.detach(), _pair(m.stride),
                         self._padding(pad, m.weight, m.stride, n) if isinstance(pad, str)
                         else _pair(pad), _pair(m.dilation), m.groups, False, str(n.target),
                         True)
        if isinstance(m, nn.Linear) and len(n.args) == 1:
            return _Conv(n, n.args[0], m.weight.detach(),
                         None if m.bias is None else m.bias.detach(), (1, 1), (0, 0), (1, 1), 1,
                         True, str(n.target), True)
        if n.op != "call_function":
            return None
        if n.target in (F.conv2d, torch.conv2d):
            names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
            a = dict(zip(names, n.args))
            a.update(n.kwargs)
            w, b = self._const_arg(a.get("weight"), n, "weight"), a.get("bias")
            b = self._const_arg(b, n, "bias") if b is not None else None
            pad = a.get("padding", 0)
            stride = a.get("stride", 1)
            padding = self._padding(pad, w, stride, n) if isinstance(pad, str) else _pair(pad)
            return _Conv(n, a["input"], w, b, _pair(stride), padding, _pair(a.get("dilation", 1)),
                         int(a.get("groups", 1)), False, self._layer_name(n, a.get("weight")),
                         False)
        if n.target in (F.linear, torch._C._nn.linear):
            a = dict(zip(("input", "weight", "bias"), n.args))
            a.update(n.kwargs)
            w = self._const_arg(a.get("weight"), n, "weight")
            b = a.get("bias")
            b = self._const_arg(b, n, "bias") if b is not None else None
            return _Conv(n, a["input"], w, b, (1, 1), (0, 0), (1, 1), 1, True,
                         self._layer_name(n, a.get("weight")), False)
        return None

    def _layer_name(self, n: fx.Node, weight: Any) -> str:
        """A functional conv's name: the module it was traced in, else the parameter its
        weight was computed from, else the node name."""
        if self.scope(n):
            return self.scope(n)
        origin = ""
        if isinstance(weight, fx.Node):
            origin = weight.meta.get("hbn_origin") or self._origin(weight)
        return origin or n.name

    def _const_arg(self, v: Any, n: fx.Node, what: str) -> torch.Tensor:
        if not self.is_const(v) or not isinstance(self.val(v), torch.Tensor):
            raise ExportError(f"node {n.name} ({self._name_for(n, True)}): the {what} of this "
                              "conv/linear is computed from the model input; only weights that "
                              "depend on parameters alone can be exported")
        return self.val(v).detach()

    @staticmethod
    def _padding(pad: str, w: torch.Tensor, stride: Any, n: fx.Node) -> tuple[int, int]:
        if pad == "valid":
            return (0, 0)
        kh, kw = w.shape[2], w.shape[3]
        if pad == "same" and _pair(stride) == (1, 1) and kh % 2 and kw % 2:
            return ((kh - 1) // 2, (kw - 1) // 2)
        raise ExportError(f"node {n.name}: padding={pad!r} with kernel {kh}x{kw} and stride "
                          f"{stride} is not symmetric zero padding")

    @staticmethod
    def pm_alpha(w: torch.Tensor) -> tuple[Optional[tuple[torch.Tensor, torch.Tensor, float]],
                                           str]:
        """((negative mask, alpha per output channel, deviation), "") when every output
        channel's weights are +-alpha, else (None, why not). Straight-through tricks in the
        forward (``bw.detach() - c.detach() + c`` with |c| <= 1) leave up to ~2 float32
        rounding steps of 1.0 in the weights, so magnitudes may differ from alpha by
        ``ALPHA_TOL * max(1, alpha)``; the deviation found is reported."""
        mag = w.detach().to(torch.float64).abs().reshape(w.shape[0], -1)
        alpha = mag.mean(dim=1)
        dev = (mag - alpha[:, None]).abs()
        tol = ALPHA_TOL * torch.clamp(alpha, min=1.0)
        ok = dev <= tol[:, None]
        # a channel of exact zeros is +-0 (scale 0); otherwise alpha must stand clear of 0
        zero_row = (mag == 0).all(dim=1)
        ok &= (alpha > 4 * tol)[:, None] | zero_row[:, None]
        if bool(ok.all()) and bool(torch.isfinite(alpha).all()):
            return (w.detach() < 0, alpha.to(torch.float32), float(dev.max())), ""
        c = int((~ok.all(dim=1)).nonzero()[0, 0])
        row = mag[c]
        zeros = int((row == 0).sum())
        distinct = int(torch.unique(row.to(torch.float32)).numel())
        why = f"output channel {c} has {distinct} distinct weight magnitudes"
        if zeros and distinct <= 2:
            why += f" ({zeros} exact zeros: torch.sign(0) = 0 in the weights)"
        return None, why

    def rewrite_layers(self) -> None:
        for n in list(self.graph.nodes):
            if not n.users and n.op != "output":
                continue
            m = self.module(n)
            if isinstance(m, (FullBinConv2d, FullBinLinear)):
                self.report.layers.append(LayerReport(
                    str(n.target), "fbin", f"hbn_engine.nn.{type(m).__name__}: input "
                    f"sign({'BN(x)' if m.bn is not None else 'x'}), weights sign(W) * mean|W|"))
                continue
            if isinstance(m, (WeightBinConv2d, WeightBinLinear)):
                self.report.layers.append(LayerReport(
                    str(n.target), "wbin", f"hbn_engine.nn.{type(m).__name__}: float input, "
                    "weights sign(W) * mean|W|"))
                continue
            conv = self.conv_of(n)
            if conv is not None:
                self._layer(conv)
        self.prune()
        self.standalone_signs()

    def standalone_signs(self) -> None:
        """A sign-like op still used once the binary layers took theirs (a float layer whose
        weights are not +-alpha, a residual add of the binarized tensor, ...) becomes the
        engine's standalone sign with the model's value at 0, so nothing about sign(0) is
        approximated."""
        for n in list(self.graph.nodes):
            if not n.users or n.op in ("placeholder", "output", "get_attr") \
                    or isinstance(self.module(n), FRONTEND_LEAVES_SKIP):
                continue
            s = self.sign_of(n)
            if s is None:
                continue
            u, info, offset = s
            if info.zero is None:
                raise ExportError(f"node {n.name} ({info.what}) feeds {', '.join(map(str, n.users))}: "
                                  "it gives different values at +0.0 and -0.0, which a "
                                  "standalone sign cannot reproduce")
            if np.float32(offset) != offset:
                raise ExportError(f"node {n.name} ({info.what}): its threshold {offset!r} is not "
                                  "a float32 value")
            name = self._name_for(n, False)
            self._add_leaf(n, SignActivation(info.zero, offset), u, name)
            note = f"{name}: {info.what} feeds a float op: the engine's standalone sign " \
                   f"(value {info.zero} at {'0' if offset == 0 else offset})"
            if info.deviation:
                note += f"; the model's is sign to within {info.deviation:.1e}"
            self.report.notes.append(note)

    def zero_pad(self, n: fx.Node) -> Optional[tuple[fx.Node, tuple[int, int]]]:
        """(input, (top, left)) of a symmetric constant-0 padding of H / W (ConstantPad2d,
        ZeroPad2d, F.pad)."""
        m = self.module(n)
        if isinstance(m, nn.ConstantPad2d):
            pad, value = tuple(m.padding), m.value
        elif n.op == "call_function" and n.target is F.pad:
            kw = dict(zip(("input", "pad", "mode", "value"), n.args), **n.kwargs)
            if kw.get("mode", "constant") != "constant":
                return None
            pad, value = kw.get("pad"), kw.get("value")
            value = 0.0 if value is None else value
        else:
            return None
        if not isinstance(pad, (tuple, list)) or len(pad) not in (2, 4) \
                or not all(isinstance(p, int) and p >= 0 for p in pad) \
                or not isinstance(value, (int, float)) or value != 0:
            return None
        left, right, top, bottom = (tuple(pad) + (0, 0))[:4]
        if left != right or top != bottom:
            return None
        return n.args[0], (top, left)

    def _pooled_sign(self, n: fx.Node) -> Optional[_Sign]:
        """max_pool(sign(u)) feeding a layer is sign(max_pool(u)): a sign-like op is monotone
        and max-pool's padding is -inf, so the max commutes with it (torch.sign's {0, 1} values
        of sign(relu(x)) included). Returns the sign with a new max-pool node of u as its input
        (the old pool and sign drop out when nothing else reads them)."""
        m = self.module(n)
        if isinstance(m, _MAXPOOL):
            if m.return_indices or len(n.args) != 1 or n.kwargs:
                return None
        elif not (n.op == "call_function" and n.target is F.max_pool2d) or \
                n.kwargs.get("return_indices") or (len(n.args) > 6 and n.args[6]):
            return None
        if not n.args or not isinstance(n.args[0], fx.Node):
            return None
        s = self.find_sign(n.args[0])
        if s is None or s.info.zero is None or s.node is not n.args[0]:
            return None
        if s.info.zero == 0:
            # where the sign would be refused (-1, 0 and +1 values), the layer stays WeightBin on
            # the standalone sign's output, exact as before
            x0, a, b, _ = self.presign_chain(s.u)
            b = b - s.offset
            if self.zero_prone(x0, a, b) and self.maybe_negative(x0, a, b).any():
                return None
        with self.graph.inserting_before(n):
            if m is not None:
                pooled = self.graph.call_module(str(n.target), (s.u,))
            else:
                pooled = self.graph.call_function(F.max_pool2d, (s.u,) + tuple(n.args[1:]),
                                                  dict(n.kwargs))
        uv = self.val(s.u)
        self.tr.values[pooled] = m(uv) if m is not None else F.max_pool2d(uv, *n.args[1:], **n.kwargs)
        self.tr.depends[pooled] = True
        pooled.meta = dict(n.meta)
        self.report.changed = True
        return _Sign(s.node, pooled, dataclasses.replace(
            s.info, what=f"{s.info.what} through max-pool {n.name}"), s.offset)

    def _layer(self, c: _Conv) -> None:
        binw, why_w = self.pm_alpha(c.weight)
        sign = self.find_sign(c.x)
        if sign is None and binw is not None and c.groups == 1:
            sign = self._pooled_sign(c.x)
        zp = self.zero_pad(c.x) if sign is None and not c.linear else None
        if zp is not None and isinstance(zp[0], fx.Node):
            # sign(x) -> zero pad -> conv: torch's padded zeros add nothing to the +-1 dot
            # product, exactly as the FullBin conv's own padding does; so the pad becomes the
            # conv's padding. (A zero pad *before* the sign is another matter: sign(0) = 0 there
            # is the model's semantics, handled by the sign rules, and is not folded.)
            s2 = self.find_sign(zp[0])
            ph, pw = c.padding[0] + zp[1][0], c.padding[1] + zp[1][1]
            if s2 is not None and binw is not None and max(ph, pw) <= 64:
                c = dataclasses.replace(c, x=zp[0], padding=(ph, pw))
                sign = s2
        if c.dilation != (1, 1) and (sign is not None or binw is not None or not c.module):
            raise ExportError(f"layer {c.name} (node {c.node.name}): dilated convolution "
                              f"(dilation={c.dilation}) is not an engine op yet")
        if c.groups != 1 and sign is not None:
            raise ExportError(f"layer {c.name} (node {c.node.name}): grouped / depthwise "
                              f"convolution (groups={c.groups}) on a binarized input "
                              f"({sign.info.what}): binary grouped convs are not an engine op "
                              "(the float grouped conv would need a standalone sign op)")
        if c.groups != 1 and binw is not None:
            # no binary grouped kernel: +-alpha weights in a grouped conv (a depthwise 1x1
            # is always "+-alpha") run exactly as a float grouped conv
            binw = None
        if c.groups != 1:
            why_w = (f"grouped / depthwise conv (groups={c.groups}): float, the engine's "
                     "conv_grouped_f32")
        if sign is not None and binw is None:
            # a float layer on a binarized input: the sign stays, as the standalone sign op
            # (standalone_signs), and the layer is float
            why_w = (f"{why_w}; its input is binarized ({sign.info.what}): a float layer on the "
                     "standalone sign's +-1 output")
            sign = None
        if sign is not None:
            return self._fullbin(c, sign, binw)
        if binw is not None:
            neg, alpha, _ = binw
            leaf = BinaryConv("wbin", neg, alpha, c.bias, c.stride, c.padding, linear=c.linear)
            self._add_leaf(c.node, leaf, c.x, c.name)
            self.report.layers.append(LayerReport(
                c.name, "wbin", "float input; weights are " + self._alpha_text(binw)))
            return
        self.report.layers.append(LayerReport(
            c.name, "fprec", why_w if c.groups != 1 else
            f"weights are not +-alpha per output channel: {why_w}"))
        if not c.module:
            layer: nn.Module
            if c.linear:
                layer = nn.Linear(c.weight.shape[1], c.weight.shape[0], bias=c.bias is not None)
            else:
                layer = nn.Conv2d(c.weight.shape[1] * c.groups, c.weight.shape[0],
                                  tuple(c.weight.shape[2:]), c.stride, c.padding,
                                  groups=c.groups, bias=c.bias is not None)
            with torch.no_grad():
                layer.weight.copy_(c.weight)
                if c.bias is not None:
                    layer.bias.copy_(c.bias)
            self._add_leaf(c.node, layer.eval(), c.x, c.name)

    def _fullbin(self, c: _Conv, s: _Sign, binw: tuple[torch.Tensor, torch.Tensor, float]) -> None:
        x0, a, b, steps = self.presign_chain(s.u)
        xv = self.val(x0)
        b = b - s.offset  # the sign is sign(u - offset), u = a * x0 + b
        zero = s.info.zero
        chain = "x"
        for st in reversed(steps):
            chain = f"{st}({chain})" if st in ("BN", "hardtanh", "affine") else f"({chain} {st})"
        what = f"{s.info.what} of {chain}"
        zero_one = False
        if zero in (0, None):
            if self.zero_prone(x0, a, b):
                src = f"e.g. {x0.name} takes exact values that put it at 0"
                negative = self.maybe_negative(x0, a, b)
                if zero == 0 and not negative.any():
                    # sign of a non-negative value: {0, 1}-valued, exact with the {0, 1}
                    # FullBin kernel (bit 1 = 0 where the input is <= 0, i.e. exactly 0)
                    zero_one = True
                    what += " ({0, 1}-valued: its input is >= 0 and can be exactly 0)"
                elif self.sign_zero != "plus_one":
                    if zero == 0:
                        chans = np.flatnonzero(negative.reshape(negative.shape[0], -1).any(1))
                        shown = ", ".join(map(str, chans[:8])) + (", ..." if len(chans) > 8 else "")
                        why = ("and can also be negative (channel" + ("s " if len(chans) > 1 else " ")
                               + f"{shown}), so torch.sign gives -1, 0 and +1, which neither "
                               "the +-1 nor the {0, 1} FullBin kernel represents")
                    else:
                        why = "and its sign differs at +0.0 and -0.0"
                    raise ExportError(
                        f"node {s.node.name} ({s.info.what}) feeding layer {c.name}: its input "
                        f"{chain} can be exactly 0 with positive probability ({src}) {why}; "
                        "the engine binarizes 0 to +1 there. Pass sign_zero='plus_one' to "
                        "hbn_engine.export to accept sign(0) = +1, or binarize with "
                        "where(x >= 0, 1, -1)")
                else:
                    self.report.notes.append(
                        f"{c.name}: {s.info.what} input can be exactly 0; exported with "
                        "sign(0) = +1 as requested (sign_zero='plus_one')")
            else:
                self.report.notes.append(
                    f"{c.name}: {s.info.what} gives 0 at 0, the engine +1; its input {chain} "
                    "has no exact-zero mass, so they differ only on exact ties (measure zero)")
        elif self.zero_prone(x0, a, b):
            self.report.notes.append(
                f"{c.name}: the input of {s.info.what} ({chain}) can land exactly on its "
                "threshold (e.g. a binary conv's integer sum with no bias or BN between): the "
                "engine binarizes the exact value, PyTorch its float32 rounding, so such "
                "values may flip")
        if zero_one:
            v = self._rectified(x0)
            if v is not None and np.all(a > 0) and np.all(b == 0) and len(x0.users) == 1:
                # sign(a * rect(v)), rect with lower bound 0 (relu, relu6, clamp(min=0)), is
                # [v > 0]: thresholds on v itself, so the rectifier drops out and a binary conv
                # producing v writes these bits directly (the strict v > 0 rule). Not when the
                # rectified value is used elsewhere too (e.g. XNOR-Net's K computed from it).
                rect = x0.name
                x0, a, b, vsteps = self.presign_chain(v)
                xv = self.val(x0)
                chain = "x"
                for st in reversed(vsteps):
                    chain = f"{st}({chain})" if st in ("BN", "hardtanh", "affine") \
                        else f"({chain} {st})"
                what = (f"{s.info.what} of {rect}({chain}) ({{0, 1}}-valued: bit of "
                        f"{chain} > 0)")
        if s.info.deviation:
            self.report.notes.append(f"{c.name}: {s.info.what} is sign to within "
                                     f"{s.info.deviation:.1e} (straight-through arithmetic)")
        x = x0
        if c.linear:  # one threshold per input feature
            a, b = a.reshape(-1), b.reshape(-1)
            if xv.dim() == 4:
                with self.graph.inserting_after(x0):
                    x = self.graph.call_function(torch.flatten, (x0, 1))
                self.tr.values[x] = torch.flatten(xv, 1)
                self.tr.depends[x] = True
        else:
            pc = self._per_channel_ab(a, b, tuple(xv.shape[1:]))
            if pc is None:
                raise ExportError(f"layer {c.name}: the arithmetic before {s.info.what} varies "
                                  "over H / W, so it is not one threshold per channel")
            a, b = pc
        # {0, 1} inputs: bit 1 (the value 0) iff a*x + b <= 0, as for sign(0) = -1
        thr, flip = sign_thresholds(a, b, strict=zero != -1 and not zero_one)
        neg, alpha, _ = binw
        leaf = BinaryConv("fbin", neg, alpha, c.bias, c.stride, c.padding,
                          torch.from_numpy(thr), torch.from_numpy(flip), linear=c.linear,
                          zero_one=zero_one)
        self._add_leaf(c.node, leaf, x, c.name)
        self.report.layers.append(LayerReport(
            c.name, "fbin", f"input is {what}; weights are {self._alpha_text(binw)}"))

    @staticmethod
    def _alpha_text(binw: tuple[torch.Tensor, torch.Tensor, float]) -> str:
        dev = binw[2]
        return "+-alpha per output channel" + (
            f" (to within {dev:.1e}: straight-through arithmetic in the forward)" if dev else "")

    # 4a. XNOR-Net's input scale K written in forward ----------------------------------------
    def fold_input_scale(self) -> None:
        """``binconv(sign(BN(x))) * avg_pool(mean_c |BN(x)|, conv window)`` (the average
        possibly written as a conv with a constant 1/(kh*kw) kernel) is a FullBin conv with the
        engine's input scale: y = acc * alpha * K + bias."""
        for n in list(self.graph.nodes):
            if not n.users or not ((n.op == "call_function" and n.target in _MUL) or (
                    n.op == "call_method" and n.target in ("mul", "mul_"))):
                continue
            if len(n.args) != 2 or not all(self.is_act(v) for v in n.args):
                continue
            for conv_node, k_node in (n.args, n.args[::-1]):
                leaf = self.module(conv_node)
                if not (isinstance(leaf, BinaryConv) and leaf.kind == "fbin" and not leaf.linear
                        and leaf.bias is None and leaf.in_scale is None
                        and len(conv_node.users) == 1):
                    continue
                k = self._xnor_k(k_node)
                if k is None:
                    continue
                v, window, stride, padding = k
                x0, a, b = self._affine_chain(v)
                if x0 is not conv_node.args[0] or window != tuple(leaf.negative.shape[2:]) \
                        or stride != leaf.stride or padding != leaf.padding:
                    continue
                leaf.set_input_scale(a, b)
                self._replace(n, conv_node)
                if isinstance(self.module(k_node), BinaryConv):  # the averaging conv is gone
                    gone = self._leaf_name(k_node)
                    self.report.layers = [lr for lr in self.report.layers if lr.name != gone]
                for lr in self.report.layers:
                    if lr.kind == "fbin" and lr.name == self._leaf_name(conv_node):
                        lr.reason += "; output times XNOR-Net's input scale K (computed in forward)"
                break

    def _leaf_name(self, node: fx.Node) -> str:
        return next((name for nd, name in self._new_leaves if nd is node), str(node.target))

    def _xnor_k(self, n: fx.Node) -> Optional[tuple[fx.Node, tuple, tuple, tuple]]:
        """(v, window, stride, padding) when n = avg_pool(mean(|v|, dim=1, keepdim)) with zero
        padding counted, or the same as a conv with one constant 1/(kh*kw) kernel."""
        m = self.module(n)
        if isinstance(m, BinaryConv):
            ok = (m.kind == "wbin" and not m.linear and m.bias is None
                  and tuple(m.negative.shape[:2]) == (1, 1) and not bool(m.negative.any())
                  and abs(float(m.scale[0]) * m.negative[0, 0].numel() - 1.0) <= 1e-6)
            if not ok:
                return None
            inner, window, stride, padding = n.args[0], tuple(m.negative.shape[2:]), \
                tuple(m.stride), tuple(m.padding)
        elif isinstance(m, nn.AvgPool2d) or (n.op == "call_function" and n.target is F.avg_pool2d):
            if isinstance(m, nn.AvgPool2d):
                args = {"input": n.args[0], "kernel_size": m.kernel_size, "stride": m.stride,
                        "padding": m.padding, "ceil_mode": m.ceil_mode,
                        "count_include_pad": m.count_include_pad,
                        "divisor_override": m.divisor_override}
            else:
                args = dict(zip(("input", "kernel_size", "stride", "padding", "ceil_mode",
                                 "count_include_pad", "divisor_override"), n.args))
                args.update(n.kwargs)
            if args.get("ceil_mode") or not args.get("count_include_pad", True) \
                    or args.get("divisor_override") is not None:
                return None
            window = _pair(args["kernel_size"])
            stride = _pair(args.get("stride") or window)
            inner, padding = args["input"], _pair(args.get("padding", 0))
        else:
            return None
        if not isinstance(inner, fx.Node):
            return None
        # inner = mean(|v|, dim=1, keepdim=True)
        if inner.op == "call_method" and inner.target == "mean":
            margs = dict(zip(("self", "dim", "keepdim"), inner.args))
        elif inner.op == "call_function" and inner.target is torch.mean:
            margs = dict(zip(("self", "dim", "keepdim"), inner.args))
        else:
            return None
        margs.update(inner.kwargs)
        dim = margs.get("dim")
        if dim not in (1, (1,), [1]) or not margs.get("keepdim", False):
            return None
        ab = margs["self"]
        if not isinstance(ab, fx.Node) or not (
                (ab.op == "call_function" and ab.target in (torch.abs, operator.abs, abs))
                or (ab.op == "call_method" and ab.target == "abs")):
            return None
        return ab.args[0], tuple(window), tuple(stride), tuple(padding)

    def _affine_chain(self, v: fx.Node) -> tuple[fx.Node, np.ndarray, np.ndarray]:
        """v = a * x0 + b per channel through foldable per-channel arithmetic."""
        c = self.val(v).shape[1]
        a, b = np.ones(c), np.zeros(c)
        n = v
        while True:
            p = self.passthrough(n)
            if p is not None and not p[1]:
                n = p[0]
                continue
            aff = self.affine_of(n)
            if aff is None:
                return n, a, b
            x, a2, b2, _ = aff
            b = a * np.broadcast_to(b2, (c,)) + b
            a = a * np.broadcast_to(a2, (c,))
            n = x

    # 4. per-channel arithmetic ---------------------------------------------------------------
    def rewrite_affine(self) -> None:
        for n in list(self.graph.nodes):
            if not n.users or n.op == "call_module" and isinstance(self.module(n), ChannelAffine):
                continue
            if self.arith(n) is None and not (n.op == "call_function"
                                              and n.target is F.batch_norm):
                continue
            aff = self.affine_of(n)
            if aff is None:
                if self.arith(n) is not None:
                    raise ExportError(f"node {n.name} ({self._name_for(n, False)}): elementwise "
                                      "arithmetic with a constant that is not one value per "
                                      "channel (it varies over H / W or does not broadcast)")
                continue
            x, a, b, _ = aff
            channels = self.val(x).shape[1]
            a = np.broadcast_to(a, (channels,)).astype(np.float64)
            b = np.broadcast_to(b, (channels,)).astype(np.float64)
            prev = self.module(x) if isinstance(x, fx.Node) else None
            if isinstance(prev, ChannelAffine) and len(x.users) == 1:
                # fold consecutive per-channel ops in float64
                b = a * prev.shift.numpy() + b
                a = a * prev.scale.numpy()
                x = x.args[0]
            self._add_leaf(n, ChannelAffine(a, b), x, self._name_for(n, False))

    # 5. what the engine cannot run (yet) -------------------------------------------------------
    def check_leftovers(self) -> None:
        later = {nn.PReLU: "PReLU (issue 10/12: the registry's prelu op)",
                 nn.LeakyReLU: "LeakyReLU (issue 12 phase 2)",
                 nn.Hardtanh: "hardtanh / clamp as an activation (issue 12 phase 2)",
                 nn.LogSoftmax: "log_softmax (issue 12 phase 2)",
                 nn.ConstantPad2d: "constant padding (issue 12 phase 2)",
                 nn.ZeroPad2d: "constant padding (issue 12 phase 2)"}
        # once the op registry provides one of these, the lowering handles it: defer to it
        engine_names = {nn.PReLU: ("prelu",), nn.LeakyReLU: ("leaky_relu", "prelu"),
                        nn.Hardtanh: ("hardtanh", "clamp"), nn.LogSoftmax: ("log_softmax",),
                        nn.ConstantPad2d: ("pad", "constant_pad"),
                        nn.ZeroPad2d: ("pad", "constant_pad")}
        later = {t: w for t, w in later.items() if not _engine_has(engine_names[t])}
        fns = {F.prelu: later.get(nn.PReLU), F.leaky_relu: later.get(nn.LeakyReLU),
               F.hardtanh: later.get(nn.Hardtanh), torch.clamp: later.get(nn.Hardtanh),
               torch.clip: later.get(nn.Hardtanh), F.log_softmax: later.get(nn.LogSoftmax),
               torch.log_softmax: later.get(nn.LogSoftmax), F.pad: later.get(nn.ConstantPad2d)}
        methods = {"clamp": later.get(nn.Hardtanh), "clip": later.get(nn.Hardtanh),
                   "clamp_": later.get(nn.Hardtanh), "log_softmax": later.get(nn.LogSoftmax)}
        for n in self.graph.nodes:
            if n.op in ("placeholder", "output", "get_attr"):
                continue
            s = self.sign_of(n)
            if s is not None:
                users = ", ".join(u.name for u in n.users)
                raise ExportError(f"node {n.name} ({s[1].what}) feeds {users}, which is not a "
                                  "conv / linear layer with +-alpha weights: a standalone sign "
                                  "op is not in the engine yet (issue 12 phase 2)")
            m = self.module(n)
            if n.op == "call_module" and str(n.target) in self.tr.opaque:
                raise ExportError(f"module {n.target} ({type(m).__name__}): torch.fx could not "
                                  f"trace its forward ({self.tr.opaque[str(n.target)]}) and it "
                                  "is not a sign-like op the front end recognises")
            why = next((w for t, w in later.items() if isinstance(m, t)), None)
            if why is None and n.op == "call_function":
                why = fns.get(n.target)
            if why is None and n.op == "call_method":
                why = methods.get(str(n.target))
            if why is not None:
                raise ExportError(f"node {n.name} ({n.target}): {why} is not an engine op yet")
            if (n.op == "call_function" and n.target in _MUL | _DIV) or \
                    (n.op == "call_method" and _ARITH_METHODS.get(str(n.target)) in ("mul", "div")):
                if sum(self.is_act(a) for a in n.args) == 2:
                    raise ExportError(
                        f"node {n.name} ({self._name_for(n, False)}): product of two tensors "
                        "computed from the input (e.g. XNOR-Net's scale K computed in forward) "
                        "is not an engine op yet (issue 12 phase 2)")

    # finishing -------------------------------------------------------------------------------
    def finish(self) -> None:
        """Install the new leaves under readable names (the layer names of the report)."""
        targets = {str(n.target) for n in self.graph.nodes if n.op in ("call_module", "get_attr")}
        used: set[str] = set()
        for node, name in self._new_leaves:
            if node.graph is not self.graph or node not in self.graph.nodes:
                continue
            tmp = str(node.target)
            want = name
            clash = any(t == want or t.startswith(want + ".") for t in targets if t != tmp) \
                or want in used
            if clash:
                base = want.replace(".", "_")
                want, k = base, 1
                while want in used or want in targets:
                    want, k = f"{base}_{k}", k + 1
            module = self.gm.get_submodule(tmp)
            parent, _, last = want.rpartition(".")
            try:
                holder: Optional[nn.Module] = self.gm.get_submodule(parent) if parent else self.gm
            except AttributeError:
                holder = None
            if holder is not None and hasattr(holder, last):
                delattr(holder, last)  # a traced-into module or folded parameter nothing uses
            self.gm.add_submodule(want, module)
            node.target = want
            used.add(want)
            targets.add(want)
        self.gm.delete_all_unused_submodules()
        self.graph.lint()
        self.gm.recompile()

