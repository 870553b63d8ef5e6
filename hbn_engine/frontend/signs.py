"""Sign-like functions, recognised by what they compute on probe inputs (not by name).

A function ``f`` is sign-like when, elementwise, ``f(x) = -1`` for ``x < 0`` and ``+1`` for
``x > 0`` (to within ``SIGN_TOL``: straight-through tricks such as ``s.detach() - p.detach() + p``
leave an ulp behind) and every exact zero maps to one value ``zero`` in {-1, 0, +1}. ``zero``
decides how the engine can reproduce it: +1 is the engine's own rule, -1 is a threshold one
float step higher, 0 (torch.sign) is exact only where the input is never exactly 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

__all__ = ["SignInfo", "probe_sign", "SIGN_TOL"]

SIGN_TOL = 1e-6


@dataclass(frozen=True)
class SignInfo:
    """``zero``: the value at x == 0 (None when +0.0 and -0.0 differ); ``what``: how it was
    recognised (for messages); ``deviation``: max |f(x) - sign(x)| seen away from 0."""

    zero: Optional[int]
    what: str
    deviation: float = 0.0


def _probe_inputs(like: torch.Tensor) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(12345)
    shape = like.shape
    n = like.numel()
    # magnitudes from 1e-6 to 1e3 (wider ranges overflow polynomial STE approximations that
    # are still exact signs on any realistic input), both signs, exact +0.0 and -0.0.
    mag = torch.pow(10.0, torch.rand(n, generator=g) * 9 - 6)
    sgn = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    p = (mag * sgn)
    zeros = torch.randperm(n, generator=g)[: max(2, n // 8)]
    p[zeros[0::2]] = 0.0
    p[zeros[1::2]] = -0.0
    real = like.detach().to(torch.float32).flatten().clone()
    real[zeros[0::2]] = 0.0
    real[zeros[1::2]] = -0.0
    small = (torch.rand(n, generator=g) - 0.5) * 2e-3
    return [p.reshape(shape), real.reshape(shape), small.reshape(shape)]


def probe_sign(fn: Callable[[torch.Tensor], object], like: torch.Tensor,
               what: str) -> Optional[SignInfo]:
    """SignInfo if ``fn`` computes an elementwise sign on tensors shaped like ``like``, else
    None (including when it raises, returns something else or changes the shape)."""
    if not isinstance(like, torch.Tensor) or not like.is_floating_point() or like.numel() < 2:
        return None
    dev = 0.0
    zeros: set[Optional[int]] = set()
    try:
        with torch.no_grad():
            for p in _probe_inputs(like):
                out = fn(p.clone())
                if not isinstance(out, torch.Tensor) or out.shape != p.shape \
                        or not out.is_floating_point():
                    return None
                out = out.detach().to(torch.float64)
                if not torch.isfinite(out).all():
                    return None
                nz = p != 0
                ref = torch.where(p > 0, 1.0, -1.0).to(torch.float64)
                d = float((out[nz] - ref[nz]).abs().max()) if nz.any() else 0.0
                if d > SIGN_TOL:
                    return None
                dev = max(dev, d)
                for neg_zero in (False, True):
                    at = (p == 0) & (torch.signbit(p) == neg_zero)
                    if not at.any():
                        continue
                    vals = out[at]
                    r = torch.round(vals)
                    if (vals - r).abs().max() > SIGN_TOL or r.min() != r.max() \
                            or float(r[0]) not in (-1.0, 0.0, 1.0):
                        return None
                    zeros.add(int(r[0]))
    except Exception:  # noqa: BLE001 - anything a probe raises means "not a sign"
        return None
    if not zeros:
        return None
    zero = zeros.pop() if len(zeros) == 1 else None
    return SignInfo(zero, what, dev)
