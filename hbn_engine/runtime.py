"""Run a .hbn model: ``hbn_engine.load(path).run(x)`` (numpy only, no torch).

The native executor (csrc/runtime) validates the whole file at load, repacks the weights for
the kernels once, and plans its activation buffers once per batch size; ``run`` releases the GIL
while it computes.
"""
from __future__ import annotations

import json
import os
from typing import Any, Union

import numpy as np

from hbn_engine import _core
from hbn_engine.format import FormatError

__all__ = ["load", "Model", "Profile", "FormatError"]


class Profile(list):
    """``Model.profile``'s result: a list of per-step dicts plus ``total``, the median seconds
    of whole passes."""

    total: float = 0.0


class Model:
    """A loaded .hbn model.

    ``run(x)`` takes float32 NCHW numpy input ``[N, C, H, W]`` (any N >= 1, any strides) and
    returns float32 numpy: ``[N, classes]`` after a flatten/linear head, else NCHW.
    """

    def __init__(self, executor: Any, source: str = "<bytes>") -> None:
        self._ex = executor
        self.source = source
        try:
            meta = json.loads(executor.metadata_json.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise FormatError(f"{source}: metadata is not valid UTF-8 JSON: {e}") from None
        if not isinstance(meta, dict):
            raise FormatError(f"{source}: metadata must be a JSON object")
        self.metadata: dict[str, Any] = meta

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input image."""
        return tuple(self._ex.input_shape)

    @property
    def layers(self) -> list[tuple[str, str]]:
        """(name, kind) per op in execution order; kind is fprec / wbin / fbin for
        convolutions and linear layers, else the op type (max_pool, add, concat, ...)."""
        return [tuple(x) for x in self._ex.layers]

    @property
    def param_bytes(self) -> int:
        """Parameter memory as stored (binary weights at 1 bit each, plus scales/biases)."""
        return int(self._ex.param_bytes)

    @property
    def format_version(self) -> int:
        return int(self._ex.format_version)

    @property
    def num_threads(self) -> int:
        """Threads of this model's own pool (default 1)."""
        return int(self._ex.num_threads)

    @num_threads.setter
    def num_threads(self, n: int) -> None:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 1 <= n <= _core.MAX_THREADS:
            raise ValueError(f"num_threads must be an int from 1 to {_core.MAX_THREADS}, got {n!r}")
        self._ex.num_threads = int(n)  # a failed thread start raises and keeps the old count

    @property
    def bit_passing_layers(self) -> list[str]:
        """Layers that hand packed sign bits straight to the next binary layer."""
        return list(self._ex.bit_values)

    @property
    def input_is_bits(self) -> bool:
        """True when the input's only path forward is binary: ``run`` then packs the NCHW
        input straight to sign bits (no NHWC float copy)."""
        return bool(self._ex.input_bits)

    @property
    def packed_copy_layers(self) -> dict[str, int]:
        """Layers whose float output is also written as packed bits for binary consumers in
        the same pass (e.g. a residual add feeding the next block), with the number of
        distinct copies (one per consumer threshold set)."""
        return {name: int(k) for name, k in self._ex.packed_copies}

    def output_shape(self, batch: int = 1) -> tuple[int, ...]:
        return tuple(self._ex.output_shape(int(batch)))

    def profile(self, x: np.ndarray, repeats: int = 10) -> Profile:
        """Per-op timing of ``repeats`` forward passes on ``x`` (validated like ``run``).

        Each op is timed in the native executor with a steady clock (no Python between ops).
        Returns one dict per step, in execution order: ``{"name", "op", "kind", "shape",
        "seconds"}`` with the median seconds over the repeats. ``kind`` is fprec / wbin / fbin
        for convolutions and linear layers, else "other". The graph's ops (names equal to
        ``layers``) are framed by the input conversion (name "<input>", op "layout": NCHW to
        the engine's NHWC, or "pack" when ``input_is_bits``) and the output conversion ("<output>"). The result's ``total`` is
        the median of whole passes; within each pass the steps are consecutive intervals of
        it, so the step medians add up to about the total.
        """
        if not isinstance(repeats, (int, np.integer)) or isinstance(repeats, bool) or repeats < 1:
            raise ValueError(f"repeats must be a positive int, got {repeats!r}")
        x = self._check_input(x)
        ops, times, totals, _ = self._ex.profile(x, int(repeats))
        med = np.median(times, axis=0)
        c, h, w = self.input_shape
        n = x.shape[0]
        # a binary first layer's input is packed straight from NCHW ("pack"), else transposed
        out = Profile([{"name": "<input>", "op": "pack" if self.input_is_bits else "layout",
                        "kind": "other", "shape": (n, h, w, c), "seconds": float(med[0])}])
        for k, (name, op, kind, shape) in enumerate(ops):
            out.append({"name": name, "op": op, "kind": kind, "shape": tuple(shape),
                        "seconds": float(med[k + 1])})
        out.append({"name": "<output>", "op": "layout", "kind": "other",
                    "shape": self.output_shape(n), "seconds": float(med[-1])})
        out.total = float(np.median(totals))
        return out

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype != np.float32:
            raise TypeError(f"input dtype must be float32, got {x.dtype}")
        c, h, w = self.input_shape
        if x.ndim != 4:
            raise ValueError(f"input must be 4-D NCHW [N, {c}, {h}, {w}], got {x.ndim}-D "
                             f"shape {x.shape}")
        if tuple(x.shape[1:]) != (c, h, w):
            raise ValueError(f"input shape {x.shape} does not match the model's "
                             f"[N, {c}, {h}, {w}]")
        if x.shape[0] < 1:
            raise ValueError("input batch is empty")
        if any(s % x.itemsize for s in x.strides):
            x = np.ascontiguousarray(x)
        # NaN / infinity: ValueError from the native side, which scans the input without a
        # temporary (numpy's isfinite(x).all() cost 10 us of a 120 us single-layer run).
        return x

    def run(self, x: np.ndarray) -> np.ndarray:
        """Forward pass. Raises TypeError for a non-array or non-float32 input and ValueError
        for a wrong rank/shape, an empty batch or non-finite values."""
        return self._ex.run(self._check_input(x))

    __call__ = run

    def __repr__(self) -> str:
        kinds: dict[str, int] = {}
        for _, k in self.layers:
            kinds[k] = kinds.get(k, 0) + 1
        return (f"Model({self.metadata.get('model_name')!r}, variant="
                f"{self.metadata.get('variant')!r}, input={self.input_shape}, "
                f"param_bytes={self.param_bytes}, ops={kinds})")


def load(path: Union[str, os.PathLike, bytes, bytearray], *, bit_passing: bool = True) -> Model:
    """Load a .hbn model from a file path (or the file's bytes). Raises FormatError (a
    ValueError) naming what is wrong with a malformed or unsupported file, OSError if the file
    cannot be read.

    ``bit_passing=False`` keeps every activation in float (binary layers pack their own input):
    the reference path for the exact bit-domain fusions, which are on by default."""
    bit_passing = bool(bit_passing)
    try:
        if isinstance(path, (bytes, bytearray, memoryview)):
            return Model(_core.Executor(bytes(path), bit_passing))
        p = os.fspath(path)
        if not os.path.isfile(p):
            raise FileNotFoundError(f"no such model file: {p}")
        try:
            ex = _core.Executor.from_file(p, bit_passing)
        except RuntimeError as e:
            raise OSError(str(e)) from None
        return Model(ex, p)
    except _core.FormatError as e:
        raise FormatError(str(e)) from None
