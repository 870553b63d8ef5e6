"""The op registry: defined once in C++, read by hbn_engine.format, used by the docs, the
exporter, the Python reader and the native loader alike."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import hbn_engine
from hbn_engine import _core
from hbn_engine.format import (
    ATTRS,
    OP_TYPES,
    SCHEMAS,
    FormatError,
    Op,
    encode_hbn,
    op_kind,
    read_hbn,
    schema_markdown,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "format.md"


def test_docs_hold_the_generated_tables() -> None:
    text = DOCS.read_text()
    m = re.search(r"<!-- registry:begin[^>]*-->\n(.*?)\n<!-- registry:end -->", text, re.S)
    assert m, "docs/format.md lost its registry block"
    assert m.group(1) == schema_markdown(), (
        "docs/format.md is out of date: paste hbn_engine.format.schema_markdown() into it")


def test_python_tables_are_the_native_registry() -> None:
    native = {d["name"]: d for d in _core.op_schemas()}
    assert set(native) == set(SCHEMAS) == set(OP_TYPES)
    for name, d in native.items():
        assert OP_TYPES[name] == (d["code"], tuple(s[0] for s in d["slots"]))
    assert sorted(c for c, _ in OP_TYPES.values()) == sorted({c for c, _ in OP_TYPES.values()})
    assert {name: (key, typ) for key, name, typ in _core.attr_infos()} == ATTRS
    assert op_kind("conv_f32") == "fprec" and op_kind("conv_wbin") == "wbin"
    assert op_kind("conv_fbin") == "fbin" and op_kind("max_pool") == "max_pool"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_slot_counts_agree_with_the_native_loader(name: str) -> None:
    # One slot more than the registry says: both readers refuse it, naming the expected count.
    s = SCHEMAS[name]
    n_in = max(s.min_inputs, 1)
    data = bytearray(encode_hbn([Op(name, "x", [0] * n_in)], [], {}, (4, 4, 4), 1))
    assert len(read_hbn(bytes(data)).ops[0].tensors) == len(s.slots)
    graph_off = int.from_bytes(data[40:48], "little")
    at = graph_off + 32 + 12 + 4 + 4 * n_in  # type, name_len, "x" padded, input count, inputs
    assert int.from_bytes(data[at:at + 4], "little") == len(s.slots)
    data[at:at + 4] = (len(s.slots) + 1).to_bytes(4, "little")
    for reader in (hbn_engine.load, read_hbn):
        with pytest.raises(FormatError, match=f"tensor slots, expected {len(s.slots)}"):
            reader(bytes(data))


def test_unknown_op_code_refused_by_both() -> None:
    good = bytearray(encode_hbn([Op("relu", "r", [0])], [], {}, (1, 2, 2), 1))
    f = read_hbn(bytes(good))
    assert f.ops[0].type == "relu"
    graph_off = int.from_bytes(good[40:48], "little")
    unused = max(c for c, _ in OP_TYPES.values()) + 1
    good[graph_off + 32:graph_off + 36] = unused.to_bytes(4, "little")
    for reader in (hbn_engine.load, read_hbn):
        with pytest.raises(FormatError, match=f"unknown op type code {unused}"):
            reader(bytes(good))


def test_schema_ranges_are_enforced_natively() -> None:
    # The registry's range for an attribute is the loader's: one past it is refused, naming it.
    for name in ("max_pool", "adaptive_avg_pool", "lrn"):
        for a in SCHEMAS[name].attrs:
            if ATTRS[a.name][1] != 1 or a.name.startswith("pad"):
                continue
            attrs = {b.name: (b.lo if b.required else b.default) for b in SCHEMAS[name].attrs
                     if ATTRS[b.name][1] == 1}
            attrs.update({b.name: 1.0 for b in SCHEMAS[name].attrs if ATTRS[b.name][1] == 2})
            attrs[a.name] = a.hi + 1
            data = encode_hbn([Op(name, "op", [0], [], attrs)], [], {}, (2, 8, 8), 1)
            with pytest.raises(FormatError, match=f"'op'.*{a.name}"):
                hbn_engine.load(data)
    np.testing.assert_equal(len(SCHEMAS), len(_core.op_schemas()))


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_input_counts_agree_with_the_native_loader(name: str) -> None:
    # One input more than the registry allows (or none at all): both readers refuse it.
    s = SCHEMAS[name]
    n_bad = 0 if s.max_inputs < 0 else s.max_inputs + 1
    data = encode_hbn([Op(name, "x", [0] * n_bad)], [], {}, (4, 4, 4), 1)
    for reader in (hbn_engine.load, read_hbn):
        with pytest.raises(FormatError, match=f"{n_bad} inputs, expected"):
            reader(data)
