"""hbn_engine: a CPU inference engine for binary and hybrid-binary CNNs.

Runtime use needs only numpy::

    import hbn_engine
    model = hbn_engine.load("hybrid_alexnet.hbn")
    y = model.run(x)          # x: float32 NCHW numpy array

Training and export need torch (``pip install hbn_engine[torch]``): ``hbn_engine.nn`` holds the
binary layers, ``hbn_engine.models`` the paper's model zoo and ``hbn_engine.export`` writes a
``.hbn`` file. Those submodules are imported lazily so the runtime never imports torch.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

# Development hook: a CMake build tree holding _core*.so (cmake -S . -B build/x
# -DHBN_BUILD_PYTHON=ON) can stand in for an installed extension, so several builds of one
# source tree can be tested side by side with PYTHONPATH=<repo>.
if os.environ.get("HBN_DEV_BUILD_DIR"):
    __path__.append(os.environ["HBN_DEV_BUILD_DIR"])  # noqa: F821 (module __path__)

from hbn_engine.dispatch import (
    active_isa,
    best_isa,
    cpu_features,
    get_num_threads,
    isa_paths,
    isa_supported,
    kernel_tables,
    reset_isa,
    set_isa,
    set_num_threads,
    supported_isas,
)

__version__ = "0.1.0"

__all__ = [
    "active_isa",
    "best_isa",
    "cpu_features",
    "get_num_threads",
    "isa_paths",
    "isa_supported",
    "kernel_tables",
    "reset_isa",
    "set_isa",
    "set_num_threads",
    "supported_isas",
    "__version__",
]

_LAZY_SUBMODULES = {"nn", "models", "flops", "partition", "exporter", "runtime", "format", "bench",
                    "datasets", "demo", "scoring", "frontend"}
_LAZY_ATTRS: dict[str, tuple[str, str]] = {
    # name -> (module, attribute); filled in by the runtime and exporter modules.
    "load": ("hbn_engine.runtime", "load"),
    "Model": ("hbn_engine.runtime", "Model"),
    "export": ("hbn_engine.exporter", "export"),
    "FormatError": ("hbn_engine.format", "FormatError"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRS:
        module, attr = _LAZY_ATTRS[name]
        return getattr(importlib.import_module(module), attr)
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"hbn_engine.{name}")
    raise AttributeError(f"module 'hbn_engine' has no attribute {name!r}")
