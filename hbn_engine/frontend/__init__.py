"""The export front end: PyTorch model as written -> a normalised torch.fx graph the lowering
(hbn_engine.exporter) runs, recognising binarization by what the graph computes.

``normalize(model, example_input)`` traces with the example's concrete shapes, folds
parameter-only subgraphs, prunes dead nodes and rewrites sign-like ops, +-alpha weights and
per-channel arithmetic into leaf modules the lowering exports (see docs/export.md). Needs torch;
imported lazily by ``hbn_engine.export``.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from hbn_engine.frontend.report import ExportReport, LayerReport
from hbn_engine.frontend.rewrite import SIGN_ZERO_MODES, Normalizer, sign_thresholds
from hbn_engine.frontend.signs import SignInfo, probe_sign
from hbn_engine.frontend.trace import ConcreteTracer, trace

__all__ = ["normalize", "ExportReport", "LayerReport", "SignInfo", "probe_sign",
           "sign_thresholds", "SIGN_ZERO_MODES", "ConcreteTracer", "trace"]


def normalize(model: nn.Module, example_input: torch.Tensor, *,
              sign_zero: str = "exact") -> tuple[fx.GraphModule, ExportReport]:
    """Trace ``model`` (already in eval mode) on ``example_input`` and normalise the graph.

    Returns the GraphModule (shape-propagated with ``example_input``) and the per-layer report.
    ``sign_zero="exact"`` refuses a torch.sign whose input can be exactly 0 (where PyTorch
    gives 0 and the engine +1); ``"plus_one"`` accepts the engine's sign(0) = +1 there.
    Raises hbn_engine.exporter.ExportError naming the node for what cannot be exported.
    """
    from hbn_engine.exporter import ExportError, _Tracer

    if sign_zero not in SIGN_ZERO_MODES:
        raise ValueError(f"sign_zero must be one of {SIGN_ZERO_MODES}, got {sign_zero!r}")
    example = example_input.detach().to(torch.float32)
    root = model
    if _Tracer().is_leaf_module(model, ""):
        # A single layer exported on its own: trace a container holding it, since fx always
        # traces through the root module's forward.
        root = nn.Sequential(OrderedDict([(type(model).__name__.lower(), model)]))
    try:
        gm, tracer = trace(root, example)
    except ExportError:
        raise
    except Exception as e:  # fx raises many types for untraceable code
        raise ExportError(f"torch.fx could not trace the model: {e}") from e
    report = ExportReport()
    norm = Normalizer(gm, tracer, sign_zero, report)
    norm.fold_constants()
    norm.prune()
    norm.rewrite_layers()
    norm.prune()
    norm.fold_input_scale()
    norm.prune()
    norm.rewrite_affine()
    norm.prune()
    norm.check_leftovers()
    norm.finish()
    ShapeProp(gm).propagate(example)
    return gm, report
