"""Run a .hbn model: ``hbn_engine.load(path).run(x)`` (numpy only, no torch).

The native executor (csrc/runtime) validates the whole file at load, repacks the weights for
the kernels once, and plans its activation buffers once per batch size; ``run`` releases the GIL
while it computes.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import threading
import weakref
from collections import OrderedDict
from typing import Any, Mapping, Optional, Union

import numpy as np

from hbn_engine import _core
from hbn_engine.format import FormatError, ResourceLimitError

__all__ = ["load", "default_limits", "Model", "Profile", "FormatError", "ResourceLimitError"]


class Profile(list):
    """``Model.profile``'s result: a list of per-step dicts plus ``total``, the median seconds
    of whole passes."""

    total: float = 0.0


class Model:
    """A loaded .hbn model.

    ``run(x)`` takes float32 NCHW numpy input ``[N, C, H, W]`` (any N >= 1, any strides) and
    returns float32 numpy: ``[N, classes]`` after a flatten/linear head, else NCHW. A model
    exported with ``input_norm`` (``takes_pixels``) also takes uint8 images, NCHW or NHWC.
    """

    def __init__(self, executor: Any, source: str = "<bytes>") -> None:
        self._ex = executor
        self.source = source
        try:
            meta = json.loads(executor.metadata_json.decode("utf-8"))
        except RecursionError:
            raise FormatError(f"{source}: metadata JSON is nested too deeply") from None
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
    def in_place_bytes(self) -> int:
        """Bytes run() reads in place from the loaded file or buffer (format version 2: weights in
        their kernel layouts and those convs' scale / bias / threshold vectors; for a mapped file,
        page-cache pages shared with every process mapping it); 0 when every weight was repacked
        into private memory."""
        return int(self._ex.in_place_bytes)

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

    @property
    def fused_layers(self) -> dict[str, str]:
        """Ops computed inside another op's pass (the executor's fuse plan): a residual add
        done in the output stage of the conv before it, a max-pool run on a float conv's
        output rows as they finish. Maps the absorbed op to the op computing it; its own
        profile step then reads 0. Empty when loaded with ``HBN_NO_FUSE=1`` in the
        environment (the unfused reference; results are bit-identical either way)."""
        return {name: by for name, by in self._ex.fused}

    def output_shape(self, batch: int = 1) -> tuple[int, ...]:
        return tuple(self._ex.output_shape(int(batch)))

    def profile(self, x: np.ndarray, repeats: int = 10) -> Profile:
        """Per-op timing of ``repeats`` forward passes on ``x`` (validated like ``run``).

        Each op is timed in the native executor with a steady clock (no Python between ops).
        Returns one dict per step, in execution order: ``{"name", "op", "kind", "shape",
        "seconds"}`` with the median seconds over the repeats. ``kind`` is fprec / wbin / fbin
        for convolutions and linear layers, else "other". The graph's ops (names equal to
        ``layers``) are framed by the input conversion (name "<input>", op "layout": NCHW to
        the engine's NHWC, or "pack" when ``input_is_bits``) and the output conversion ("<output>").
        An op computed inside another op's step (``fused_layers``) reads 0 seconds. The result's ``total`` is
        the median of whole passes; within each pass the steps are consecutive intervals of
        it, so the step medians add up to about the total.
        """
        if not isinstance(repeats, (int, np.integer)) or isinstance(repeats, bool) or repeats < 1:
            raise ValueError(f"repeats must be a positive int, got {repeats!r}")
        if isinstance(x, np.ndarray) and x.dtype == np.uint8:  # timed as float pixels
            x = np.ascontiguousarray(self._pixels_nchw(x, None), dtype=np.float32)
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

    @property
    def takes_pixels(self) -> bool:
        """True for a model exported with ``input_norm``: its first op normalises pixels, so
        ``run`` accepts uint8 images (and float32 pixel values 0..255)."""
        return bool(self._ex.takes_pixels)

    @property
    def input_norm(self) -> Optional[tuple[list[float], list[float]]]:
        """(mean, std) per channel in pixel units when the model takes pixels, else None."""
        norm = self.metadata.get("input_norm")
        if not self.takes_pixels or not isinstance(norm, dict):
            return None
        return list(norm.get("mean", [])), list(norm.get("std", []))

    def _pixels_nchw(self, x: np.ndarray, layout: Optional[str]) -> np.ndarray:
        """A uint8 batch as an NCHW-indexed view (NHWC buffers are transposed views, no copy)."""
        c, h, w = self.input_shape
        if not self.takes_pixels:
            raise TypeError("input dtype uint8 needs a model that takes images: this one takes "
                            "float32 (export it with input_norm=(mean, std) to run uint8 pixels)")
        if x.ndim != 4:
            raise ValueError(f"uint8 input must be 4-D NCHW [N, {c}, {h}, {w}] or NHWC "
                             f"[N, {h}, {w}, {c}], got {x.ndim}-D shape {x.shape}")
        nchw, nhwc = tuple(x.shape[1:]) == (c, h, w), tuple(x.shape[1:]) == (h, w, c)
        if layout is None:
            if nchw and nhwc:
                raise ValueError("uint8 input shape fits both NCHW and NHWC: pass layout=")
            layout = "NCHW" if nchw else "NHWC" if nhwc else None
        if layout not in ("NCHW", "NHWC") or (layout == "NCHW" and not nchw) \
                or (layout == "NHWC" and not nhwc):
            raise ValueError(f"uint8 input shape {x.shape} is neither NCHW [N, {c}, {h}, {w}] "
                             f"nor NHWC [N, {h}, {w}, {c}]" + (f" (layout={layout!r})"
                                                               if layout else ""))
        if x.shape[0] < 1:
            raise ValueError("input batch is empty")
        return x if layout == "NCHW" else x.transpose(0, 3, 1, 2)

    def _check_input(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"input must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype != np.float32:
            hint = " or uint8 (images)" if self.takes_pixels else ""
            raise TypeError(f"input dtype must be float32{hint}, got {x.dtype}")
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

    def run(self, x: np.ndarray, layout: Optional[str] = None) -> np.ndarray:
        """Forward pass. Raises TypeError for a non-array or non-float32 input and ValueError
        for a wrong rank/shape, an empty batch or non-finite values.

        A model that ``takes_pixels`` also accepts uint8 images, NCHW ``[N, C, H, W]`` or NHWC
        ``[N, H, W, C]`` (as decoders produce; ``layout="NCHW"|"NHWC"`` when the shape fits
        both): converted to float inside the engine, the same result as the pixels as float32."""
        if isinstance(x, np.ndarray) and x.dtype == np.uint8:
            return self._ex.run_u8(self._pixels_nchw(x, layout))
        if layout is not None:
            raise ValueError("layout= applies to uint8 images; float32 input is NCHW")
        return self._ex.run(self._check_input(x))

    __call__ = run

    def __repr__(self) -> str:
        kinds: dict[str, int] = {}
        for _, k in self.layers:
            kinds[k] = kinds.get(k, 0) + 1
        return (f"Model({self.metadata.get('model_name')!r}, variant="
                f"{self.metadata.get('variant')!r}, input={self.input_shape}, "
                f"param_bytes={self.param_bytes}, ops={kinds})")

    # Pickling (see docs/scoring.md): a Model travels as its file bytes, their sha256 and its
    # settings, so it reaches processes that cannot see the file (Dask workers on other
    # machines); the receiving process loads each (content, bit passing) pair once.
    def __reduce_ex__(self, protocol: Any) -> tuple:
        data, digest = _pickle_payload(self)
        # Protocol 5 lets Dask / multiprocessing ship the bytes out of band (no pickle copy).
        buf = pickle.PickleBuffer(data) if isinstance(protocol, int) and protocol >= 5 else data
        return (_unpickle_model, (buf, digest, _bit_passing_of(self), self.num_threads,
                                  self.__dict__.get("_pickle_limits")))

    def __dask_tokenize__(self) -> tuple:
        # Same file content and plan -> same Dask key, without Dask hashing the pickled bytes.
        return ("hbn_engine.Model", _pickle_payload(self)[1], _bit_passing_of(self))


def default_limits() -> dict[str, int]:
    """The resource limits ``load`` applies unless told otherwise (see ``load``)."""
    d = _core.Limits()
    return {k: int(getattr(d, k)) for k in _LIMIT_KEYS}


_LIMIT_KEYS = ("max_arena_bytes", "max_sample_arena_bytes", "max_macs_per_sample",
               "max_pool_reads_per_sample", "max_kept_arena_bytes")


def _native_limits(limits: Optional[Mapping[str, int]]) -> Any:
    out = _core.Limits()
    if limits is None:
        return out
    if not isinstance(limits, Mapping):
        raise TypeError(f"limits must be a mapping of limit name to int, got {type(limits).__name__}")
    for k, v in limits.items():
        if k not in _LIMIT_KEYS:
            raise ValueError(f"unknown limit {k!r}; known: {', '.join(_LIMIT_KEYS)}")
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 0 < v < 2**64:
            raise ValueError(f"limit {k} must be a positive int below 2**64, got {v!r}")
        setattr(out, k, int(v))
    return out


def load(path: Union[str, os.PathLike, bytes, bytearray, memoryview], *, bit_passing: bool = True,
         limits: Optional[Mapping[str, int]] = None, copy: bool = False) -> Model:
    """Load a .hbn model from a file path (memory-mapped, read in place) or the file's bytes.
    Raises FormatError (a ValueError) naming what is wrong with a malformed or unsupported file
    (a directory, FIFO or device path included), OSError if the file cannot be opened.

    A mapped model's weights in kernel layouts (format version 2) are read from the mapping for
    the model's life, shared with every other model and process mapping the same file. So the
    file must not be rewritten in place while loaded (replace it by rename, as ``export`` does;
    a truncated mapping is SIGBUS). ``copy=True`` reads the file into private memory instead
    (as loading its bytes does): no sharing, and nothing done to the file afterwards matters.

    ``bit_passing=False`` keeps every activation in float (binary layers pack their own input):
    the reference path for the exact bit-domain fusions, which are on by default.

    ``limits`` raises (or lowers) the resource limits, e.g. ``{"max_macs_per_sample": 2**40}``
    (names and defaults: ``default_limits()``). A model or batch beyond them is refused with
    ResourceLimitError (a FormatError) before anything is allocated or computed."""
    if not isinstance(bit_passing, (bool, np.bool_)):
        raise TypeError(f"bit_passing must be True or False, got {bit_passing!r}")
    bit_passing = bool(bit_passing)
    native_limits = _native_limits(limits)
    # The native loader raises hbn_engine.format.FormatError / ResourceLimitError itself.
    if not isinstance(copy, (bool, np.bool_)):
        raise TypeError(f"copy must be True or False, got {copy!r}")
    if isinstance(path, (bytes, bytearray, memoryview)):
        model = Model(_core.Executor(bytes(path), bit_passing, native_limits))
    elif copy:
        p = os.fspath(path)
        if not os.path.isfile(p):  # the mapped path names directories, FIFOs, devices
            model = Model(_core.Executor.from_file(p, bit_passing, native_limits), p)
        else:
            with open(p, "rb") as f:
                model = Model(_core.Executor(f.read(), bit_passing, native_limits), p)
    else:
        p = os.fspath(path)
        model = Model(_core.Executor.from_file(p, bit_passing, native_limits), p)
    # Remembered so a pickled model loads the same way on the receiving side.
    model.__dict__["_pickle_bit_passing"] = bit_passing
    model.__dict__["_pickle_limits"] = dict(limits) if limits is not None else None
    return model


# --- pickling support -------------------------------------------------------------------------
# A process keeps every unpickled model alive while anything references it (weak map, so memory
# follows use) plus the PICKLE_CACHE_SIZE most recently received ones (strong, so a model sent
# with every task of a multiprocessing pool is not reloaded per task). Keyed by (sha256 of the
# file, bit passing): the same content loads once whatever path or sender it came from.
PICKLE_CACHE_SIZE = 2
_cache_lock = threading.Lock()
_live_models: "weakref.WeakValueDictionary[tuple[str, bool], Model]" = weakref.WeakValueDictionary()
_recent_models: "OrderedDict[tuple[str, bool], Model]" = OrderedDict()


def _bit_passing_of(model: Model) -> bool:
    """The ``bit_passing`` a model was loaded with. Known for unpickled models; for loaded ones
    inferred from the plan: every bit-domain fusion is visible as a bit value, a packed input or
    a packed copy, and a plan with none of them is the same with bit passing on or off."""
    known = model.__dict__.get("_pickle_bit_passing")
    if known is not None:
        return bool(known)
    return bool(model.bit_passing_layers or model.input_is_bits or model.packed_copy_layers)


def _pickle_payload(model: Model) -> tuple[bytes, str]:
    """(file bytes, sha256 hex) of a model, read from its file on first use and kept on the
    model (memory: one copy of the file, only for models that get pickled)."""
    memo = model.__dict__.get("_pickle_payload")
    if memo is not None:
        return memo
    path = model.source
    if not os.path.isfile(path):
        raise TypeError(f"cannot pickle Model from {path}: its file is not readable here (models "
                        "loaded from bytes keep no copy of them); load it from a file to pickle it")
    with open(path, "rb") as f:
        data = f.read()
    # The engine holds no copy of the file for Python, so pickling re-reads it: refuse a file
    # that visibly changed since it was loaded rather than ship another model to the workers.
    from hbn_engine.format import read_hbn

    try:
        on_disk = read_hbn(data)
        same = on_disk.metadata == model.metadata and on_disk.param_bytes == model.param_bytes
    except FormatError:
        same = False
    if not same:
        raise ValueError(f"cannot pickle Model from {path}: the file changed since it was loaded; "
                         "load it again")
    memo = (data, hashlib.sha256(data).hexdigest())
    model.__dict__["_pickle_payload"] = memo
    return memo


def _unpickle_model(data: Any, digest: str, bit_passing: bool, num_threads: int,
                    limits: Optional[Mapping[str, int]] = None) -> Model:
    key = (str(digest), bool(bit_passing))
    with _cache_lock:
        model = _live_models.get(key)
    if model is None:
        data = data if isinstance(data, bytes) else bytes(memoryview(data))
        if hashlib.sha256(data).hexdigest() != key[0]:
            raise pickle.UnpicklingError("pickled hbn model bytes do not match their sha256")
        loaded = load(data, bit_passing=key[1], limits=limits)
        loaded.__dict__["_pickle_payload"] = (data, key[0])
        loaded.__dict__["_pickle_bit_passing"] = key[1]
        with _cache_lock:
            # Another thread may have loaded the same model meanwhile: keep the first one.
            model = _live_models.setdefault(key, loaded)
    with _cache_lock:
        _recent_models[key] = model
        _recent_models.move_to_end(key)
        while len(_recent_models) > PICKLE_CACHE_SIZE:
            _recent_models.popitem(last=False)
    if model.num_threads != num_threads:
        model.num_threads = num_threads
    return model
