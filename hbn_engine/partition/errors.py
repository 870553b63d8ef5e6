"""Per-layer binarization error (paper Eq. 1-3), FLOPs and measured cost of binarizable layers."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Union

import numpy as np
import torch
from torch import nn

__all__ = [
    "binarizable_layers",
    "binarization_error_pair",
    "binarization_errors",
    "layer_kinds",
    "layer_flops",
    "measure_layer_times",
]

ArrayLike = Union[torch.Tensor, np.ndarray]

_FULLBIN = ("FullBinConv2d", "FullBinLinear")
_WEIGHTBIN = ("WeightBinConv2d", "WeightBinLinear")


def _is_fullbin(module: nn.Module) -> bool:
    # Class names rather than isinstance: hbn_engine.nn is optional here (float-only models can be
    # analysed too), and the names are the public contract of that module.
    return type(module).__name__ in _FULLBIN


def _is_candidate(module: nn.Module) -> bool:
    name = type(module).__name__
    return name in _FULLBIN or name in _WEIGHTBIN or isinstance(module, (nn.Conv2d, nn.Linear))


def binarizable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The layers whose input could be binarized, in forward (definition) order.

    Models from ``hbn_engine.models`` list them in ``model.hbn_layers``; for other models every
    FullBin/WeightBin layer and every ``nn.Conv2d``/``nn.Linear`` that is not nested inside one
    of those is a candidate.
    """
    modules = dict(model.named_modules())
    declared = getattr(model, "hbn_layers", None)
    if isinstance(declared, Mapping) and declared:
        missing = [n for n in declared if n not in modules]
        if missing:
            raise ValueError(f"model.hbn_layers names modules that do not exist: {missing}")
        return {n: modules[n] for n in declared}
    out: dict[str, nn.Module] = {}
    for name, mod in modules.items():
        if not name or not _is_candidate(mod):
            continue
        if any(name.startswith(p + ".") for p in out):
            continue  # the float conv inside a binary layer is not a separate layer
        out[name] = mod
    if not out:
        raise ValueError("model has no binarizable (conv/linear) layers")
    return out


def layer_kinds(model: nn.Module) -> dict[str, str]:
    """Kind of every binarizable layer as the model computes it: "fbin" (FullBin: binary weights
    and input), "wbin" (WeightBin: binary weights, float input) or "fprec" (float conv/linear).

    Read from the module classes, not from ``hbn_layers``' values, so a model whose declaration
    and modules disagree is described by what it runs.
    """
    out = {}
    for name, mod in binarizable_layers(model).items():
        kind = type(mod).__name__
        out[name] = "fbin" if kind in _FULLBIN else "wbin" if kind in _WEIGHTBIN else "fprec"
    return out


def _as_batch(images: ArrayLike) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor or numpy array, got {type(images).__name__}")
    if images.dim() < 2 or images.shape[0] == 0:
        raise ValueError(f"images must be a non-empty batch (N, ...), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise TypeError(f"images must be floating point, got {images.dtype}")
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or Inf")
    return images.float()


def _standardize(x: torch.Tensor) -> torch.Tensor:
    # What a fresh BatchNorm (affine = identity) would put in front of the sign if this layer were
    # made FullBin: per-channel zero mean, unit variance over the batch (and space).
    dims = [d for d in range(x.dim()) if d != 1]
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + 1e-5)


def _binarized_input(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if _is_fullbin(module):
        bn = getattr(module, "bn", None)
        return bn(x) if bn is not None else x
    return _standardize(x)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was)


def _macs(module: nn.Module, out: torch.Tensor) -> float:
    """Multiply-accumulates of one sample through ``module`` (the paper's FLOPs)."""
    per_sample_out = out[0].numel()
    w = getattr(module, "weight", None)
    if w is None or w.dim() < 2:
        return float(per_sample_out)
    # weight is (out, in/groups, kh, kw) or (out, in): every output needs prod(w.shape[1:]) MACs
    return float(per_sample_out * int(np.prod(w.shape[1:])))


def _batches(images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for i in range(0, images.shape[0], batch_size):
        yield images[i:i + batch_size]


def binarization_error_pair(model: nn.Module, images: ArrayLike, *, batch_size: int = 256
                            ) -> tuple[dict[str, float], dict[str, float]]:
    """(scaled, literal) binarization errors of every binarizable layer from one forward pass;
    see :func:`binarization_errors` for what each one is."""
    batch = _as_batch(images)
    layers = binarizable_layers(model)
    sq_scaled: dict[str, float] = {n: 0.0 for n in layers}
    sq_literal: dict[str, float] = {n: 0.0 for n in layers}
    count: dict[str, int] = {n: 0 for n in layers}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Any, ...]) -> None:
            x = inputs[0]
            mag = _binarized_input(module, x).reshape(x.shape[0], -1).double().abs()
            alpha = mag.mean(dim=1, keepdim=True)
            sq_scaled[name] += float((mag - alpha).square().sum())  # |I - alpha*sign(I)| = ||I| - alpha|
            sq_literal[name] += float((mag - 1.0).square().sum())   # |I - sign(I)| = ||I| - 1|, also at 0
            count[name] += mag.numel()
        return hook

    handles = [m.register_forward_pre_hook(make_hook(n)) for n, m in layers.items()]
    try:
        with _eval_mode(model):
            for chunk in _batches(batch, batch_size):
                model(chunk)
    finally:
        for h in handles:
            h.remove()
    unreached = [n for n in layers if count[n] == 0]
    if unreached:
        raise RuntimeError(f"layers never ran in the forward pass: {unreached}")
    return ({n: sq_scaled[n] / count[n] for n in layers},
            {n: sq_literal[n] / count[n] for n in layers})


def binarization_errors(model: nn.Module, images: ArrayLike, *, scaled: bool = True,
                        batch_size: int = 256) -> dict[str, float]:
    """Binarization error E = ||I - I_B||^2 / n at the input of every binarizable layer.

    ``images``: float (N, C, H, W) batch (torch or numpy), typically a subset of the training set
    pushed through a trained FBin model. The model runs in eval mode (BatchNorm uses its running
    statistics, as at inference) and is restored afterwards.

    I is the tensor the layer would binarize: ``bn(x)`` for FullBin layers (their BatchNorm comes
    before the sign), and for other layers x standardized per channel over the batch, which is
    what a BatchNorm in front of the sign would produce if the layer were made FullBin.

    ``scaled=True`` (default) uses the XNOR-Net approximation I_B = alpha * sign(I), alpha =
    mean|I| per sample (the minimizer of Eq. 1 once a scale is allowed), so E measures the shape
    information lost by the sign rather than the magnitude of I; ``scaled=False`` uses
    I_B = sign(I) (Eq. 2/3 literally, sign(0) = +1). On unit-variance Gaussian I the two are
    1 - 2/pi = 0.363 and 2 - 2 sqrt(2/pi) = 0.404. See docs/partition.md.
    Returns layer name -> E (mean over all elements of all images), in layer order.
    """
    pair = binarization_error_pair(model, images, batch_size=batch_size)
    return pair[0] if scaled else pair[1]


def _hook_flops(model: nn.Module, example: torch.Tensor) -> dict[str, float]:
    layers = binarizable_layers(model)
    flops: dict[str, float] = {}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Any, ...], out: torch.Tensor) -> None:
            flops[name] = _macs(module, out)
        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in layers.items()]
    try:
        with _eval_mode(model):
            model(example[:1])
    finally:
        for h in handles:
            h.remove()
    return {n: flops[n] for n in layers if n in flops}


def layer_flops(model: nn.Module, images: ArrayLike | None = None) -> dict[str, float]:
    """FLOPs NF of every binarizable layer for one input (float multiply-accumulates).

    Uses ``hbn_engine.flops.layer_table`` when it exists and covers every layer; otherwise counts
    them with forward hooks on one image of ``images`` (required then).
    """
    layers = binarizable_layers(model)
    try:
        from hbn_engine.flops import layer_table  # noqa: PLC0415 (optional sibling module)
    except ImportError:
        layer_table = None
    batch = _as_batch(images) if images is not None else None
    if layer_table is not None:
        size = tuple(batch.shape[1:]) if batch is not None else getattr(model, "input_size", None)
        table: dict[str, float] = {}
        if size is not None:
            table = {row.name: float(row.flops) for row in layer_table(model, input_size=size)}
        if all(n in table and table[n] > 0 for n in layers):
            return {n: table[n] for n in layers}
    if batch is None:
        raise ValueError("layer_flops needs example images for models hbn_engine.flops cannot count")
    return _hook_flops(model, batch)


def measure_layer_times(model: nn.Module, images: ArrayLike, *, repeats: int = 5,
                        warmup: int = 1) -> dict[str, float]:
    """Wall time (seconds, best of ``repeats``) of each binarizable torch layer on its real input.

    The latency-aware metric uses these in place of FLOPs when no engine timings are supplied.
    Each layer is timed alone on the input captured from one forward pass of ``images``.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be >= 1 and warmup >= 0")
    batch = _as_batch(images)
    layers = binarizable_layers(model)
    captured: dict[str, torch.Tensor] = {}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[Any, ...]) -> None:
            captured[name] = inputs[0].detach().clone()
        return hook

    handles = [m.register_forward_pre_hook(make_hook(n)) for n, m in layers.items()]
    try:
        with _eval_mode(model):
            model(batch)
    finally:
        for h in handles:
            h.remove()
    times: dict[str, float] = {}
    with _eval_mode(model):
        for name, mod in layers.items():
            x = captured[name]
            for _ in range(warmup):
                mod(x)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                mod(x)
                best = min(best, time.perf_counter() - t0)
            times[name] = max(best, 1e-9)
    return times
