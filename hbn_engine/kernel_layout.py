"""Kernel weight layouts of format version 2 (docs/format.md, "Kernel layouts").

A binary conv's weight may be stored in the exact layout a kernel path reads, so that the native
loader runs on the file's bytes in place (shared mapped pages, no repacking). Each function here
packs the canonical sign bits ``[OC, KH, KW, words(IC)]`` (uint64, bit 1 = -1, LSB first) into
one layout, bit for bit what the C++ packing produces (csrc/bconv/bconv.cc ``bconv_pack``,
csrc/wbconv/wb_pack.cc), or unpacks it back. The ids are hbn/weight_layout.h's.
"""
from __future__ import annotations

import numpy as np

CANONICAL = 0
BCONV_PANEL32 = 1  # BConv2d: panels + padding prefix table + 32-bit lanes
WBIN_BITS32 = 2  # WBConv2d bit panels [ceil(OC/32)][K] uint32
WBIN_LUT128G4 = 3  # WBConv2d LUT panels, 128 columns, 4 inputs per group (AVX-512 row)
F32_PANEL32 = 4  # Conv2dF32 SGEMM panels [ceil(OC/32)][K][32] float32

NAMES = {CANONICAL: "canonical", BCONV_PANEL32: "bconv_panel32", WBIN_BITS32: "wbin_bits32",
         WBIN_LUT128G4: "wbin_lut128g4", F32_PANEL32: "f32_panel32"}
# conv_wbin layouts by the name export() takes
WBIN_LAYOUTS = {"bits32": WBIN_BITS32, "lut128g4": WBIN_LUT128G4}
# What export(wbin_layout=...) accepts: a layout above, or "auto" (resolve_wbin_layout).
WBIN_LAYOUT_CHOICES = ("auto", *WBIN_LAYOUTS)


def resolve_wbin_layout(name: str) -> str:
    """export()'s ``wbin_layout`` -> a WBIN_LAYOUTS name. ``"auto"`` is the layout this machine's
    selected kernel path runs WeightBin layers on in place: "lut128g4" where it is the AVX-512
    path, "bits32" on every other path (those that read bit panels in place, and NEON, whose
    LUT panels have no file layout and are packed from either at load). The selected path is
    the one loads here take: after HBN_FORCE_ISA / set_isa. Raises ValueError for any other
    value."""
    if not isinstance(name, str) or name not in WBIN_LAYOUT_CHOICES:
        raise ValueError(f"wbin_layout must be one of {list(WBIN_LAYOUT_CHOICES)}, got {name!r}")
    if name != "auto":
        return name
    from hbn_engine import _core  # the native engine decides; imported only when asked

    native = _core.wbin_native_layout()
    return {NAMES[lay]: short for short, lay in WBIN_LAYOUTS.items()}[native]

_BLOCK = 32  # output channels per BConv2d panel
_ALIGN = 64


def _round(n: int, m: int) -> int:
    return (n + m - 1) // m * m


def _words(bits: int) -> int:
    return (bits + 63) // 64


def _sign_bits(weight: np.ndarray, in_channels: int) -> np.ndarray:
    """[OC, KH*KW, IC] bools (True = -1) of canonical weight bits; tail bits dropped."""
    oc, kh, kw, w = weight.shape
    b = np.unpackbits(np.ascontiguousarray(weight, dtype="<u8").view(np.uint8).reshape(oc, kh * kw, w * 8),
                      axis=-1, bitorder="little")
    return b[..., :in_channels].astype(bool)


def _pack_words(bits: np.ndarray) -> np.ndarray:
    """Bools [..., n] -> uint64 words [..., words(n)], LSB first."""
    pad = (-bits.shape[-1]) % 64
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), bool)], axis=-1)
    return np.ascontiguousarray(np.packbits(bits, axis=-1, bitorder="little")).view("<u8")


def _canonical(bits: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """[OC, T, IC] bools -> canonical [OC, KH, KW, words(IC)] uint64."""
    oc = bits.shape[0]
    return _pack_words(bits).reshape(oc, kh, kw, -1).copy()


# ---- bconv_panel32 -------------------------------------------------------------------------

def bconv_parts(shape: tuple[int, ...], in_channels: int, padded: bool) -> dict[str, int]:
    """Sizes and offsets of the bconv_panel32 parts (C++ ``bconv_packed_sizes``)."""
    oc, kh, kw, w = shape
    t = kh * kw
    compact = t > 1 and _words(t * in_channels) < t * w
    kc = _words(t * in_channels) if compact else t * w
    oc_pad = _round(oc, _BLOCK)
    p = {"compact": int(compact), "kc": kc, "oc_pad": oc_pad, "panels_off": 0,
         "panels_bytes": oc_pad * kc * 8, "prefix_bytes": 0, "lane32_bytes": 0}
    total = p["panels_bytes"]
    if padded:
        p["prefix_off"] = _round(total, _ALIGN)
        p["prefix_bytes"] = kh * kw * oc_pad * 4
        total = p["prefix_off"] + p["prefix_bytes"]
    if t * in_channels <= 32:
        p["lane32_off"] = _round(total, _ALIGN)
        p["lane32_bytes"] = oc_pad * 4
        total = p["lane32_off"] + p["lane32_bytes"]
    p["total"] = _round(total, _ALIGN)
    return p


def pack_bconv_panel32(weight: np.ndarray, in_channels: int, padded: bool) -> np.ndarray:
    """Canonical weight bits -> the bconv_panel32 bytes (uint8)."""
    oc, kh, kw, w = weight.shape
    t = kh * kw
    p = bconv_parts(weight.shape, in_channels, padded)
    bits = _sign_bits(weight, in_channels)  # [OC, T, C]
    rows = _pack_words(bits.reshape(oc, t * in_channels)) if p["compact"] \
        else _pack_words(bits).reshape(oc, t * w)
    kc, oc_pad = p["kc"], p["oc_pad"]
    out = np.zeros(p["total"], np.uint8)
    panels = np.zeros((oc_pad, kc), "<u8")
    panels[:oc] = rows
    out[:p["panels_bytes"]] = panels.reshape(oc_pad // _BLOCK, _BLOCK, kc).transpose(0, 2, 1) \
        .copy().view(np.uint8).ravel()
    if p["prefix_bytes"]:
        sums = (in_channels - 2 * bits.sum(axis=-1, dtype=np.int64)).reshape(oc, kh, kw)
        pre = np.zeros((oc_pad, kh, kw), np.int64)  # P(h, w) for h, w >= 1
        pre[:oc] = sums.cumsum(axis=1).cumsum(axis=2)
        a = np.ascontiguousarray(pre.reshape(oc_pad, -1).T).astype("<i4")
        out[p["prefix_off"]:p["prefix_off"] + p["prefix_bytes"]] = a.view(np.uint8).ravel()
    if p["lane32_bytes"]:
        lanes = np.zeros(oc_pad, "<u4")
        lanes[:oc] = (rows[:, 0] & np.uint64(0xFFFFFFFF)).astype("<u4")
        out[p["lane32_off"]:p["lane32_off"] + p["lane32_bytes"]] = lanes.view(np.uint8)
    return out


def unpack_bconv_panel32(data: np.ndarray, shape: tuple[int, ...], in_channels: int,
                         padded: bool) -> np.ndarray:
    """The canonical weight bits of bconv_panel32 bytes (the panels; derived parts ignored)."""
    oc, kh, kw, w = shape
    t = kh * kw
    p = bconv_parts(shape, in_channels, padded)
    kc, oc_pad = p["kc"], p["oc_pad"]
    raw = np.frombuffer(np.ascontiguousarray(data).tobytes()[:p["panels_bytes"]], "<u8")
    rows = raw.reshape(oc_pad // _BLOCK, kc, _BLOCK).transpose(0, 2, 1).reshape(oc_pad, kc)[:oc]
    bits = np.unpackbits(np.ascontiguousarray(rows).view(np.uint8).reshape(oc, kc * 8), axis=-1,
                         bitorder="little").astype(bool)
    if p["compact"]:
        bits = bits[:, :t * in_channels].reshape(oc, t, in_channels)
    else:
        bits = bits.reshape(oc, t, w * 64)[..., :in_channels]
    return _canonical(bits, kh, kw)


# ---- WeightBin layouts ---------------------------------------------------------------------

def _neg_matrix(weight: np.ndarray, in_channels: int) -> np.ndarray:
    """[OC, K] bools, k = (kh*KW + kw)*IC + ic (the im2col order)."""
    return _sign_bits(weight, in_channels).reshape(weight.shape[0], -1)


def _pad_bytes(a: np.ndarray) -> np.ndarray:
    b = np.ascontiguousarray(a).view(np.uint8).ravel()
    return np.concatenate([b, np.zeros((-b.size) % _ALIGN, np.uint8)])


def wbin_bytes(layout: int, shape: tuple[int, ...], in_channels: int) -> int:
    oc, kh, kw, _ = shape
    k = kh * kw * in_channels
    if layout == WBIN_BITS32:
        return _round(-(-oc // 32) * k * 4, _ALIGN)
    return _round(-(-oc // 128) * -(-k // 32) * 128 * 4, _ALIGN)


def pack_wbin(weight: np.ndarray, in_channels: int, layout: int) -> np.ndarray:
    """Canonical weight bits -> wbin_bits32 or wbin_lut128g4 bytes (uint8)."""
    neg = _neg_matrix(weight, in_channels)
    oc, k = neg.shape
    if layout == WBIN_BITS32:
        p = -(-oc // 32)
        m = np.zeros((p * 32, k), bool)
        m[:oc] = neg
        # panel p, word k: bit j = column 32p + j
        words = np.packbits(m.reshape(p, 32, k).transpose(0, 2, 1), axis=-1, bitorder="little")
        return _pad_bytes(words.copy().view("<u4"))
    if layout == WBIN_LUT128G4:
        p, nw = -(-oc // 128), -(-k // 32)
        m = np.zeros((p * 128, nw * 32), bool)
        m[:oc, :k] = neg
        # panel p, word step s, lane c: bit i = column 128p + c, k = 32s + i (G = 4: nibble q
        # bit i' is k 32s + 4q + i', i.e. bit 4q + i')
        words = np.packbits(m.reshape(p, 128, nw, 32).transpose(0, 2, 1, 3), axis=-1,
                            bitorder="little")
        return _pad_bytes(words.copy().view("<u4"))
    raise ValueError(f"not a conv_wbin layout: {layout}")


def unpack_wbin(data: np.ndarray, shape: tuple[int, ...], in_channels: int, layout: int) -> np.ndarray:
    oc, kh, kw, _ = shape
    k = kh * kw * in_channels
    raw = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
    if layout == WBIN_BITS32:
        p = -(-oc // 32)
        b = raw[:p * k * 4].reshape(p, k, 4)
        m = np.unpackbits(b, axis=-1, bitorder="little").astype(bool)  # [p, k, 32]
        neg = m.transpose(0, 2, 1).reshape(p * 32, k)[:oc]
    elif layout == WBIN_LUT128G4:
        p, nw = -(-oc // 128), -(-k // 32)
        b = raw[:p * nw * 128 * 4].reshape(p, nw, 128, 4)
        m = np.unpackbits(b, axis=-1, bitorder="little").astype(bool)  # [p, nw, 128, 32]
        neg = m.transpose(0, 2, 1, 3).reshape(p * 128, nw * 32)[:oc, :k]
    else:
        raise ValueError(f"not a conv_wbin layout: {layout}")
    return _canonical(neg.reshape(oc, kh * kw, in_channels), kh, kw)


# ---- f32_panel32 ---------------------------------------------------------------------------

def f32_panel_bytes(shape: tuple[int, ...]) -> int:
    oc, ic, kh, kw = shape
    return -(-oc // 32) * kh * kw * ic * 32 * 4


def pack_f32_panel32(weight: np.ndarray) -> np.ndarray:
    """Float OIHW weights -> f32_panel32 (float32 [ceil(OC/32)][K][32], K = (kh*KW + kw)*IC + ic;
    columns past OC are 0), as Conv2dF32 packs them."""
    oc, ic, kh, kw = weight.shape
    k = kh * kw * ic
    p = -(-oc // 32)
    b = np.zeros((p * 32, k), "<f4")
    b[:oc] = np.ascontiguousarray(weight, dtype="<f4").transpose(0, 2, 3, 1).reshape(oc, k)
    return np.ascontiguousarray(b.reshape(p, 32, k).transpose(0, 2, 1))


def unpack_f32_panel32(data: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    oc, ic, kh, kw = shape
    k = kh * kw * ic
    p = -(-oc // 32)
    b = np.frombuffer(np.ascontiguousarray(data).tobytes(), "<f4").reshape(p, k, 32)
    return np.ascontiguousarray(b.transpose(0, 2, 1).reshape(p * 32, k)[:oc].reshape(oc, kh, kw, ic)
                                .transpose(0, 3, 1, 2))
