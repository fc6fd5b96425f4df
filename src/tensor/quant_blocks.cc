#include "tensor/quant_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "tensor/half.h"

namespace tulu {

namespace {

// (int8_t) cast of ggml's q4_0 rule, defined for every input: finite values in range
// truncate toward zero as the C cast does; NaN (from NaN input) gives 0.
int truncate_to_int8(float v) {
  if (!(v > -129.0f)) return v != v ? 0 : -128;
  if (v >= 128.0f) return 127;
  return static_cast<int>(v);
}

// roundf(v) as int8: half away from zero, saturated (only NaN/inf input could reach the
// saturation: finite x·id is at most 127 in magnitude).
int round_to_int8(float v) {
  if (v != v) return 0;
  const float r = std::round(v);
  return r > 127.0f ? 127 : r < -128.0f ? -128 : static_cast<int>(r);
}

void dequantize_q8_0(const BlockQ8_0* x, size_t blocks, float* y) {
  for (size_t b = 0; b < blocks; ++b) {
    const float d = f16_to_f32(x[b].d);
    for (size_t j = 0; j < kQuantBlock; ++j)
      y[b * kQuantBlock + j] = static_cast<float>(x[b].qs[j]) * d;
  }
}

void dequantize_q4_0(const BlockQ4_0* x, size_t blocks, float* y) {
  constexpr size_t half = kQuantBlock / 2;
  for (size_t b = 0; b < blocks; ++b) {
    const float d = f16_to_f32(x[b].d);
    float* out = y + b * kQuantBlock;
    for (size_t j = 0; j < half; ++j) {
      out[j] = static_cast<float>((x[b].qs[j] & 0x0F) - 8) * d;
      out[j + half] = static_cast<float>((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_q4_k(const BlockQ4_K* x, size_t blocks, float* y) {
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* q = x[b].qs;
    const float d = f16_to_f32(x[b].d);
    const float min = f16_to_f32(x[b].dmin);
    int is = 0;
    for (size_t j = 0; j < kSuperBlock; j += 64) {
      uint8_t sc = 0, m = 0;
      q4_k_scale_min(is + 0, x[b].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      q4_k_scale_min(is + 1, x[b].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

void dequantize_q6_k(const BlockQ6_K* x, size_t blocks, float* y) {
  for (size_t b = 0; b < blocks; ++b) {
    const float d = f16_to_f32(x[b].d);
    const uint8_t* ql = x[b].ql;
    const uint8_t* qh = x[b].qh;
    const int8_t* sc = x[b].scales;
    for (size_t n = 0; n < kSuperBlock; n += 128) {
      // ggml's loop, split so that it vectorizes: the 6-bit quants of the 4 groups of 32
      // outputs first, then y = (d·scale)·q with one scale per 16 outputs (same operations
      // in the same order, so the same bits).
      int8_t q[4][32];
      for (int l = 0; l < 32; ++l) {
        q[0][l] = static_cast<int8_t>(((ql[l + 0] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32);
        q[1][l] = static_cast<int8_t>(((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32);
        q[2][l] = static_cast<int8_t>(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        q[3][l] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
      for (int g = 0; g < 4; ++g) {
        for (int half = 0; half < 2; ++half) {
          const float scale = d * static_cast<float>(sc[half + 2 * g]);
          for (int l = half * 16; l < half * 16 + 16; ++l)
            y[g * 32 + l] = scale * static_cast<float>(q[g][l]);
        }
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

}  // namespace

void q4_k_scale_min(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
  }
}

void quantize_row_q8_0_ref(const float* x, BlockQ8_0* y, size_t n) {
  for (size_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0.0f;
    for (size_t j = 0; j < kQuantBlock; ++j) amax = std::fmax(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    for (size_t j = 0; j < kQuantBlock; ++j)
      y[b].qs[j] = static_cast<int8_t>(round_to_int8(xb[j] * id));
  }
}

void quantize_row_q4_0_ref(const float* x, BlockQ4_0* y, size_t n) {
  constexpr size_t half = kQuantBlock / 2;
  for (size_t b = 0; b < n / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0.0f, max = 0.0f;
    for (size_t j = 0; j < kQuantBlock; ++j) {
      if (amax < std::fabs(xb[j])) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    for (size_t j = 0; j < half; ++j) {
      const int q0 = std::min(15, truncate_to_int8(xb[j] * id + 8.5f));
      const int q1 = std::min(15, truncate_to_int8(xb[j + half] * id + 8.5f));
      y[b].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | (q1 << 4));
    }
  }
}

void quantize_row_q8_K_ref(const float* x, BlockQ8_K* y, size_t n) {
  for (size_t b = 0; b < n / kSuperBlock; ++b) {
    const float* xb = x + b * kSuperBlock;
    float amax = 0.0f, max = 0.0f;
    for (size_t j = 0; j < kSuperBlock; ++j) {
      if (std::fabs(xb[j]) > amax) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    std::memset(&y[b], 0, sizeof(BlockQ8_K));
    if (amax == 0.0f) continue;
    const float iscale = -127.0f / max;
    for (size_t j = 0; j < kSuperBlock; ++j) {
      const float v = iscale * xb[j];
      // ggml's nearest_int (adding 1.5·2²³) is round-half-even for |v| < 2²²; |v| ≤ 127
      // here except for NaN (from NaN or infinite input), which it maps to 0.
      const int q = v != v ? 0 : static_cast<int>(std::nearbyint(std::clamp(v, -128.0f, 128.0f)));
      y[b].qs[j] = static_cast<int8_t>(std::min(127, q));
    }
    for (size_t k = 0; k < kSuperBlock / 16; ++k) {
      int sum = 0;
      for (size_t j = 0; j < 16; ++j) sum += y[b].qs[k * 16 + j];
      y[b].bsums[k] = static_cast<int16_t>(sum);
    }
    y[b].d = 1.0f / iscale;
  }
}

void dequantize_row_q8_K(const BlockQ8_K* x, size_t n, float* y) {
  for (size_t b = 0; b < n / kSuperBlock; ++b)
    for (size_t j = 0; j < kSuperBlock; ++j)
      y[b * kSuperBlock + j] = static_cast<float>(x[b].qs[j]) * x[b].d;
}

void dequantize_row(const void* src, DType dtype, size_t n, float* dst) {
  const size_t blocks = n / dtype_block_elements(dtype);
  switch (dtype) {
    case DType::F32:
      if (n != 0) std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(static_cast<const uint16_t*>(src)[i]);
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(static_cast<const uint16_t*>(src)[i]);
      return;
    case DType::Q8_0:
      return dequantize_q8_0(static_cast<const BlockQ8_0*>(src), blocks, dst);
    case DType::Q4_0:
      return dequantize_q4_0(static_cast<const BlockQ4_0*>(src), blocks, dst);
    case DType::Q4_K:
      return dequantize_q4_k(static_cast<const BlockQ4_K*>(src), blocks, dst);
    case DType::Q6_K:
      return dequantize_q6_k(static_cast<const BlockQ6_K*>(src), blocks, dst);
    case DType::Q4_0_R16:
    case DType::Q8_0_R16:
      break;
  }
  fail("dequantize_row: ", dtype_name(dtype),
       " interleaves 16 rows, so a row is not contiguous (use to_f32 or tensor/quant_repack.h)");
}

void encode_row(const float* x, size_t n, DType dtype, void* dst) {
  switch (dtype) {
    case DType::F32:
      if (n != 0) std::memcpy(dst, x, n * sizeof(float));
      return;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = f32_to_f16(x[i]);
      return;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) static_cast<uint16_t*>(dst)[i] = f32_to_bf16(x[i]);
      return;
    case DType::Q8_0:
      return quantize_row_q8_0_ref(x, static_cast<BlockQ8_0*>(dst), n);
    case DType::Q4_0:
      return quantize_row_q4_0_ref(x, static_cast<BlockQ4_0*>(dst), n);
    case DType::Q4_K:
    case DType::Q6_K:
    case DType::Q4_0_R16:
    case DType::Q8_0_R16:
      break;
  }
  fail("encode_row: no encoder for ", dtype_name(dtype));
}

float dequantize_element(const void* data, DType dtype, size_t i) {
  if (!dtype_is_quantized(dtype)) {
    float v = 0.0f;
    dequantize_row(static_cast<const uint8_t*>(data) + i * dtype_size(dtype), dtype, 1, &v);
    return v;
  }
  const size_t block = dtype_block_elements(dtype);
  float values[kSuperBlock];
  dequantize_row(static_cast<const uint8_t*>(data) + (i / block) * dtype_block_bytes(dtype), dtype,
                 block, values);
  return values[i % block];
}

}  // namespace tulu
