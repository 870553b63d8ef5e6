"""CPU feature detection and kernel dispatch (see csrc/hbn/isa.h and csrc/hbn/kernel_table.h).

Every kernel family (bconv, bitpack, sgemm, wbconv_lut, ops, transpose, the peak loops) has one
table of rows ``{required features, name, kernel}``; dispatch takes the best row whose features
are all active. An ISA path ("scalar" or a feature name such as "avx2") names a set of active
features: ``HBN_FORCE_ISA`` (read once, at import) or :func:`set_isa` force one, which is how
the tests cover every path. The list of paths and the tables come from the native core, so
nothing here repeats them.
"""
from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

# Run from a source tree without a build, `from hbn_engine import _core` fails with Python's
# "partially initialized module ... circular import" message, which hides the real problem.
if importlib.util.find_spec("hbn_engine._core") is None:
    raise ImportError(
        "hbn_engine: the native extension hbn_engine._core is not built. Install the package "
        "with `pip install .` (it compiles the extension), or build a development tree with "
        "`.ci/dev-build NAME` and run with HBN_DEV_BUILD_DIR=$PWD/build/NAME PYTHONPATH=$PWD."
    )

from hbn_engine import _core  # noqa: E402 (after the check above)

_env_error = _core.isa_env_error()
if _env_error:
    raise ImportError(f"hbn_engine: {_env_error}")


def isa_paths() -> list[str]:
    """Every ISA path name this engine knows, slowest first (supported here or not)."""
    return list(_core.isa_paths())


def best_isa() -> str:
    """The fastest kernel path this CPU and build support."""
    return _core.best_isa()


def active_isa() -> str:
    """The kernel path in use now (after any HBN_FORCE_ISA or set_isa override)."""
    return _core.active_isa()


def isa_supported(name: str) -> bool:
    """Whether the named path (one of :func:`isa_paths`) can run here."""
    return _core.isa_supported(name)


def supported_isas() -> list[str]:
    """Every path that can run on this machine, slowest first."""
    return [n for n in _core.isa_paths() if _core.isa_supported(n)]


def set_isa(name: str) -> None:
    """Force the kernels onto one path (its feature and those it implies); raises ValueError if
    it cannot run here."""
    _core.set_isa(name)


def reset_isa() -> None:
    """Drop a set_isa override (back to HBN_FORCE_ISA or the best path)."""
    _core.reset_isa()


def kernel_tables() -> dict[str, list[dict[str, Any]]]:
    """Each kernel family's table, best row first: ``name``, ``requires`` (feature names),
    ``supported`` (this CPU and build) and ``selected`` (what dispatch takes now)."""
    return dict(_core.kernel_tables())


def cpu_features() -> dict[str, bool]:
    """CPU feature flags as detected, plus the CPU model name under "model"."""
    d = dict(_core.cpu_features())
    d["model"] = _core.cpu_model_name()
    return d


def set_num_threads(n: int) -> None:
    """Threads used by the kernel-level API (each loaded Model has its own setting), from 1 to
    ``_core.MAX_THREADS`` (1024)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 1 <= n <= _core.MAX_THREADS:
        raise ValueError(f"num_threads must be an int from 1 to {_core.MAX_THREADS}, got {n!r}")
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    return _core.get_num_threads()
