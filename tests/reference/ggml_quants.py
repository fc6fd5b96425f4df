"""Independent numpy reference of ggml's block quantizers and dequantizers.

Written from the published semantics of ggml-quants.c (quantize_row_q8_0_ref,
quantize_row_q4_0_ref, dequantize_row_q8_0/q4_0/q4_K/q6_K) as gguf-py's quants.py
restates them in numpy; every operation is done in float32 as the C code does, so the
results are expected to match tulu's scalar codecs bit for bit.

Usage: ggml_quants.py DIR
  reads   DIR/rows.f32  (float32, length a multiple of 32)
          DIR/q4_k.bin  (whole 144-byte Q4_K blocks), DIR/q6_k.bin (whole 210-byte Q6_K blocks)
  writes  DIR/q8_0.bin, DIR/q4_0.bin (quantized rows.f32),
          DIR/q8_0.deq.f32, DIR/q4_0.deq.f32, DIR/q4_k.deq.f32, DIR/q6_k.deq.f32 (dequantized)
"""
import os
import sys

import numpy as np

F32 = np.float32
QK = 32
QK_K = 256


def roundf(v):
    """C roundf: halves away from zero."""
    a = np.abs(v)
    floored = np.floor(a)
    return np.sign(v) * (floored + np.floor(F32(2) * (a - floored)))


def inverse_or_zero(d):
    with np.errstate(divide="ignore"):
        return np.where(d == 0, F32(0), F32(1) / d).astype(F32)


def quantize_q8_0(x):
    blocks = x.reshape(-1, QK).astype(F32)
    d = (np.abs(blocks).max(axis=1, keepdims=True) / F32(127)).astype(F32)
    q = roundf((blocks * inverse_or_zero(d)).astype(F32)).astype(np.int8)
    out = np.empty((blocks.shape[0], 34), dtype=np.uint8)
    out[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def quantize_q4_0(x):
    blocks = x.reshape(-1, QK).astype(F32)
    first_largest = np.abs(blocks).argmax(axis=1)  # argmax keeps the first of ties
    signed_max = blocks[np.arange(blocks.shape[0]), first_largest][:, None]
    d = (signed_max / F32(-8)).astype(F32)
    v = (blocks * inverse_or_zero(d)).astype(F32) + F32(8.5)
    q = np.minimum(np.trunc(v.astype(F32)), 15).astype(np.uint8)
    out = np.empty((blocks.shape[0], 18), dtype=np.uint8)
    out[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def f16_at(raw, column):
    return raw[:, column:column + 2].copy().view(np.float16).astype(F32)


def dequantize_q8_0(data):
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 34)
    q = raw[:, 2:].copy().view(np.int8).astype(F32)
    return (q * f16_at(raw, 0)).astype(F32).ravel()


def dequantize_q4_0(data):
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 18)
    qs = raw[:, 2:]
    q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int32) - 8
    return (q.astype(F32) * f16_at(raw, 0)).astype(F32).ravel()


def q4_k_scales_mins(scales):
    """The 8 six-bit (scale, min) pairs of each block: get_scale_min_k4 for j = 0..7."""
    s = scales.astype(np.uint8)
    sc = np.empty((s.shape[0], 8), dtype=np.uint8)
    mn = np.empty((s.shape[0], 8), dtype=np.uint8)
    sc[:, :4] = s[:, 0:4] & 63
    mn[:, :4] = s[:, 4:8] & 63
    sc[:, 4:] = (s[:, 8:12] & 15) | ((s[:, 0:4] >> 6) << 4)
    mn[:, 4:] = (s[:, 8:12] >> 4) | ((s[:, 4:8] >> 6) << 4)
    return sc.astype(F32), mn.astype(F32)


def dequantize_q4_k(data):
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 144)
    d, dmin = f16_at(raw, 0), f16_at(raw, 2)
    sc, mn = q4_k_scales_mins(raw[:, 4:16])
    scale = (d * sc).astype(F32)        # [blocks, 8]: sub-block g of 32 elements
    offset = (dmin * mn).astype(F32)
    qs = raw[:, 16:].reshape(-1, 4, 32)  # 4 chunks of 64 elements: low nibbles, then high
    q = np.stack([qs & 15, qs >> 4], axis=2).reshape(-1, 8, 32).astype(F32)
    return (scale[:, :, None] * q - offset[:, :, None]).astype(F32).ravel()


def dequantize_q6_k(data):
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 210)
    ql = raw[:, 0:128].astype(np.int32).reshape(-1, 2, 64)
    qh = raw[:, 128:192].astype(np.int32).reshape(-1, 2, 32)
    sc = raw[:, 192:208].copy().view(np.int8).astype(F32).reshape(-1, 2, 8)
    d = f16_at(raw, 208)[:, :, None]
    out = np.empty((raw.shape[0], 2, 128), dtype=F32)
    for part, (low, shift_low, shift_high) in enumerate(
            [(slice(0, 32), 0, 0), (slice(32, 64), 0, 2), (slice(0, 32), 4, 4), (slice(32, 64), 4, 6)]):
        q = ((ql[:, :, low] >> shift_low) & 15) | (((qh >> shift_high) & 3) << 4)
        q = (q - 32).astype(F32)                           # [blocks, 2, 32]
        for half in range(2):                              # 16 elements share a scale
            scale = (d[:, :, 0] * sc[:, :, part * 2 + half]).astype(F32)[:, :, None]
            cols = slice(part * 32 + half * 16, part * 32 + half * 16 + 16)
            out[:, :, cols] = (scale * q[:, :, half * 16:half * 16 + 16]).astype(F32)
    return out.ravel()


def main():
    directory = sys.argv[1]
    path = lambda name: os.path.join(directory, name)
    rows = np.fromfile(path("rows.f32"), dtype=F32)
    outputs = {}
    for name, quantize, dequantize in [("q8_0", quantize_q8_0, dequantize_q8_0),
                                       ("q4_0", quantize_q4_0, dequantize_q4_0)]:
        data = quantize(rows)
        outputs[name + ".bin"] = data
        outputs[name + ".deq.f32"] = dequantize(data).tobytes()
    for name, dequantize in [("q4_k", dequantize_q4_k), ("q6_k", dequantize_q6_k)]:
        with open(path(name + ".bin"), "rb") as f:
            outputs[name + ".deq.f32"] = dequantize(f.read()).tobytes()
    for name, data in outputs.items():
        with open(path(name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
