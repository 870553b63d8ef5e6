"""Format version 2: conv weights stored in their kernels' layouts (docs/format.md, "Kernel
layouts"). The Python packing (hbn_engine.kernel_layout) must be bit for bit the C++ packing:
a v2 file loads in place and gives exactly the outputs of the same model written as v1 (whose
weights the loader repacks), on every ISA path, including paths that read another layout and
repack from the file's. Corrupt layout fields are FormatErrors naming the problem."""
from __future__ import annotations

import struct
from typing import Optional

import numpy as np
import pytest

import hbn_engine
from hbn_engine import kernel_layout as kl
from hbn_engine.format import FormatError, Op, encode_hbn, read_hbn

HEADER = struct.Struct("<8sII" + "Q" * 9)
RECORD = struct.Struct("<II4qQQQ")


def _bits(rng: np.random.Generator, oc: int, kh: int, kw: int, ic: int) -> np.ndarray:
    w = rng.integers(0, 2 ** 63, (oc, kh, kw, (ic + 63) // 64), dtype=np.uint64)
    if ic % 64:  # tail bits past IC are 0 in a well-formed file
        w[..., -1] &= np.uint64((1 << (ic % 64)) - 1)
    return w


def conv_model(kind: str, oc: int, ic: int, k: int, pad: int, stride: int = 1, hw: int = 7,
               seed: int = 0, **kw) -> bytes:
    """One conv (plus a flatten for a 1x1 map) of `kind` on an ic x hw x hw input."""
    rng = np.random.default_rng(seed)
    f = np.float32
    attrs = dict(stride_h=stride, stride_w=stride, pad_h=pad, pad_w=pad)
    if kind == "conv_f32":
        w = rng.standard_normal((oc, ic, k, k)).astype(f)
        tensors = [w, rng.uniform(0.5, 1.5, oc).astype(f), rng.standard_normal(oc).astype(f)]
        ops = [Op("conv_f32", "c", [0], [0, 1, 2], attrs)]
    else:
        tensors = [_bits(rng, oc, k, k, ic), rng.uniform(0.1, 1, oc).astype(f),
                   rng.standard_normal(oc).astype(f)]
        slots = [0, 1, 2] + ([None] * 4 if kind == "conv_fbin" else [])
        ops = [Op(kind, "c", [0], slots, dict(attrs, in_channels=ic))]
    return encode_hbn(ops, tensors, {}, (ic, hw, hw), 1, **kw)


def outputs(data: bytes, seed: int = 1) -> np.ndarray:
    m = hbn_engine.load(data)
    c, h, w = m.input_shape
    x = np.random.default_rng(seed).standard_normal((2, c, h, w)).astype(np.float32)
    return m.run(x)


def records(data: bytes) -> tuple[int, int, int]:
    h = HEADER.unpack_from(data, 0)
    return h[8], h[9], h[10]  # table offset, tensor count, data offset


def set_record(data: bytes, i: int, **fields: int) -> bytes:
    table_off, _, _ = records(data)
    r = list(RECORD.unpack_from(data, table_off + 64 * i))
    names = ["dtype", "ndim", "d0", "d1", "d2", "d3", "off", "nbytes", "extra"]
    for k, v in fields.items():
        r[names.index(k)] = v
    out = bytearray(data)
    RECORD.pack_into(out, table_off + 64 * i, *r)
    return bytes(out)


def tensor_bytes(data: bytes, i: int) -> tuple[int, int]:
    table_off, _, data_off = records(data)
    r = RECORD.unpack_from(data, table_off + 64 * i)
    return data_off + r[6], r[7]


# Geometries covering every part of every layout: compact and per-tap fields, padded (prefix
# table) and not, fields of <= 32 bits (32-bit lanes), channel counts off the 32/64 grid.
GEOMETRIES = [  # kind, oc, ic, k, pad, stride
    ("conv_fbin", 16, 16, 3, 1, 1),    # compact, prefix
    ("conv_fbin", 40, 64, 3, 1, 2),    # per-tap words, prefix, oc not a multiple of 32
    ("conv_fbin", 33, 100, 3, 0, 1),   # compact, no padding: no prefix
    ("conv_fbin", 10, 24, 1, 0, 1),    # 24-bit fields: 32-bit lanes
    ("conv_fbin", 70, 3, 3, 2, 1),     # 27-bit compact field with lanes and a prefix
    ("conv_fbin", 64, 130, 5, 2, 1),   # tail word, wide prefix
    ("conv_wbin", 10, 24, 1, 0, 1),
    ("conv_wbin", 40, 64, 3, 1, 2),
    ("conv_wbin", 130, 70, 3, 1, 1),   # more than one LUT panel of 128 columns
    ("conv_f32", 40, 5, 3, 1, 1),
    ("conv_f32", 10, 64, 1, 0, 1),
]


@pytest.mark.parametrize("kind,oc,ic,k,pad,stride", GEOMETRIES)
def test_v2_matches_v1_exactly(kind, oc, ic, k, pad, stride, each_isa) -> None:
    v1 = conv_model(kind, oc, ic, k, pad, stride, version=1)
    want = outputs(v1)
    layouts = ["bits32", "lut128g4"] if kind == "conv_wbin" else ["bits32"]
    for lay in layouts:
        v2 = conv_model(kind, oc, ic, k, pad, stride, wbin_layout=lay)
        f1, f2 = read_hbn(v1), read_hbn(v2)
        assert f1.version == 1 and f2.version == 2 and f2.layouts[0] != 0
        for a, b in zip(f1.tensors, f2.tensors):  # the reader unpacks to the canonical form
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(outputs(v2), want)


def test_python_pack_round_trips() -> None:
    rng = np.random.default_rng(3)
    for _, oc, ic, k, pad, _ in GEOMETRIES:
        w = _bits(rng, oc, k, k, ic)
        np.testing.assert_array_equal(
            kl.unpack_bconv_panel32(kl.pack_bconv_panel32(w, ic, bool(pad)), w.shape, ic, bool(pad)), w)
        for lay in (kl.WBIN_BITS32, kl.WBIN_LUT128G4):
            packed = kl.pack_wbin(w, ic, lay)
            assert packed.nbytes == kl.wbin_bytes(lay, w.shape, ic)
            np.testing.assert_array_equal(kl.unpack_wbin(packed, w.shape, ic, lay), w)
        f = rng.standard_normal((oc, ic, k, k)).astype(np.float32)
        np.testing.assert_array_equal(kl.unpack_f32_panel32(kl.pack_f32_panel32(f), f.shape), f)


def test_in_place_where_the_path_reads_the_layout(restore_isa) -> None:
    v1 = conv_model("conv_fbin", 40, 64, 3, 1)
    assert hbn_engine.load(conv_model("conv_fbin", 40, 64, 3, 1, version=1)).in_place_bytes == 0
    # the weights, and the scale and bias vectors (40 floats each), all read in place
    assert hbn_engine.load(v1).in_place_bytes == kl.bconv_parts((40, 3, 3, 1), 64, True)["total"] + 2 * 40 * 4
    assert hbn_engine.load(conv_model("conv_f32", 40, 5, 3, 1)).in_place_bytes > 0
    bits = conv_model("conv_wbin", 130, 70, 3, 1)
    lut = conv_model("conv_wbin", 130, 70, 3, 1, wbin_layout="lut128g4")
    for isa in hbn_engine.supported_isas():
        hbn_engine.set_isa(isa)
        # AVX-512 runs WeightBin layers on the 128-column LUT panels; every other path on bits
        avx512 = isa.startswith("avx512")  # avx512vnni implies avx512
        assert (hbn_engine.load(lut).in_place_bytes > 0) == avx512, isa
        assert (hbn_engine.load(bits).in_place_bytes > 0) == (not avx512), isa


def test_changing_path_after_load_repacks_from_the_file(restore_isa) -> None:
    isas = hbn_engine.supported_isas()
    for lay in ("bits32", "lut128g4"):
        data = conv_model("conv_wbin", 130, 70, 3, 1, wbin_layout=lay)
        want = {}
        for isa in isas:
            hbn_engine.set_isa(isa)
            want[isa] = outputs(conv_model("conv_wbin", 130, 70, 3, 1, version=1))
        hbn_engine.reset_isa()
        m = hbn_engine.load(data)
        x = np.random.default_rng(1).standard_normal((2, 70, 7, 7)).astype(np.float32)
        for isa in isas:
            hbn_engine.set_isa(isa)
            np.testing.assert_array_equal(m.run(x), want[isa])


def test_a_model_loaded_twice_shares_its_file(tmp_path) -> None:
    path = tmp_path / "m.hbn"
    path.write_bytes(conv_model("conv_fbin", 64, 64, 3, 1))
    a, b = hbn_engine.load(path), hbn_engine.load(path)
    assert a.in_place_bytes == b.in_place_bytes > 0
    x = np.random.default_rng(0).standard_normal((1, 64, 7, 7)).astype(np.float32)
    np.testing.assert_array_equal(a.run(x), b.run(x))


def both_refuse(data: bytes, native: str, python: Optional[str] = None) -> None:
    with pytest.raises(FormatError, match=native):
        hbn_engine.load(data)
    with pytest.raises(FormatError, match=python or native):
        read_hbn(data)


def test_corrupt_layout_fields_are_format_errors() -> None:
    good = conv_model("conv_fbin", 40, 64, 3, 1)
    lay = kl.BCONV_PANEL32
    both_refuse(set_record(good, 0, extra=99), "tensor 0: unknown kernel layout id 99")
    both_refuse(set_record(good, 0, extra=lay | (1 << 32)), "reserved field after the layout id is 1")
    both_refuse(set_record(good, 1, extra=lay), "kernel layout bconv_panel32 holds bits weights, not dtype 1")
    _, n = tensor_bytes(good, 0)
    both_refuse(set_record(good, 0, nbytes=n - 64), "kernel layout bconv_panel32 takes .* bytes for this geometry")
    both_refuse(set_record(good, 0, nbytes=n - 8), "not a multiple of 64")
    both_refuse(set_record(good, 0, extra=kl.WBIN_BITS32), "not a conv_fbin layout")
    wb = conv_model("conv_wbin", 40, 64, 3, 1)
    both_refuse(set_record(wb, 0, extra=kl.BCONV_PANEL32), "not a conv_wbin layout")
    fp = conv_model("conv_f32", 16, 5, 3, 1)  # a 64-byte scale vector
    both_refuse(set_record(fp, 1, extra=kl.F32_PANEL32, dtype=1), "which this slot does not take")


def test_inconsistent_bconv_parts_are_format_errors() -> None:
    good = conv_model("conv_fbin", 40, 70, 3, 1)
    start, _ = tensor_bytes(good, 0)
    parts = kl.bconv_parts((40, 3, 3, 2), 70, True)
    # a bit past the receptive field (compact rows: 9 taps x 70 channels = 630 bits in 10 words;
    # bit 639 is the last of the last word)
    assert parts["compact"] and parts["kc"] == 10
    bad = bytearray(good)
    bad[start + 9 * 32 * 8 + 7] |= 0x80  # panel 0, word 9, channel 0
    with pytest.raises(FormatError, match="bits set past the input channels"):
        hbn_engine.load(bytes(bad))
    # a padding channel (40..63 of the second panel) that is not 0
    bad = bytearray(good)
    bad[start + (parts["kc"] * 32 + 20) * 8] |= 1
    with pytest.raises(FormatError, match="a padding channel must be 0"):
        hbn_engine.load(bytes(bad))
    # a prefix entry that does not match the weights
    bad = bytearray(good)
    bad[start + parts["prefix_off"] + 4 * 5] ^= 2
    with pytest.raises(FormatError, match="padding prefix table entry .* does not match the weights"):
        hbn_engine.load(bytes(bad))
    # 32-bit lanes that disagree with the panels
    lanes = conv_model("conv_fbin", 10, 24, 1, 0)
    start, _ = tensor_bytes(lanes, 0)
    p = kl.bconv_parts((10, 1, 1, 1), 24, False)
    bad = bytearray(lanes)
    bad[start + p["lane32_off"]] ^= 1
    with pytest.raises(FormatError, match="32-bit lane of output channel 0 does not match"):
        hbn_engine.load(bytes(bad))


def test_version_1_ignores_the_layout_field() -> None:
    # Version 1 defined the u64 after nbytes as reserved and never read it: an old file with
    # junk there still loads as before.
    v1 = conv_model("conv_fbin", 40, 64, 3, 1, version=1)
    np.testing.assert_array_equal(outputs(set_record(v1, 0, extra=7)), outputs(v1))


def test_export_writes_v2_and_v1_on_request(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    from hbn_engine.nn import FullBinConv2d, WeightBinConv2d

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 20, 3, padding=1), nn.BatchNorm2d(20), nn.ReLU(),
                        WeightBinConv2d(20, 40, 3, padding=1), nn.BatchNorm2d(40),
                        FullBinConv2d(40, 33, 3, padding=1), nn.BatchNorm2d(33), nn.ReLU()).eval()
    x = torch.randn(2, 3, 9, 9)
    paths = {}
    for name, args in {"v1": dict(format_version=1), "v2": {}, "lut": dict(wbin_layout="lut128g4")}.items():
        paths[name] = tmp_path / f"{name}.hbn"
        hbn_engine.export(net, x[:1], str(paths[name]), **args)
    files = {k: read_hbn(str(p)) for k, p in paths.items()}
    assert [files[k].version for k in ("v1", "v2", "lut")] == [1, 2, 2]
    assert set(files["v1"].layouts) == {0}
    assert {kl.BCONV_PANEL32, kl.WBIN_BITS32, kl.F32_PANEL32} <= set(files["v2"].layouts)
    assert kl.WBIN_LUT128G4 in set(files["lut"].layouts)
    want = hbn_engine.load(paths["v1"]).run(x.numpy())
    for k in ("v2", "lut"):
        np.testing.assert_array_equal(hbn_engine.load(paths[k]).run(x.numpy()), want)
    with pytest.raises(ValueError, match="wbin_layout"):
        hbn_engine.export(net, x[:1], str(tmp_path / "bad.hbn"), wbin_layout="nope")


def test_auto_layout_is_the_selected_paths_in_place_layout(restore_isa) -> None:
    # wbin_layout="auto" resolves to the layout the path selected now reads in place: a file
    # written that way loads with its WeightBin weights (and vectors) in place on that path.
    for isa in hbn_engine.supported_isas():
        hbn_engine.set_isa(isa)
        name = kl.resolve_wbin_layout("auto")
        assert name == ("lut128g4" if isa.startswith("avx512") else "bits32"), isa
        m = hbn_engine.load(conv_model("conv_wbin", 130, 70, 3, 1, wbin_layout=name))
        assert (m.in_place_bytes > 0) == (not isa.startswith("neon")), isa  # NEON: own LUT form
    for name in ("bits32", "lut128g4"):
        assert kl.resolve_wbin_layout(name) == name


@pytest.mark.parametrize("bad", ["nope", "AUTO", "", "wbin_bits32", None, 3, ["auto"]])
def test_bad_wbin_layout_is_a_clear_error(bad) -> None:
    with pytest.raises(ValueError, match=r"wbin_layout must be one of \['auto', 'bits32', 'lut128g4'\]"):
        kl.resolve_wbin_layout(bad)


def test_export_auto_layout_matches_v1_on_every_path(tmp_path, restore_isa) -> None:
    torch = pytest.importorskip("torch")
    from torch import nn

    from hbn_engine.nn import WeightBinConv2d

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 20, 3, padding=1), nn.BatchNorm2d(20), nn.ReLU(),
                        WeightBinConv2d(20, 40, 3, padding=1), nn.BatchNorm2d(40), nn.ReLU()).eval()
    x = torch.randn(2, 3, 9, 9)
    v1, auto = tmp_path / "v1.hbn", tmp_path / "auto.hbn"
    hbn_engine.export(net, x[:1], str(v1), format_version=1)
    hbn_engine.export(net, x[:1], str(auto), wbin_layout="auto")
    native = kl.WBIN_LAYOUTS[kl.resolve_wbin_layout("auto")]
    assert native in set(read_hbn(str(auto)).layouts)
    # the same outputs as the v1 file on every path, whichever layout "auto" wrote here
    for isa in hbn_engine.supported_isas():
        hbn_engine.set_isa(isa)
        np.testing.assert_array_equal(hbn_engine.load(auto).run(x.numpy()),
                                      hbn_engine.load(v1).run(x.numpy()))
    with pytest.raises(ValueError, match="wbin_layout must be one of"):
        hbn_engine.export(net, x[:1], str(tmp_path / "bad.hbn"), wbin_layout="host")
    assert not (tmp_path / "bad.hbn").exists()


def fbin_with_rule(version: int) -> bytes:
    """A padded conv_fbin with scale, bias, input thresholds and flips."""
    rng = np.random.default_rng(5)
    f = np.float32
    oc, ic = 40, 70
    tensors = [_bits(rng, oc, 3, 3, ic), rng.uniform(0.1, 1, oc).astype(f), rng.standard_normal(oc).astype(f),
               (0.3 * rng.standard_normal(ic)).astype(f), rng.integers(0, 2, ic).astype(np.uint8)]
    ops = [Op("conv_fbin", "c", [0], [0, 1, 2, 3, 4, None, None],
              dict(stride_h=1, stride_w=1, pad_h=1, pad_w=1, in_channels=ic))]
    return encode_hbn(ops, tensors, {}, (ic, 7, 7), 1, version=version)


def test_v2_vectors_are_read_in_place_with_the_same_outputs(each_isa) -> None:
    # scale, bias (40 floats each), thresholds (70 floats) and flips (70 bytes) of a version-2
    # file are read from the model bytes, like its weights; a version-1 file's are copied.
    v1, v2 = fbin_with_rule(1), fbin_with_rule(2)
    np.testing.assert_array_equal(outputs(v2), outputs(v1))
    assert hbn_engine.load(v1).in_place_bytes == 0
    weights = kl.bconv_parts((40, 3, 3, 2), 70, True)["total"]
    assert hbn_engine.load(v2).in_place_bytes == weights + 2 * 40 * 4 + 70 * 4 + 70
