"""Loader and executor safety (issue 11, runtime items): resource limits, overflow-checked sizes,
FormatError for hostile metadata / op names, arena give-back, file kinds, strict arguments.
Each test failed before its fix."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import hbn_engine
from hbn_engine.format import FormatError, Op, ResourceLimitError, encode_hbn, read_hbn
from hbn_engine.runtime import default_limits


def _pool_file(c: int, h: int, w: int, ops: list[Op]) -> bytes:
    return encode_hbn(ops, [], {}, (c, h, w), len(ops))


def test_tiny_file_with_huge_adaptive_pooling_is_refused() -> None:
    # 1x1 input, adaptive pooling up to 32768x8192 and back: 2 GiB of activations per image.
    data = _pool_file(1, 1, 1, [Op("adaptive_avg_pool", "up", [0], [], {"out_h": 32768, "out_w": 8192}),
                                Op("adaptive_avg_pool", "down", [1], [], {"out_h": 1, "out_w": 1})])
    assert len(data) < 512
    with pytest.raises(ResourceLimitError, match="max_sample_arena_bytes"):
        hbn_engine.load(data)
    # raised limit: loads (and plans lazily, nothing allocated here)
    m = hbn_engine.load(data, limits={"max_sample_arena_bytes": 4 << 30})
    assert m.output_shape(1) == (1, 1, 1, 1)


def test_huge_pooling_window_is_refused() -> None:
    # a 1024x1024 stride-1 max-pool over 2048x2048: 1.1e12 window reads per image
    data = _pool_file(1, 2048, 2048, [Op("max_pool", "p", [0], [], {
        "kernel_h": 1024, "kernel_w": 1024, "stride_h": 1, "stride_w": 1, "pad_h": 0, "pad_w": 0})])
    with pytest.raises(ResourceLimitError, match="max_pool_reads_per_sample"):
        hbn_engine.load(data)
    assert isinstance(ResourceLimitError("x"), FormatError)


def test_mac_limit() -> None:
    # a small conv passes the defaults; a limit below its MACs refuses it, naming the count
    w = np.ones((4, 3, 3, 3), np.float32)
    data = encode_hbn([Op("conv_f32", "c", [0], [0, None, None],
                          {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1})],
                      [w], {}, (3, 8, 8), 1)
    hbn_engine.load(data)
    macs = 8 * 8 * 4 * 3 * 3 * 3
    hbn_engine.load(data, limits={"max_macs_per_sample": macs})
    with pytest.raises(ResourceLimitError, match=f"{macs} multiply-accumulates"):
        hbn_engine.load(data, limits={"max_macs_per_sample": macs - 1})


def test_limit_arguments_checked() -> None:
    data = _pool_file(1, 2, 2, [Op("relu", "r", [0])])
    with pytest.raises(ValueError, match="unknown limit"):
        hbn_engine.load(data, limits={"max_bytes": 1})
    with pytest.raises(ValueError, match="positive int"):
        hbn_engine.load(data, limits={"max_arena_bytes": -1})
    with pytest.raises(TypeError, match="mapping"):
        hbn_engine.load(data, limits=5)  # type: ignore[arg-type]
    assert set(default_limits()) == {"max_arena_bytes", "max_sample_arena_bytes",
                                     "max_macs_per_sample", "max_pool_reads_per_sample",
                                     "max_kept_arena_bytes"}


def test_size_arithmetic_is_checked() -> None:
    m = hbn_engine.load(_pool_file(3, 4, 4, [Op("relu", "r", [0])]))
    with pytest.raises(ResourceLimitError, match="a batch of 4611686018427387904"):
        m._ex.planned_bytes(2 ** 62)
    with pytest.raises(ValueError, match="batch size"):
        m.output_shape(-5)
    with pytest.raises(ValueError, match="batch size"):
        m.output_shape(0)
    assert m.output_shape(2 ** 62) == (2 ** 62, 3, 4, 4)
    # a batch beyond the arena limit is refused before anything is allocated
    small = hbn_engine.load(_pool_file(3, 4, 4, [Op("relu", "r", [0])]),
                            limits={"max_arena_bytes": 1 << 20})
    with pytest.raises(ResourceLimitError, match="max_arena_bytes"):
        small.run(np.zeros((10000, 3, 4, 4), np.float32))
    assert small.run(np.ones((2, 3, 4, 4), np.float32)).shape == (2, 3, 4, 4)


def test_deeply_nested_metadata_is_a_format_error() -> None:
    # metadata of 100,000 nested '[' (written over a long placeholder string, padded with spaces)
    meta = b"[" * 100_000
    out = bytearray(encode_hbn([Op("relu", "r", [0])], [], {"x": "y" * len(meta)}, (1, 2, 2), 1))
    meta_off = int.from_bytes(out[24:32], "little")
    size = int.from_bytes(out[32:40], "little")
    out[meta_off:meta_off + size] = meta + b" " * (size - len(meta))
    for reader in (hbn_engine.load, read_hbn):
        with pytest.raises(FormatError, match="metadata"):
            reader(bytes(out))


def test_invalid_utf8_op_name_is_refused_at_load() -> None:
    good = bytearray(encode_hbn([Op("relu", "rr", [0])], [], {}, (1, 2, 2), 1))
    graph_off = int.from_bytes(good[40:48], "little")
    name_at = graph_off + 32 + 8
    assert good[name_at:name_at + 2] == b"rr"
    good[name_at:name_at + 2] = b"\xff\xfe"
    for reader in (hbn_engine.load, read_hbn):
        with pytest.raises(FormatError, match="UTF-8"):
            reader(bytes(good))


def test_arena_given_back_after_a_huge_batch() -> None:
    data = _pool_file(4, 8, 8, [Op("relu", "r", [0])])
    m = hbn_engine.load(data, limits={"max_kept_arena_bytes": 1 << 20})
    m.run(np.ones((1, 4, 8, 8), np.float32))
    kept = m._ex.arena_capacity
    assert 0 < kept < 1 << 20
    big = np.ones((2000, 4, 8, 8), np.float32)  # ~3.9 MiB of arena: far larger than usual
    m.run(big)
    assert m._ex.arena_capacity == 0  # given back
    m.run(np.ones((1, 4, 8, 8), np.float32))
    assert m._ex.arena_capacity == kept
    m.run(big)
    m.run(big)  # big batches in a row are the usual now: the arena stays
    assert m._ex.arena_capacity > 1 << 20


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_file_kinds_are_named(tmp_path) -> None:
    with pytest.raises(FormatError, match="is a directory"):
        hbn_engine.load(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(FormatError, match="is a FIFO"):
        hbn_engine.load(fifo)
    if os.path.exists("/dev/zero"):
        with pytest.raises(FormatError, match="is a character device"):
            hbn_engine.load("/dev/zero")
    with pytest.raises(FileNotFoundError):
        hbn_engine.load(tmp_path / "missing.hbn")


def test_bit_passing_takes_only_bools() -> None:
    data = _pool_file(1, 2, 2, [Op("relu", "r", [0])])
    for bad in ("no", 0, 1, None):
        with pytest.raises(TypeError, match="bit_passing"):
            hbn_engine.load(data, bit_passing=bad)  # type: ignore[arg-type]
    hbn_engine.load(data, bit_passing=np.bool_(False))
    hbn_engine.load(data, bit_passing=False)


def test_float32_with_metadata_runs() -> None:
    m = hbn_engine.load(_pool_file(1, 2, 2, [Op("relu", "r", [0])]))
    dt = np.dtype(np.float32, metadata={"unit": "volt"})
    x = np.array([[[[1.0, -2.0], [3.0, -4.0]]]], dtype=dt)
    assert x.dtype == np.float32 and x.dtype.metadata
    np.testing.assert_array_equal(m.run(x), np.maximum(x, 0))
    np.testing.assert_array_equal(m._ex.run(x), np.maximum(x, 0))  # the native check agrees


@pytest.mark.parametrize("version,copy", [(1, False), (2, True)])
def test_mapped_file_rewritten_after_load(tmp_path, version: int, copy: bool) -> None:
    # Nothing reads a mapped version-1 file after load (its weights are repacked), and
    # load(path, copy=True) reads the file into private memory: truncating or rewriting the file
    # in place then cannot crash (SIGBUS) or change the loaded model. (A mapped version-2 file
    # is read in place for the model's life: tests/test_mapped_file.py.)
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    data = encode_hbn([Op("conv_f32", "c", [0], [0, None, None],
                          {"stride_h": 1, "stride_w": 1, "pad_h": 1, "pad_w": 1})],
                      [w], {"model_name": "m"}, (3, 6, 6), 1, version=version)
    p = tmp_path / "m.hbn"
    p.write_bytes(data)
    m = hbn_engine.load(p, copy=copy)
    x = np.ones((2, 3, 6, 6), np.float32)
    want = m.run(x)
    with open(p, "r+b") as f:
        f.truncate(0)
    np.testing.assert_array_equal(m.run(x), want)
    assert m.metadata["model_name"] == "m" and m.layers == [("c", "fprec")]
