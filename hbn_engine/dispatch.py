"""CPU feature detection and kernel-path selection (see csrc/hbn/isa.h).

The native core picks the best compiled path the CPU supports. ``HBN_FORCE_ISA`` (read once,
at import) or :func:`set_isa` force a lower one, which is how the tests cover every path.
"""
from __future__ import annotations

import numpy as np

from hbn_engine import _core

_ALL_ISAS = ("scalar", "avx2", "avx512", "neon")

_env_error = _core.isa_env_error()
if _env_error:
    raise ImportError(f"hbn_engine: {_env_error}")


def best_isa() -> str:
    """The fastest kernel path this CPU and build support."""
    return _core.best_isa()


def active_isa() -> str:
    """The kernel path in use now (after any HBN_FORCE_ISA or set_isa override)."""
    return _core.active_isa()


def isa_supported(name: str) -> bool:
    """Whether the named path ("scalar", "avx2", "avx512", "neon") can run here."""
    return _core.isa_supported(name)


def supported_isas() -> list[str]:
    """Every path that can run on this machine, slowest first."""
    return [n for n in _ALL_ISAS if _core.isa_supported(n)]


def set_isa(name: str) -> None:
    """Force the kernels onto one path; raises ValueError if it cannot run here."""
    _core.set_isa(name)


def reset_isa() -> None:
    """Drop a set_isa override (back to HBN_FORCE_ISA or the best path)."""
    _core.reset_isa()


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
