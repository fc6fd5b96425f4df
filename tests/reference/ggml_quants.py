"""Independent numpy reference of ggml's block quantizers and dequantizers.

Written from the published semantics of ggml-quants.c (quantize_row_q8_0_ref,
quantize_row_q4_0_ref, dequantize_row_q8_0/q4_0/q4_K/q6_K) as gguf-py's quants.py
restates them in numpy; every operation is done in float32 as the C code does, so the
results are expected to match tulu's scalar codecs bit for bit.

Also quantize_row_q8_K_ref and ggml's generic vec_dot_q4_K_q8_K / vec_dot_q6_K_q8_K with
their fp32 operation order (8 lane sums), so those results too are expected bit for bit.

Usage: ggml_quants.py DIR
  reads   DIR/rows.f32  (float32, length a multiple of 32)
          DIR/q4_k.bin  (whole 144-byte Q4_K blocks), DIR/q6_k.bin (whole 210-byte Q6_K blocks)
  writes  DIR/q8_0.bin, DIR/q4_0.bin (quantized rows.f32),
          DIR/q8_0.deq.f32, DIR/q4_0.deq.f32, DIR/q4_k.deq.f32, DIR/q6_k.deq.f32 (dequantized)
          when rows.f32 holds >= 256 values: DIR/q8_k.bin (its leading whole 256-value blocks
          quantized to Q8_K), DIR/q8_k.deq.f32, and DIR/q4_k_q8_k.dot.f32,
          DIR/q6_k_q8_k.dot.f32: with m = min(K-quant blocks, Q8_K blocks), the dot of block i
          with Q8_K block i for i < m, then the dot of the first m blocks as one row
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


QK8_K_BYTES = 4 + QK_K + QK_K // 16 * 2  # float d, int8 qs[256], int16 bsums[16]


def quantize_q8_k(x):
    """quantize_row_q8_K_ref: max = first element of largest |x| (sign kept), iscale =
    -127/max, q = min(127, nearest_int(iscale*x)) (round half to even; NaN -> 0),
    bsums = sums of 16 quants, d = 1/iscale; an all-zero block is all zero."""
    blocks = x.reshape(-1, QK_K).astype(F32)
    first_largest = np.abs(blocks).argmax(axis=1)
    signed_max = blocks[np.arange(blocks.shape[0]), first_largest][:, None]
    zero = np.abs(signed_max) == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iscale = np.where(zero, F32(0), F32(-127) / signed_max).astype(F32)
        v = (iscale * blocks).astype(F32)
        q = np.minimum(np.where(np.isnan(v), F32(0), np.rint(v)), 127).astype(np.int8)
        d = np.where(zero, F32(0), F32(1) / iscale).astype(F32)
    bsums = q.astype(np.int32).reshape(-1, 16, 16).sum(axis=2).astype(np.int16)
    out = np.empty((blocks.shape[0], QK8_K_BYTES), dtype=np.uint8)
    out[:, 0:4] = d.view(np.uint8).reshape(-1, 4)
    out[:, 4:4 + QK_K] = q.view(np.uint8)
    out[:, 4 + QK_K:] = bsums.view(np.uint8).reshape(-1, 32)
    return out.tobytes()


def q8_k_fields(data):
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, QK8_K_BYTES)
    d = raw[:, 0:4].copy().view(F32)[:, 0]
    q = raw[:, 4:4 + QK_K].copy().view(np.int8).astype(np.int64)
    bsums = raw[:, 4 + QK_K:].copy().view(np.int16).astype(np.int64)
    return d, q, bsums


def dequantize_q8_k(data):
    d, q, _ = q8_k_fields(data)
    return (q.astype(F32) * d[:, None]).astype(F32).ravel()


def generic_dot(d, lanes, dmin=None, min_sums=None):
    """ggml's generic K-quant vec_dot order: sums[l] += d_b*lanes_b[l] per block, sumf -=
    dmin_b*min_sum_b per block (Q4_K), then sumf += sums[l] for l = 0..7, all in fp32."""
    sums = np.zeros(8, dtype=F32)
    sumf = F32(0)
    for b in range(len(d)):
        sums = (sums + (d[b] * lanes[b].astype(F32)).astype(F32)).astype(F32)
        if dmin is not None:
            sumf = F32(sumf - F32(dmin[b] * F32(min_sums[b])))
    for l in range(8):
        sumf = F32(sumf + sums[l])
    return sumf


def vec_dot_q4_k_q8_k(w_data, x_data):
    raw = np.frombuffer(w_data, dtype=np.uint8).reshape(-1, 144)
    xd, xq, bsums = q8_k_fields(x_data)
    sc, mn = q4_k_scales_mins(raw[:, 4:16])
    qs = raw[:, 16:].reshape(-1, 4, 32)
    q = np.stack([qs & 15, qs >> 4], axis=2).reshape(-1, 8, 32).astype(np.int64)
    products = sc.astype(np.int64)[:, :, None] * q * xq.reshape(-1, 8, 32)
    lanes = products.reshape(-1, QK_K // 8, 8).sum(axis=1)        # lane = index mod 8
    min_sums = (bsums * np.repeat(mn.astype(np.int64), 2, axis=1)).sum(axis=1)
    d = (f16_at(raw, 0)[:, 0] * xd).astype(F32)
    dmin = (f16_at(raw, 2)[:, 0] * xd).astype(F32)
    return generic_dot(d, lanes, dmin, min_sums)


def vec_dot_q6_k_q8_k(w_data, x_data):
    raw = np.frombuffer(w_data, dtype=np.uint8).reshape(-1, 210)
    xd, xq, _ = q8_k_fields(x_data)
    ql = raw[:, 0:128].astype(np.int64).reshape(-1, 2, 64)
    qh = raw[:, 128:192].astype(np.int64).reshape(-1, 2, 32)
    sc = raw[:, 192:208].copy().view(np.int8).astype(np.int64)
    parts = [((ql[:, :, 0:32] & 15) | ((qh & 3) << 4)), ((ql[:, :, 32:64] & 15) | (((qh >> 2) & 3) << 4)),
             ((ql[:, :, 0:32] >> 4) | (((qh >> 4) & 3) << 4)), ((ql[:, :, 32:64] >> 4) | (((qh >> 6) & 3) << 4))]
    q = np.concatenate(parts, axis=2).reshape(-1, QK_K) - 32       # element order
    products = np.repeat(sc, 16, axis=1) * q * xq
    lanes = products.reshape(-1, QK_K // 8, 8).sum(axis=1)
    d = (f16_at(raw, 208)[:, 0] * xd).astype(F32)
    return generic_dot(d, lanes)


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
    if rows.size >= QK_K:
        q8_k = quantize_q8_k(rows[:rows.size // QK_K * QK_K])
        outputs["q8_k.bin"] = q8_k
        outputs["q8_k.deq.f32"] = dequantize_q8_k(q8_k).tobytes()
        for name, block_bytes, dot in [("q4_k", 144, vec_dot_q4_k_q8_k), ("q6_k", 210, vec_dot_q6_k_q8_k)]:
            with open(path(name + ".bin"), "rb") as f:
                weights = f.read()
            m = min(len(weights) // block_bytes, len(q8_k) // QK8_K_BYTES)
            dots = [dot(weights[i * block_bytes:(i + 1) * block_bytes],
                        q8_k[i * QK8_K_BYTES:(i + 1) * QK8_K_BYTES]) for i in range(m)]
            dots.append(dot(weights[:m * block_bytes], q8_k[:m * QK8_K_BYTES]))
            outputs[name + "_q8_k.dot.f32"] = np.array(dots, dtype=F32).tobytes()
    for name, data in outputs.items():
        with open(path(name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
