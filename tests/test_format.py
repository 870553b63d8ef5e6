"""The .hbn container: round trip, and hostile/corrupted files must raise FormatError cleanly
(both the native loader used by hbn_engine.load and the pure-Python reader)."""
from __future__ import annotations

import struct

import numpy as np
import pytest

import hbn_engine
from hbn_engine.format import (
    FORMAT_VERSION,
    HEADER_SIZE,
    FormatError,
    Op,
    encode_hbn,
    read_hbn,
)


def _bits(rng: np.random.Generator, oc: int, kh: int, kw: int, ic: int) -> np.ndarray:
    words = (ic + 63) // 64
    w = rng.integers(0, 2**63, size=(oc, kh, kw, words), dtype=np.uint64)
    tail = ic % 64
    if tail:  # tail bits past the channel count must be 0
        w[..., -1] &= np.uint64((1 << tail) - 1)
    return w


def small_model_bytes(seed: int = 0) -> bytes:
    """conv_f32 -> conv_fbin (thresholds, flips, input scale) -> max_pool -> flatten ->
    conv_wbin (linear) -> softmax, 3x8x8 input."""
    rng = np.random.default_rng(seed)
    f = np.float32
    tensors = [
        rng.standard_normal((8, 3, 3, 3)).astype(f),          # 0 conv1 weight
        rng.uniform(0.5, 1.5, 8).astype(f),                   # 1 conv1 scale
        rng.standard_normal(8).astype(f),                     # 2 conv1 bias
        _bits(rng, 70, 3, 3, 8),                              # 3 conv2 bits
        rng.uniform(0.1, 1, 70).astype(f),                    # 4 conv2 scale
        rng.standard_normal(8).astype(f),                     # 5 conv2 thresholds
        (rng.random(8) < 0.3).astype(np.uint8),               # 6 conv2 flips
        rng.uniform(-1, 1, 8).astype(f),                      # 7 bn scale
        rng.uniform(-1, 1, 8).astype(f),                      # 8 bn shift
        _bits(rng, 5, 1, 1, 70 * 4 * 4),                      # 9 fc bits
        rng.uniform(0.1, 1, 5).astype(f),                     # 10 fc scale
    ]
    conv = dict(stride_h=1, stride_w=1, pad_h=1, pad_w=1, act=1)
    ops = [
        Op("conv_f32", "conv1", [0], [0, 1, 2], dict(conv)),
        Op("conv_fbin", "conv2", [1], [3, 4, None, 5, 6, 7, 8],
           dict(conv, in_channels=8, input_scale=1)),
        Op("max_pool", "pool", [2], [], dict(kernel_h=3, kernel_w=3, stride_h=2, stride_w=2,
                                             pad_h=0, pad_w=0, ceil_mode=1)),
        Op("flatten", "flatten", [3], []),
        Op("conv_wbin", "fc", [4], [9, 10, None], dict(stride_h=1, stride_w=1, pad_h=0, pad_w=0,
                                                       in_channels=1120, linear=1)),
        Op("softmax", "softmax", [5], []),
    ]
    return encode_hbn(ops, tensors, {"model_name": "tiny", "class_names": list("abcde")},
                      (3, 8, 8), 6)


@pytest.fixture(scope="module")
def good() -> bytes:
    return small_model_bytes()


def _expect_clean(data: bytes) -> None:
    """Either loads (and then runs) or raises FormatError; never anything else."""
    try:
        m = hbn_engine.load(data)
    except FormatError:
        return
    y = m.run(np.ones((1,) + m.input_shape, np.float32))
    assert y.ndim in (2, 4)


def test_round_trip(good: bytes) -> None:
    f = read_hbn(good)
    assert f.version == FORMAT_VERSION and f.input_shape == (3, 8, 8)
    assert [op.type for op in f.ops] == ["conv_f32", "conv_fbin", "max_pool", "flatten",
                                         "conv_wbin", "softmax"]
    assert f.ops[1].attrs["input_scale"] == 1 and f.ops[1].tensors[2] is None
    assert f.metadata["class_names"] == list("abcde")
    m = hbn_engine.load(good)
    assert m.input_shape == (3, 8, 8)
    assert m.layers == [("conv1", "fprec"), ("conv2", "fbin"), ("pool", "max_pool"),
                        ("flatten", "flatten"), ("fc", "wbin"), ("softmax", "softmax")]
    assert m.param_bytes == f.param_bytes
    y = m.run(np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32))
    assert y.shape == (3, 5)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_sections_aligned(good: bytes) -> None:
    hdr = struct.unpack_from("<8sIIQQQQQQQQQ", good, 0)
    for off in (hdr[4], hdr[6], hdr[8], hdr[10]):
        assert off % 64 == 0
    f = read_hbn(good)
    # every tensor starts on a 64-byte boundary of the file (kernel-layout weights are returned
    # unpacked, so only the canonical ones are views into it)
    for t in [t for t, lay in zip(f.tensors, f.layouts) if lay == 0]:
        assert (t.__array_interface__["data"][0] - np.frombuffer(good, np.uint8).ctypes.data) % 64 == 0


def test_bad_magic(good: bytes) -> None:
    bad = b"NOTHBN!!" + good[8:]
    for reader in (hbn_engine.load, read_hbn):
        with pytest.raises(FormatError, match="magic"):
            reader(bad)


def test_newer_version_refused(good: bytes) -> None:
    bad = bytearray(good)
    struct.pack_into("<I", bad, 8, FORMAT_VERSION + 1)
    for reader in (hbn_engine.load, read_hbn):
        with pytest.raises(FormatError, match="newer"):
            reader(bytes(bad))


def test_not_a_file_and_empty(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        hbn_engine.load(tmp_path / "missing.hbn")
    p = tmp_path / "empty.hbn"
    p.write_bytes(b"")
    with pytest.raises(FormatError, match="too small"):
        hbn_engine.load(p)


def test_truncation_everywhere(good: bytes) -> None:
    # Every prefix (including ones ending inside the header, graph and tensor data) is refused.
    for cut in range(0, len(good)):
        with pytest.raises(FormatError):
            hbn_engine.load(good[:cut])
    for cut in range(0, len(good), 7):
        with pytest.raises(FormatError):
            read_hbn(good[:cut])


def test_truncated_with_consistent_size_field(good: bytes) -> None:
    # A truncation that also rewrites file_size must be caught by the section bounds.
    for cut in range(HEADER_SIZE, len(good), 13):
        bad = bytearray(good[:cut])
        struct.pack_into("<Q", bad, 16, cut)
        with pytest.raises(FormatError):
            hbn_engine.load(bytes(bad))


@pytest.mark.parametrize("field_offset", [24, 32, 40, 48, 56, 64, 72, 80])
@pytest.mark.parametrize("value", [2**63 - 64, 2**64 - 64, 2**40, 1 << 32])
def test_huge_header_fields(good: bytes, field_offset: int, value: int) -> None:
    bad = bytearray(good)
    struct.pack_into("<Q", bad, field_offset, value)
    with pytest.raises(FormatError):
        hbn_engine.load(bytes(bad))
    with pytest.raises(FormatError):
        read_hbn(bytes(bad))


def test_huge_graph_and_tensor_fields(good: bytes) -> None:
    f = struct.unpack_from("<8sIIQQQQQQQQQ", good, 0)
    graph_off, table_off = f[6], f[8]
    cases = []
    for off, fmt, v in [(graph_off, "<I", 0xFFFFFFFF),          # op count
                        (graph_off + 4, "<I", 0xFFFFFFF0),      # output value
                        (graph_off + 8, "<I", 0x7FFFFFFF),      # input channels
                        (table_off, "<I", 99),                  # dtype
                        (table_off + 4, "<I", 9),               # rank
                        (table_off + 8, "<q", 1 << 40),         # dim 0
                        (table_off + 8, "<q", -3),
                        (table_off + 40, "<Q", 2**64 - 64),     # data offset
                        (table_off + 48, "<Q", 2**63)]:         # nbytes
        bad = bytearray(good)
        struct.pack_into(fmt, bad, off, v)
        cases.append(bytes(bad))
    for bad in cases:
        with pytest.raises(FormatError):
            hbn_engine.load(bad)


def test_op_semantic_errors_name_the_op() -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)

    def one(op: Op, tensors=(w,)) -> bytes:
        return encode_hbn([op], list(tensors), {}, (3, 5, 5), 1)

    conv = dict(stride_h=1, stride_w=1, pad_h=0, pad_w=0)
    with pytest.raises(FormatError, match="'c1'.*stride_h"):
        hbn_engine.load(one(Op("conv_f32", "c1", [0], [0], dict(conv, stride_h=0))))
    with pytest.raises(FormatError, match="'c1'.*input channels"):
        hbn_engine.load(one(Op("conv_f32", "c1", [0], [0], conv),
                            (rng.standard_normal((4, 2, 3, 3)).astype(np.float32),)))
    with pytest.raises(FormatError, match="'c1'.*missing attribute"):
        hbn_engine.load(one(Op("conv_f32", "c1", [0], [0], {})))
    with pytest.raises(FormatError, match="'c1'.*larger than"):
        hbn_engine.load(one(Op("conv_f32", "c1", [0], [0], conv),
                            (rng.standard_normal((4, 3, 7, 7)).astype(np.float32),)))
    with pytest.raises(FormatError, match="'c1'.*dtype"):
        hbn_engine.load(one(Op("conv_f32", "c1", [0], [0], conv), (w.astype(np.uint8),)))
    with pytest.raises(FormatError, match="'c1'.*non-finite"):
        hbn_engine.load(one(Op("conv_f32", "c1", [0], [0], conv), (w * np.nan,)))
    with pytest.raises(FormatError, match="'p'.*pad_h"):
        hbn_engine.load(one(Op("max_pool", "p", [0], [], dict(kernel_h=2, kernel_w=2,
                                                             stride_h=1, stride_w=1,
                                                             pad_h=2, pad_w=0))))
    with pytest.raises(FormatError, match="'a'.*inputs"):
        hbn_engine.load(one(Op("add", "a", [0], [])))
    with pytest.raises(FormatError, match="not produced before"):
        hbn_engine.load(one(Op("relu", "r", [1], [])))
    with pytest.raises(FormatError, match="tensor reference"):
        hbn_engine.load(one(Op("conv_f32", "c1", [0], [5], conv)))
    # conv_fbin with a weight whose word count does not match in_channels
    bits = np.zeros((4, 3, 3, 2), np.uint64)
    with pytest.raises(FormatError, match="'b'.*weight"):
        hbn_engine.load(one(Op("conv_fbin", "b", [0], [0], dict(conv, in_channels=3)), (bits,)))


def test_random_byte_flips(good: bytes) -> None:
    rng = np.random.default_rng(42)
    n = len(good)
    for _ in range(1500):
        bad = bytearray(good)
        for pos in rng.integers(0, n, size=int(rng.integers(1, 4))):
            bad[pos] = int(rng.integers(0, 256))
        _expect_clean(bytes(bad))


def test_random_flips_in_structure(good: bytes) -> None:
    # Concentrate on the header, graph and tensor table, where flips matter most.
    f = struct.unpack_from("<8sIIQQQQQQQQQ", good, 0)
    data_off = f[10]
    rng = np.random.default_rng(7)
    for _ in range(1500):
        bad = bytearray(good)
        pos = int(rng.integers(0, data_off))
        bad[pos] ^= 1 << int(rng.integers(0, 8))
        _expect_clean(bytes(bad))
        try:
            read_hbn(bytes(bad))
        except FormatError:
            pass


def test_python_reader_rejects_like_native(good: bytes) -> None:
    with pytest.raises(FormatError, match="file_size"):
        read_hbn(good + b"\0")
    with pytest.raises(FormatError, match="file_size"):
        hbn_engine.load(good + b"\0")
