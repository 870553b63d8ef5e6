"""What the front end decided per layer: the kernel kind each conv / linear became and why."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["LayerReport", "ExportReport"]

KIND_NAMES = {"fbin": "FullBin", "wbin": "WeightBin", "fprec": "float"}


@dataclass
class LayerReport:
    """One conv / linear layer: ``kind`` is fbin / wbin / fprec, ``reason`` says why."""

    name: str
    kind: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "kind": self.kind, "reason": self.reason}


@dataclass
class ExportReport:
    """Returned by :func:`hbn_engine.export`: per-layer kernel kinds with reasons, notes on
    recognised patterns (sign-like ops, folded parameters), and whether the front end
    rewrote the traced graph (then the report is also stored in the file's metadata under
    ``"frontend"``)."""

    layers: list[LayerReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed: bool = False

    def kinds(self) -> dict[str, str]:
        return {lr.name: lr.kind for lr in self.layers}

    def to_json(self) -> dict[str, Any]:
        return {"layers": [lr.to_json() for lr in self.layers], "notes": list(self.notes)}

    @staticmethod
    def format_rows(rows: list[dict[str, str]]) -> list[str]:
        width = max([len(r["name"]) for r in rows] + [5])
        out = [f"{'layer':<{width}}  {'kernel':<9}  why"]
        for r in rows:
            out.append(f"{r['name']:<{width}}  {KIND_NAMES.get(r['kind'], r['kind']):<9}  "
                       f"{r['reason']}")
        return out

    def __str__(self) -> str:
        lines = self.format_rows([lr.to_json() for lr in self.layers])
        if self.notes:
            lines.append("notes:")
            lines.extend(f"  - {n}" for n in self.notes)
        return "\n".join(lines)
