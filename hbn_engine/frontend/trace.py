"""torch.fx tracing specialised on the example input.

Every node is also evaluated on the example input while it is created (a "shadow" value), so:

* shape queries (``x.size(1)``, ``x.dim()``, ``x.shape``, ``len(x)``) return plain Python
  values and shape-dependent control flow simply takes the example's branch (the engine file
  is specialised to one image shape anyway; its batch size stays free);
* a branch on a value computed from parameters only is taken too (it is fixed at export);
  a branch on activations is refused with the node named;
* user modules and ``torch.autograd.Function``s are probed: when their forward computes an
  elementwise sign they become opaque sign nodes (whatever their class or straight-through
  backward), otherwise they are traced into;
* the front end later reads the shadow values of parameter-only subgraphs (folded weights).
"""
from __future__ import annotations

import contextlib
import functools
import operator
from typing import Any, Callable, Iterator, Optional

import torch
from torch import fx, nn

from hbn_engine.frontend.leaves import FRONTEND_LEAVES
from hbn_engine.frontend.signs import SignInfo, probe_sign

__all__ = ["ConcreteTracer", "trace"]

_INPLACE_FUNCS = {operator.iadd, operator.isub, operator.imul, operator.itruediv}


_SHAPE_ONLY_FUNCS = {torch.ones_like, torch.zeros_like, torch.full_like}
_SHAPE_ONLY_METHODS = {"expand_as", "view_as", "reshape_as", "type_as", "new_ones", "new_zeros",
                       "new_full", "new_tensor"}


def _shape_only(node: fx.Node) -> bool:
    """Ops whose result depends on their (other) tensor arguments' shape / dtype only."""
    if node.op == "call_function":
        return node.target in _SHAPE_ONLY_FUNCS
    if node.op == "call_method":
        return node.target in _SHAPE_ONLY_METHODS
    return False


def _fetch_attr(root: nn.Module, qualname: str) -> Any:
    return functools.reduce(getattr, qualname.split("."), root)


class _ShapedProxy(fx.Proxy):
    """A proxy whose shape queries answer with the example input's concrete values."""

    def _concrete(self) -> Any:
        return self.tracer.value_of(self.node)

    @property
    def shape(self) -> Any:  # type: ignore[override]
        v = self._concrete()
        return v.shape if isinstance(v, torch.Tensor) else fx.Proxy.__getattr__(self, "shape")

    @property
    def ndim(self) -> Any:  # type: ignore[override]
        v = self._concrete()
        return v.dim() if isinstance(v, torch.Tensor) else fx.Proxy.__getattr__(self, "ndim")

    @property
    def dtype(self) -> Any:  # type: ignore[override]
        v = self._concrete()
        return v.dtype if isinstance(v, torch.Tensor) else fx.Proxy.__getattr__(self, "dtype")

    @property
    def device(self) -> Any:  # type: ignore[override]
        v = self._concrete()
        return v.device if isinstance(v, torch.Tensor) else fx.Proxy.__getattr__(self, "device")

    def size(self, *args: Any, **kwargs: Any) -> Any:
        v = self._concrete()
        if isinstance(v, torch.Tensor):
            return v.size(*args, **kwargs)
        return self.tracer.create_proxy("call_method", "size", (self, *args), kwargs)

    def dim(self) -> Any:
        v = self._concrete()
        if isinstance(v, torch.Tensor):
            return v.dim()
        return self.tracer.create_proxy("call_method", "dim", (self,), {})

    def numel(self) -> Any:
        v = self._concrete()
        if isinstance(v, torch.Tensor):
            return v.numel()
        return self.tracer.create_proxy("call_method", "numel", (self,), {})

    def is_floating_point(self) -> Any:
        v = self._concrete()
        return v.is_floating_point() if isinstance(v, torch.Tensor) else True

    def __len__(self) -> int:
        return len(self._concrete())


class ConcreteTracer(fx.Tracer):
    """fx tracer that evaluates every node on the example input as it records it."""

    def __init__(self, example: torch.Tensor, extra_leaves: tuple[type, ...] = ()) -> None:
        super().__init__()
        self.example = example
        self.extra_leaves = tuple(extra_leaves) + FRONTEND_LEAVES
        self.values: dict[fx.Node, Any] = {}
        self.depends: dict[fx.Node, bool] = {}  # computed from the model input?
        self.signs: dict[fx.Node, SignInfo] = {}
        self._sign_modules: dict[str, SignInfo] = {}
        self.opaque: dict[str, str] = {}  # modules fx could not trace into -> why
        self._fn_targets: dict[type, Callable[..., Any]] = {}
        self._evaluating = 0  # > 0 while running modules on concrete tensors

    @contextlib.contextmanager
    def concrete(self) -> Iterator[None]:
        """Run real modules on real tensors while fx's tracing patches are active: module
        calls and parameter reads pass straight through instead of recording nodes."""
        self._evaluating += 1
        try:
            with torch.no_grad():
                yield
        finally:
            self._evaluating -= 1

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict) -> Any:
        if self._evaluating:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    # values ------------------------------------------------------------------------------
    def value_of(self, node: fx.Node) -> Any:
        if node not in self.values and node.op == "get_attr":
            self.values[node] = _fetch_attr(self.root, str(node.target))
            self.depends[node] = False
        return self.values[node]

    def depends_on_input(self, node: fx.Node) -> bool:
        if node not in self.depends:
            self.value_of(node)
        return self.depends.get(node, False)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ShapedProxy(node, self)

    def create_proxy(self, kind: str, target: Any, args: tuple, kwargs: dict,
                     name: Optional[str] = None, type_expr: Any = None,
                     proxy_factory_fn: Any = None) -> fx.Proxy:
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr,
                                     proxy_factory_fn)
        node = proxy.node
        if kind != "output":
            self._evaluate(node)
        return proxy

    def _evaluate(self, node: fx.Node) -> None:
        inputs = node.all_input_nodes
        if _shape_only(node):  # e.g. ones_like(x), w.expand_as(x): x's values do not matter
            keep_self = node.op == "call_method" and not str(node.target).startswith("new_")
            inputs = [a for a in node.args[:1] if isinstance(a, fx.Node)] if keep_self else []
        self.depends[node] = node.op == "placeholder" or any(
            self.depends_on_input(n) for n in inputs)
        inplace = self._is_inplace(node)

        def load(n: fx.Node) -> Any:
            v = self.value_of(n)
            # an in-place op must not change the recorded value of its input
            return v.clone() if inplace and isinstance(v, torch.Tensor) else v

        args = fx.node.map_arg(node.args, load)
        kwargs = fx.node.map_arg(node.kwargs, load)
        with self.concrete():
            if node.op == "placeholder":
                value: Any = self.example
            elif node.op == "get_attr":
                value = _fetch_attr(self.root, str(node.target))
            elif node.op == "call_function":
                value = node.target(*args, **kwargs)
            elif node.op == "call_method":
                value = getattr(args[0], node.target)(*args[1:], **kwargs)
            elif node.op == "call_module":
                value = self.root.get_submodule(str(node.target))(*args, **kwargs)
            else:
                return
        self.values[node] = value

    def _is_inplace(self, node: fx.Node) -> bool:
        t = node.target
        if node.op == "call_method":
            return isinstance(t, str) and t.endswith("_") and not t.endswith("__")
        if node.op == "call_function":
            return t in _INPLACE_FUNCS or bool(node.kwargs.get("inplace", False)) or \
                getattr(t, "__name__", "").endswith("_")
        if node.op == "call_module":
            return bool(getattr(self.root.get_submodule(str(node.target)), "inplace", False))
        return False

    # control flow -------------------------------------------------------------------------
    def to_bool(self, obj: fx.Proxy) -> bool:
        from hbn_engine.exporter import ExportError

        node = obj.node
        if self.depends_on_input(node):
            raise ExportError(f"node {node.name} ({node.op} {_target_name(node)}): Python control "
                              "flow on a value computed from the model input (only shapes and "
                              "parameters can steer the forward at export)")
        return bool(self.value_of(node))

    def iter(self, obj: fx.Proxy) -> Iterator:
        v = self.value_of(obj.node)
        return iter([obj[i] for i in range(len(v))])

    # modules and autograd functions --------------------------------------------------------
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        from hbn_engine.nn import BINARY_LAYERS

        if qualname in self._sign_modules or qualname in self.opaque or \
                isinstance(m, self.extra_leaves + BINARY_LAYERS):
            return True
        return super().is_leaf_module(m, qualname)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple,
                    kwargs: dict) -> Any:
        if self._evaluating:
            return forward(*args, **kwargs)
        qualname = self.path_of_module(m)
        stack = dict(self.module_stack)
        if (qualname and qualname not in self._sign_modules and len(args) == 1 and not kwargs
                and isinstance(args[0], fx.Proxy)
                and not super().is_leaf_module(m, qualname)
                and all(p.dim() <= 1 for p in m.parameters())):
            with self.concrete():
                info = probe_sign(m, self.value_of(args[0].node),
                                  f"module {qualname} ({type(m).__name__})")
            if info is not None:
                self._sign_modules[qualname] = info
        try:
            out = super().call_module(m, forward, args, kwargs)
        except Exception as e:  # noqa: BLE001 - fall back to an opaque call, see below
            from hbn_engine.exporter import ExportError

            if isinstance(e, ExportError) or not qualname or qualname in self.opaque \
                    or self.is_leaf_module(m, qualname):
                raise
            # fx cannot trace this module's forward (numpy, data-dependent Python, ...): keep
            # it as one opaque node; its value is still known, and the front end says why it
            # cannot be exported unless a later pass recognises it
            self.module_stack.clear()
            self.module_stack.update(stack)
            self.opaque[qualname] = f"{type(e).__name__}: {e}"
            out = super().call_module(m, forward, args, kwargs)
        if qualname in self._sign_modules and isinstance(out, fx.Proxy):
            self.signs[out.node] = self._sign_modules[qualname]
        return out

    def autograd_apply(self, cls: type, orig: Callable[..., Any], args: tuple,
                       kwargs: dict) -> Any:
        """A torch.autograd.Function applied to proxies: an opaque sign node if its forward
        computes a sign on the actual input, else traced into."""
        tensors = [a for a in args if isinstance(a, fx.Proxy)]
        if len(tensors) == 1 and isinstance(args[0], fx.Proxy) and not kwargs:
            rest = args[1:]
            with self.concrete():
                info = probe_sign(lambda t: orig(cls, t, *rest), self.value_of(args[0].node),
                                  f"autograd.Function {cls.__qualname__}")
            if info is not None:
                target = self._fn_targets.get(cls)
                if target is None:
                    target = _apply_target(cls)
                    self._fn_targets[cls] = target
                out = self.create_proxy("call_function", target, args, {})
                self.signs[out.node] = info
                return out
        return orig(cls, *args, **kwargs)


def _apply_target(cls: type) -> Callable[..., Any]:
    def apply(*args: Any) -> Any:
        return cls.apply(*args)

    apply.__name__ = apply.__qualname__ = f"{cls.__name__}_apply"
    return apply


def _target_name(node: fx.Node) -> str:
    t = node.target
    return t if isinstance(t, str) else getattr(t, "__name__", repr(t))


@contextlib.contextmanager
def _patched_autograd_apply(tracer: ConcreteTracer) -> Iterator[None]:
    Function = torch.autograd.Function
    orig_cm = Function.__dict__["apply"]
    orig = orig_cm.__func__

    def apply(cls: type, *args: Any, **kwargs: Any) -> Any:
        if any(isinstance(a, fx.Proxy) for a in list(args) + list(kwargs.values())):
            return tracer.autograd_apply(cls, orig, args, kwargs)
        return orig(cls, *args, **kwargs)

    Function.apply = classmethod(apply)  # type: ignore[assignment]
    try:
        yield
    finally:
        Function.apply = orig_cm  # type: ignore[assignment]


def _thread_in_place(graph: fx.Graph, tracer: ConcreteTracer) -> None:
    """fx records ``y.add_(b)`` as a new node but later code keeps reading ``y``: point every
    later use of a mutated value at the in-place op's result, so the graph means what the
    mutation did (and dead-code pruning cannot drop a mutation that is read later)."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    for n in list(graph.nodes):
        if not tracer._is_inplace(n) or not n.args or not isinstance(n.args[0], fx.Node):
            continue
        src = n.args[0]
        for u in list(src.users):
            if u is not n and order[u] > order[n]:
                u.replace_input_with(src, n)


def trace(root: nn.Module, example: torch.Tensor) -> tuple[fx.GraphModule, ConcreteTracer]:
    """Trace ``root`` on ``example``; returns the GraphModule and the tracer (shadow values,
    recognised sign nodes)."""
    tracer = ConcreteTracer(example)
    with _patched_autograd_apply(tracer):
        graph = tracer.trace(root)
    _thread_in_place(graph, tracer)
    gm = fx.GraphModule(tracer.root, graph)
    return gm, tracer
