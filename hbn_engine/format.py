"""The ``.hbn`` file format: writer and a pure-Python reader/inspector (see docs/format.md).

Everything is little-endian. A file is a 128-byte header followed by three 64-byte-aligned
sections: a JSON metadata blob, the graph (ops with typed attributes and tensor references) and
a tensor table whose entries point into the data section (every tensor 64-byte aligned, so the
data can be memory-mapped). Nothing in the file is ever executed: no pickle, no code.

The C++ loader (csrc/runtime/format.cc) is the authority used by ``hbn_engine.load``; the reader
here mirrors its structural checks so tools and tests can inspect a file without loading it into
an executor. Op types, tensor slots and attribute keys come from the native op registry.
"""
from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import numpy as np

from hbn_engine import kernel_layout as kl

MAGIC = b"HBNMODEL"
# 2: a tensor record may name the kernel layout its bytes are in (hbn_engine.kernel_layout);
# version 1 files (every tensor canonical) are still read and loaded.
FORMAT_VERSION = 2
HEADER_SIZE = 128
ALIGN = 64
GRAPH_HEADER_SIZE = 32
TENSOR_RECORD_SIZE = 64
MAX_NAME_LEN = 256
MAX_DIMS = 4
ABSENT = 0xFFFFFFFF


from hbn_engine import _core  # noqa: E402  (the native registry and exception classes)

# One class each for the Python reader and the native loader (which raises them directly), so a
# caller catches the same FormatError whichever side found the problem.
FormatError = _core.FormatError
FormatError.__doc__ = "A .hbn file is malformed, truncated, hostile or from a newer format version (a ValueError)."
ResourceLimitError = _core.ResourceLimitError
ResourceLimitError.__doc__ = ("A model (or a batch) needs more memory or work than the loader's limits allow "
                              "(hbn_engine.load(..., limits=...) raises them); a FormatError.")


# dtype code -> numpy dtype
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),
    2: np.dtype("<u8"),  # bit-packed words (hbn/types.h convention)
    3: np.dtype("u1"),
    4: np.dtype("i1"),
}
DTYPE_CODES = {v: k for k, v in DTYPES.items()}

# The op registry is defined once, in C++ (csrc/runtime/op_list.h and each op's unit under
# csrc/runtime/ops/), and read from the native core here. The package cannot be imported
# without _core anyway (hbn_engine.dispatch needs it), so a Python copy would only be a second
# place to get wrong.
ATTR_INT, ATTR_FLOAT = 1, 2


@dataclass(frozen=True)
class SlotSpec:
    name: str
    dtype: int  # DTYPES code
    required: bool
    shape: str  # for the docs, e.g. "[OC,IC,KH,KW]"


@dataclass(frozen=True)
class AttrSpec:
    name: str
    required: bool
    lo: int  # i64 attributes: accepted range and default when absent
    hi: int
    default: int


@dataclass(frozen=True)
class OpSchema:
    code: int
    name: str
    kind: str  # Model.layers' kind: fprec / wbin / fbin for convolutions, else the name
    min_inputs: int
    max_inputs: int  # -1: any number
    slots: tuple[SlotSpec, ...]
    attrs: tuple[AttrSpec, ...]
    doc: str


def _load_registry() -> tuple[dict[str, OpSchema], dict[str, tuple[int, int]]]:
    schemas = {}
    for d in _core.op_schemas():
        schemas[d["name"]] = OpSchema(
            d["code"], d["name"], d["kind"], d["min_inputs"], d["max_inputs"],
            tuple(SlotSpec(*t) for t in d["slots"]), tuple(AttrSpec(*a) for a in d["attrs"]),
            d["doc"])
    attrs = {name: (key, typ) for key, name, typ in _core.attr_infos()}
    return schemas, attrs


# op name -> schema; attribute name -> (key, type) with type 1 = int64, 2 = float64.
SCHEMAS, ATTRS = _load_registry()
# op name -> (code, tensor slot names). Slot order is fixed by the format.
OP_TYPES: dict[str, tuple[int, tuple[str, ...]]] = {
    n: (s.code, tuple(t.name for t in s.slots)) for n, s in SCHEMAS.items()}
OP_NAMES = {code: name for name, (code, _) in OP_TYPES.items()}
ATTR_NAMES = {key: (name, typ) for name, (key, typ) in ATTRS.items()}
# Layer kind shown by Model.layers for the conv op types.
CONV_KINDS = {n: s.kind for n, s in SCHEMAS.items() if s.kind != n}


def op_kind(op_type: str) -> str:
    """Model.layers' kind of an op type: fprec / wbin / fbin for convolutions, else the type."""
    return SCHEMAS[op_type].kind


def schema_markdown() -> str:
    """The attribute-key and op-type tables of docs/format.md, generated from the registry
    (tests/test_registry.py checks the docs hold exactly this text)."""
    dt = {1: "f32", 2: "bits", 3: "u8", 4: "i8"}
    lines = ["| key | name | type |", "|----:|------|------|"]
    for name, (key, typ) in sorted(ATTRS.items(), key=lambda kv: kv[1][0]):
        lines.append(f"| {key} | {name} | {'i64' if typ == ATTR_INT else 'f64'} |")
    lines += ["", "| code | op | inputs | tensor slots | attributes | semantics |",
              "|-----:|----|--------|--------------|------------|-----------|"]
    for s in sorted(SCHEMAS.values(), key=lambda s: s.code):
        ins = (str(s.min_inputs) if s.min_inputs == s.max_inputs
               else f">= {s.min_inputs}" if s.max_inputs < 0 else f"{s.min_inputs}..{s.max_inputs}")
        slots = ", ".join(f"{t.name} {dt[t.dtype]} `{t.shape}`{'' if t.required else '?'}"
                          for t in s.slots)
        attrs = []
        for a in s.attrs:
            if ATTRS[a.name][1] == ATTR_FLOAT:
                attrs.append(a.name)
            else:
                attrs.append(f"{a.name} {a.lo}..{a.hi}" + ("" if a.required else f" ={a.default}"))
        lines.append(f"| {s.code} | `{s.name}` | {ins} | {slots} | {', '.join(attrs)} | {s.doc} |")
    return "\n".join(lines)


_HEADER = struct.Struct("<8sII" + "Q" * 9 + "Q" * 5)  # 128 bytes
assert _HEADER.size == HEADER_SIZE
_GRAPH_HEADER = struct.Struct("<IIIII" + "I" * 3)
assert _GRAPH_HEADER.size == GRAPH_HEADER_SIZE
_TENSOR = struct.Struct("<II4qQQQ")
assert _TENSOR.size == TENSOR_RECORD_SIZE


@dataclass
class Op:
    """One graph node. Value ids: 0 is the graph input, op i produces value i + 1."""

    type: str
    name: str
    inputs: list[int]
    tensors: list[Optional[int]] = field(default_factory=list)
    attrs: dict[str, Union[int, float]] = field(default_factory=dict)


@dataclass
class HbnFile:
    version: int
    metadata: dict[str, Any]
    input_shape: tuple[int, int, int]
    output_value: int
    ops: list[Op]
    tensors: list[np.ndarray]  # canonical (kernel-layout weights are unpacked)
    layouts: list[int] = field(default_factory=list)  # per tensor: kernel layout id (0 = none)
    stored_bytes: list[int] = field(default_factory=list)  # per tensor: nbytes in the file

    @property
    def param_bytes(self) -> int:
        """Bytes of parameters as stored (kernel layouts included: what a loader maps)."""
        if self.stored_bytes:
            return int(sum(self.stored_bytes))
        return int(sum(t.nbytes for t in self.tensors))


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def _encode_graph(ops: list[Op], input_shape: tuple[int, int, int], output_value: int) -> bytes:
    parts = [_GRAPH_HEADER.pack(len(ops), output_value, *input_shape, 0, 0, 0)]
    for op in ops:
        if op.type not in OP_TYPES:
            raise ValueError(f"unknown op type {op.type!r}")
        code, slots = OP_TYPES[op.type]
        name = op.name.encode("utf-8")[:MAX_NAME_LEN]
        parts.append(struct.pack("<II", code, len(name)))
        parts.append(name + b"\0" * (-len(name) % 4))
        parts.append(struct.pack(f"<I{len(op.inputs)}I", len(op.inputs), *op.inputs))
        tens = list(op.tensors) + [None] * (len(slots) - len(op.tensors))
        if len(tens) != len(slots):
            raise ValueError(f"op {op.name}: {len(op.tensors)} tensors for {len(slots)} slots")
        parts.append(struct.pack(f"<I{len(tens)}I", len(tens),
                                 *[ABSENT if t is None else t for t in tens]))
        parts.append(struct.pack("<I", len(op.attrs)))
        for aname, value in op.attrs.items():
            key, typ = ATTRS[aname]
            if typ == ATTR_INT:
                parts.append(struct.pack("<IIq", key, typ, int(value)))
            else:
                parts.append(struct.pack("<IId", key, typ, float(value)))
    return b"".join(parts)


def write_hbn(path: str, ops: list[Op], tensors: list[np.ndarray], metadata: dict[str, Any],
              input_shape: tuple[int, int, int], output_value: int, *,
              version: int = FORMAT_VERSION, wbin_layout: str = "bits32") -> int:
    """Write a .hbn file; returns its size in bytes. ``version`` and ``wbin_layout``: see
    encode_hbn.

    Written to a temporary file beside ``path`` and renamed over it: a model loaded from the old
    file keeps its memory mapping of the old contents (its weights may be read in place for the
    model's life, and re-exporting in place would truncate the pages under it), and an
    interrupted export never leaves a half-written model."""
    data = encode_hbn(ops, tensors, metadata, input_shape, output_value, version=version,
                      wbin_layout=wbin_layout)
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return len(data)


def _umask() -> int:
    # mkstemp creates 0600 files; a written model gets the mode open() would have given it.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _kernel_layouts(ops: list[Op], arrays: list[np.ndarray], wbin_layout: str) -> dict[int, tuple[int, np.ndarray]]:
    """Binary conv weights to store in a kernel layout: tensor index -> (layout id, bytes).

    Only weights the loader will accept as they are (canonical uint64 [OC, KH, KW, words(IC)]
    with a valid in_channels, read by one op): anything else stays canonical, so the loader
    reports what is wrong with it."""
    if wbin_layout not in kl.WBIN_LAYOUTS:
        raise ValueError(f"wbin_layout must be one of {sorted(kl.WBIN_LAYOUTS)}, got {wbin_layout!r}")
    uses: dict[int, int] = {}
    for op in ops:
        for t in op.tensors:
            if t is not None:
                uses[t] = uses.get(t, 0) + 1
    out: dict[int, tuple[int, np.ndarray]] = {}
    for op in ops:
        if op.type not in ("conv_fbin", "conv_wbin", "conv_f32") or not op.tensors or op.tensors[0] is None:
            continue
        i = op.tensors[0]
        if not 0 <= i < len(arrays) or uses.get(i) != 1:
            continue
        if op.type == "conv_f32":
            a = arrays[i]
            if a.dtype == np.dtype("<f4") and a.ndim == 4 and a.size and np.isfinite(a).all():
                out[i] = (kl.F32_PANEL32, kl.pack_f32_panel32(a))
            continue
        a, ic = arrays[i], op.attrs.get("in_channels")
        if a.dtype != np.dtype("<u8") or a.ndim != 4 or not isinstance(ic, (int, np.integer)) \
                or not 1 <= ic <= 1 << 20 or (int(ic) + 63) // 64 != a.shape[3] or a.size == 0:
            continue
        if op.type == "conv_fbin":
            padded = bool(op.attrs.get("pad_h", 0) or op.attrs.get("pad_w", 0))
            out[i] = (kl.BCONV_PANEL32, kl.pack_bconv_panel32(a, int(ic), padded))
        else:
            lay = kl.WBIN_LAYOUTS[wbin_layout]
            out[i] = (lay, kl.pack_wbin(a, int(ic), lay))
    return out


def encode_hbn(ops: list[Op], tensors: list[np.ndarray], metadata: dict[str, Any],
               input_shape: tuple[int, int, int], output_value: int, *,
               version: int = FORMAT_VERSION, wbin_layout: str = "bits32") -> bytes:
    """The bytes of a .hbn file (see write_hbn).

    ``version`` 2 (the default) stores conv weights in their kernels' layouts (docs/format.md,
    "Kernel layouts"): FPrec in f32_panel32, FullBin in bconv_panel32, WeightBin in
    ``wbin_layout`` ("bits32": the bit panels every path but AVX-512 runs on; "lut128g4": the
    AVX-512 LUT panels). ``version`` 1 writes every tensor canonical (older readers load it)."""
    if version not in (1, 2):
        raise ValueError(f"format version must be 1 or 2, got {version}")
    meta = json.dumps(metadata, sort_keys=True).encode("utf-8")
    graph = _encode_graph(ops, tuple(int(v) for v in input_shape), output_value)
    arrays = []
    for t in tensors:
        a = np.ascontiguousarray(t)
        if a.dtype.newbyteorder("<") not in DTYPE_CODES:
            raise ValueError(f"unsupported tensor dtype {a.dtype}")
        if not 1 <= a.ndim <= MAX_DIMS:
            raise ValueError(f"tensor rank {a.ndim} not in 1..{MAX_DIMS}")
        arrays.append(a.astype(a.dtype.newbyteorder("<"), copy=False))

    meta_off = HEADER_SIZE
    graph_off = _align(meta_off + len(meta))
    table_off = _align(graph_off + len(graph))
    data_off = _align(table_off + TENSOR_RECORD_SIZE * len(arrays))
    laid = _kernel_layouts(ops, arrays, wbin_layout) if version >= 2 else {}
    records, offsets, blobs, cur = [], [], [], 0
    for i, a in enumerate(arrays):
        offsets.append(cur)
        dims = list(a.shape) + [0] * (MAX_DIMS - a.ndim)
        layout, blob = laid.get(i, (0, a))
        blobs.append(blob)
        # the u64 after nbytes: v1 reserved (0); v2 u32 layout id, u32 reserved (0)
        records.append(_TENSOR.pack(DTYPE_CODES[a.dtype], a.ndim, *dims, cur, blob.nbytes, layout))
        cur = _align(cur + blob.nbytes)
    data_size = cur
    file_size = data_off + data_size
    header = _HEADER.pack(MAGIC, version, HEADER_SIZE, file_size,
                          meta_off, len(meta), graph_off, len(graph),
                          table_off, len(arrays), data_off, data_size, 0, 0, 0, 0, 0)
    buf = bytearray(file_size)
    buf[0:HEADER_SIZE] = header
    buf[meta_off:meta_off + len(meta)] = meta
    buf[graph_off:graph_off + len(graph)] = graph
    for i, r in enumerate(records):
        buf[table_off + i * TENSOR_RECORD_SIZE:table_off + (i + 1) * TENSOR_RECORD_SIZE] = r
    for a, off in zip(blobs, offsets):
        buf[data_off + off:data_off + off + a.nbytes] = a.tobytes()
    return bytes(buf)


class _Cursor:
    def __init__(self, buf: bytes, start: int, end: int, what: str):
        self.buf, self.pos, self.end, self.what = buf, start, end, what

    def take(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > self.end:
            raise FormatError(f"graph section truncated while reading {what} "
                              f"(needs {size} bytes at offset {self.pos})")
        vals = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return vals


def _check_range(off: int, size: int, limit: int, what: str) -> None:
    if off > limit or size > limit - off:
        raise FormatError(f"{what}: offset {off} + size {size} exceeds {limit} bytes")


def read_hbn(source: Union[str, bytes, bytearray, memoryview]) -> HbnFile:
    """Parse and structurally validate a .hbn file (path or bytes). Raises FormatError."""
    if isinstance(source, str):
        with open(source, "rb") as f:
            buf = f.read()
    else:
        buf = bytes(source)
    if len(buf) < HEADER_SIZE:
        raise FormatError(f"file too small for the header ({len(buf)} < {HEADER_SIZE} bytes)")
    (magic, version, header_size, file_size, meta_off, meta_size, graph_off, graph_size,
     table_off, n_tensors, data_off, data_size, *reserved) = _HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise FormatError(f"bad magic {magic!r}: not a .hbn file")
    if version > FORMAT_VERSION:
        raise FormatError(f"format version {version} is newer than this reader supports "
                          f"({FORMAT_VERSION}); upgrade hbn_engine")
    if version < 1:
        raise FormatError(f"invalid format version {version}")
    if header_size != HEADER_SIZE:
        raise FormatError(f"header_size {header_size} != {HEADER_SIZE}")
    if file_size != len(buf):
        raise FormatError(f"file_size field says {file_size} bytes but the file has {len(buf)}"
                          " (truncated or padded)")
    for off, what in ((meta_off, "metadata"), (graph_off, "graph"), (table_off, "tensor table"),
                      (data_off, "data")):
        if off % ALIGN:
            raise FormatError(f"{what} section offset {off} is not {ALIGN}-byte aligned")
    _check_range(meta_off, meta_size, file_size, "metadata section")
    _check_range(graph_off, graph_size, file_size, "graph section")
    if n_tensors > file_size // TENSOR_RECORD_SIZE:
        raise FormatError(f"tensor count {n_tensors} cannot fit in the file")
    _check_range(table_off, n_tensors * TENSOR_RECORD_SIZE, file_size, "tensor table")
    _check_range(data_off, data_size, file_size, "data section")
    try:
        metadata = json.loads(buf[meta_off:meta_off + meta_size].decode("utf-8"))
    except RecursionError:
        raise FormatError("metadata JSON is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise FormatError(f"metadata is not valid UTF-8 JSON: {e}") from None
    if not isinstance(metadata, dict):
        raise FormatError("metadata must be a JSON object")

    tensors, layouts, stored, all_dims = [], [], [], []
    for i in range(n_tensors):
        dtype, ndim, d0, d1, d2, d3, off, nbytes, extra = _TENSOR.unpack_from(
            buf, table_off + i * TENSOR_RECORD_SIZE)
        layout = 0
        if version >= 2:  # v1 wrote 0 there and never read it
            layout, spare = extra & 0xFFFFFFFF, extra >> 32
            if layout not in kl.NAMES:
                raise FormatError(f"tensor {i}: unknown kernel layout id {layout}")
            if spare:
                raise FormatError(f"tensor {i}: reserved field after the layout id is {spare}, not 0")
            holds = 1 if layout == kl.F32_PANEL32 else 2
            if layout and dtype != holds:
                raise FormatError(f"tensor {i}: kernel layout {kl.NAMES[layout]} holds "
                                  f"{'f32' if holds == 1 else 'bits'} weights, not dtype {dtype}")
        if dtype not in DTYPES:
            raise FormatError(f"tensor {i}: unknown dtype code {dtype}")
        if not 1 <= ndim <= MAX_DIMS:
            raise FormatError(f"tensor {i}: rank {ndim} not in 1..{MAX_DIMS}")
        dims = (d0, d1, d2, d3)[:ndim]
        if any(d < 1 or d > 1 << 31 for d in dims):
            raise FormatError(f"tensor {i}: bad dims {dims}")
        count = int(np.prod(dims, dtype=object))
        if layout == 0 and count * DTYPES[dtype].itemsize != nbytes:
            raise FormatError(f"tensor {i}: nbytes {nbytes} does not match shape {dims}")
        if layout and nbytes % ALIGN:
            raise FormatError(f"tensor {i}: kernel layout {kl.NAMES[layout]} with nbytes {nbytes}, "
                              f"not a multiple of {ALIGN}")
        if off % ALIGN:
            raise FormatError(f"tensor {i}: data offset {off} not {ALIGN}-byte aligned")
        _check_range(off, nbytes, data_size, f"tensor {i}")
        start = data_off + off
        layouts.append(layout)
        stored.append(nbytes)
        if layout:  # the raw bytes until the op that reads it gives the geometry (below)
            tensors.append(np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=start))
        else:
            tensors.append(np.frombuffer(buf, dtype=DTYPES[dtype], count=count,
                                         offset=start).reshape(dims))
        all_dims.append(dims)

    cur = _Cursor(buf, graph_off, graph_off + graph_size, "graph")
    n_ops, output_value, c, h, w, *_ = cur.take("<IIIII3I", "graph header")
    if n_ops > graph_size // 20:
        raise FormatError(f"op count {n_ops} cannot fit in a {graph_size}-byte graph section")
    ops = []
    for i in range(n_ops):
        code, name_len = cur.take("<II", f"op {i} header")
        if code not in OP_NAMES:
            raise FormatError(f"op {i}: unknown op type code {code}")
        if name_len > MAX_NAME_LEN:
            raise FormatError(f"op {i}: name length {name_len} > {MAX_NAME_LEN}")
        padded = name_len + (-name_len % 4)
        (raw,) = cur.take(f"<{padded}s", f"op {i} name")
        try:
            name = raw[:name_len].decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"op {i}: name is not valid UTF-8") from None
        (n_in,) = cur.take("<I", f"op {name} input count")
        if n_in > 1024:
            raise FormatError(f"op {name}: {n_in} inputs")
        inputs = list(cur.take(f"<{n_in}I", f"op {name} inputs"))
        schema = SCHEMAS[OP_NAMES[code]]
        if n_in < schema.min_inputs or 0 <= schema.max_inputs < n_in:
            want = (f"at least {schema.min_inputs}" if schema.max_inputs < 0
                    else str(schema.min_inputs))
            raise FormatError(f"op {name}: {n_in} inputs, expected {want}")
        for v in inputs:
            if v > i:
                raise FormatError(f"op {name}: input value {v} is not produced before it")
        (n_t,) = cur.take("<I", f"op {name} tensor count")
        slots = OP_TYPES[OP_NAMES[code]][1]
        if n_t != len(slots):
            raise FormatError(f"op {name}: {n_t} tensor slots, expected {len(slots)}")
        refs = list(cur.take(f"<{n_t}I", f"op {name} tensors"))
        for r in refs:
            if r != ABSENT and r >= n_tensors:
                raise FormatError(f"op {name}: tensor reference {r} out of range")
        (n_a,) = cur.take("<I", f"op {name} attribute count")
        if n_a > 64:
            raise FormatError(f"op {name}: {n_a} attributes")
        attrs: dict[str, Union[int, float]] = {}
        for _ in range(n_a):
            key, typ = cur.take("<II", f"op {name} attribute")
            if key not in ATTR_NAMES:
                raise FormatError(f"op {name}: unknown attribute key {key}")
            aname, want = ATTR_NAMES[key]
            if typ != want:
                raise FormatError(f"op {name}: attribute {aname} has type {typ}, expected {want}")
            (val,) = cur.take("<q" if typ == ATTR_INT else "<d", f"op {name} attribute {aname}")
            attrs[aname] = val
        ops.append(Op(OP_NAMES[code], name, inputs, [None if r == ABSENT else r for r in refs],
                      attrs))
    if not 1 <= output_value <= n_ops:
        raise FormatError(f"output value {output_value} out of range 1..{n_ops}")
    _unpack_laid_out(ops, tensors, layouts, all_dims)
    return HbnFile(version, metadata, (c, h, w), output_value, ops, tensors, layouts, stored)


def _unpack_laid_out(ops: list[Op], tensors: list[np.ndarray], layouts: list[int],
                     dims: list[tuple[int, ...]]) -> None:
    """Kernel-layout weights back to canonical bits, in place in ``tensors``, using the geometry
    of the conv that reads each; the same size and layout checks as the native loader."""
    for op in ops:
        want = {"conv_fbin": (kl.BCONV_PANEL32,), "conv_wbin": (kl.WBIN_BITS32, kl.WBIN_LUT128G4),
                "conv_f32": (kl.F32_PANEL32,)}
        for slot, t in enumerate(op.tensors):
            if t is None or not layouts[t]:
                continue
            name = kl.NAMES[layouts[t]]
            if slot != 0 or op.type not in want:
                raise FormatError(f"op {op.name}: tensor {t} is stored in kernel layout {name}, "
                                  "which this slot does not take")
            if layouts[t] not in want[op.type]:
                raise FormatError(f"op {op.name}: kernel layout {name} is not a {op.type} layout")
            shape, ic = dims[t], op.attrs.get("in_channels")
            if op.type == "conv_f32":
                if tensors[t].dtype == np.float32:
                    continue
                need = kl.f32_panel_bytes(shape) if len(shape) == 4 else -1
                if tensors[t].nbytes != need:
                    raise FormatError(f"op {op.name}: tensor weight: kernel layout {name} takes {need} "
                                      f"bytes for this geometry, the file has {tensors[t].nbytes}")
                tensors[t] = kl.unpack_f32_panel32(tensors[t], shape)
                continue
            if len(shape) != 4 or not isinstance(ic, int) or not 1 <= ic <= 1 << 20 \
                    or (ic + 63) // 64 != shape[3]:
                raise FormatError(f"op {op.name}: weight shape {shape} does not match in_channels {ic}")
            if tensors[t].dtype == np.uint64:
                continue  # already unpacked for an earlier reader of the same tensor
            if op.type == "conv_fbin":
                padded = bool(op.attrs.get("pad_h", 0) or op.attrs.get("pad_w", 0))
                need = kl.bconv_parts(shape, ic, padded)["total"]
            else:
                need = kl.wbin_bytes(layouts[t], shape, ic)
            if tensors[t].nbytes != need:
                raise FormatError(f"op {op.name}: tensor weight: kernel layout {name} takes {need} "
                                  f"bytes for this geometry, the file has {tensors[t].nbytes}")
            if op.type == "conv_fbin":
                tensors[t] = kl.unpack_bconv_panel32(tensors[t], shape, ic, padded)
            else:
                tensors[t] = kl.unpack_wbin(tensors[t], shape, ic, layouts[t])


def describe(source: Union[str, bytes]) -> str:
    """A human-readable summary of a .hbn file (one line per op)."""
    f = read_hbn(source)
    lines = [f"hbn v{f.version} model={f.metadata.get('model_name')} "
             f"variant={f.metadata.get('variant')} input={f.input_shape} "
             f"params={f.param_bytes} bytes"]
    for i, op in enumerate(f.ops):
        shapes = [tuple(f.tensors[t].shape) if t is not None else None for t in op.tensors]
        lines.append(f"  v{i + 1} = {op.type}({', '.join(f'v{v}' for v in op.inputs)}) "
                     f"{op.name} {op.attrs} {shapes}")
    return "\n".join(lines)
