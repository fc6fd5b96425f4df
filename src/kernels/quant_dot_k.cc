// K-quant integer dot products of quant_dot_k.h: scalar references (ggml's generic code)
// and x86 SIMD paths compiled with per-function target attributes (the rest of the build
// stays baseline x86-64), chosen at run time by CPU feature checks; and matmul_k_quant.
#include "kernels/quant_dot_k.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/quant_dot.h"
#include "tensor/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TULU_QUANT_K_X86 1
#endif

namespace tulu {

float vec_dot_q4_K_q8_K_ref(const BlockQ4_K* w, const BlockQ8_K* x, size_t blocks) {
  float sums[8] = {};
  float sumf = 0.0f;
  for (size_t b = 0; b < blocks; ++b) {
    uint8_t scale[8], min[8];
    for (int g = 0; g < 8; ++g) q4_k_scale_min(g, w[b].scales, &scale[g], &min[g]);
    // Sub-block g holds elements 32g .. 32g+31: the low nibbles of qs[32·(g/2) ..] for
    // even g, the high nibbles for odd g.
    int32_t lanes[8] = {};
    for (int g = 0; g < 8; ++g) {
      const uint8_t* q = w[b].qs + 32 * (g / 2);
      for (int t = 0; t < 32; ++t) {
        const int v = g % 2 == 0 ? q[t] & 0x0F : q[t] >> 4;
        lanes[t % 8] += scale[g] * (v * x[b].qs[32 * g + t]);
      }
    }
    int32_t min_sum = 0;
    for (int k = 0; k < 16; ++k) min_sum += x[b].bsums[k] * min[k / 2];
    const float d = f16_to_f32(w[b].d) * x[b].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(lanes[l]);
    const float dmin = f16_to_f32(w[b].dmin) * x[b].d;
    sumf -= dmin * static_cast<float>(min_sum);
  }
  for (float s : sums) sumf += s;
  return sumf;
}

float vec_dot_q6_K_q8_K_ref(const BlockQ6_K* w, const BlockQ8_K* x, size_t blocks) {
  float sums[8] = {};
  for (size_t b = 0; b < blocks; ++b) {
    // The 6-bit quants minus 32 in element order (as dequantize_q6_k lays them out).
    int8_t q[kSuperBlock];
    for (int n = 0; n < 2; ++n) {
      const uint8_t* ql = w[b].ql + 64 * n;
      const uint8_t* qh = w[b].qh + 32 * n;
      int8_t* a = q + 128 * n;
      for (int l = 0; l < 32; ++l) {
        a[l + 0] = static_cast<int8_t>(((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32);
        a[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32);
        a[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
        a[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
      }
    }
    int32_t lanes[8] = {};
    for (size_t i = 0; i < kSuperBlock; ++i)
      lanes[i % 8] += w[b].scales[i / 16] * (q[i] * x[b].qs[i]);
    const float d = f16_to_f32(w[b].d) * x[b].d;
    for (int l = 0; l < 8; ++l) sums[l] += d * static_cast<float>(lanes[l]);
  }
  float sumf = 0.0f;
  for (float s : sums) sumf += s;
  return sumf;
}

namespace {

std::atomic<bool> g_prefetch{true};

}  // namespace

void set_k_quant_prefetch(bool enabled) {
  g_prefetch = enabled;
}

#ifdef TULU_QUANT_K_X86
// GCC 12 flags the `__Y = __Y` "undefined" pass-through operand inside the AVX-512
// intrinsics (cvtepi32_ps, inserti64x4, reduce_add_ps, ...) as uninitialized once inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace {

#define TULU_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TULU_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

TULU_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

TULU_AVX2 inline float horizontal_sum(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <typename T>
TULU_AVX2 inline __m256i load256(const T* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// The 8 six-bit scales and 8 mins of a Q4_K block, one byte each (byte g = sub-block g),
// as q4_k_scale_min gives them, from the 12 packed bytes read as 3 little-endian words:
// scales 0–3 / mins 0–3 are the low 6 bits of bytes 0–3 / 4–7; scales and mins 4–7 take
// their low 4 bits from bytes 8–11 and their top 2 bits from the top of bytes 0–3 / 4–7.
struct Q4KScales {
  uint64_t scales, mins;
};
inline Q4KScales unpack_q4_k_scales(const uint8_t* packed) {
  uint32_t u[3];
  std::memcpy(u, packed, sizeof(u));
  const uint32_t scales_low = u[0] & 0x3F3F3F3Fu, mins_low = u[1] & 0x3F3F3F3Fu;
  const uint32_t scales_high = (u[2] & 0x0F0F0F0Fu) | (((u[0] >> 6) & 0x03030303u) << 4);
  const uint32_t mins_high = ((u[2] >> 4) & 0x0F0F0F0Fu) | (((u[1] >> 6) & 0x03030303u) << 4);
  return {scales_low | (uint64_t{scales_high} << 32), mins_low | (uint64_t{mins_high} << 32)};
}

// 4 float lanes of dmin·(sub-block pair sums of x · mins): Σ of the 4 lanes is
// dmin·M_b up to rounding. bsums[2g] + bsums[2g+1] is sub-block g's sum of x.
TULU_AVX2 inline __m128 q4_k_min_term(const BlockQ8_K& x, uint64_t mins, float dmin, __m128 acc) {
  const __m256i bsums = load256(x.bsums);
  const __m128i sub_block_sums =
      _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1));
  const __m128i mins16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(mins)));
  return _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(_mm_madd_epi16(sub_block_sums, mins16)),
                      acc);
}

// Every kernel below takes one weight row and NX (1–4) activation rows x + r·blocks and
// writes out[r]: the weight blocks are unpacked once for all NX rows (prompt batches), and
// row r goes through the same operations in the same order whatever NX is, so out[r] is
// bit-identical to the NX = 1 result. Integer sums are split over two accumulators (even
// and odd chunks) to shorten the dependency chains; integer addition is exact.

template <int NX>
TULU_AVX2 void dot_q4_k_avx2(const BlockQ4_K* w, const BlockQ8_K* x, size_t blocks, float* out) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc[NX];
  __m128 acc_min[NX];
  for (int r = 0; r < NX; ++r) {
    acc[r] = _mm256_setzero_ps();
    acc_min[r] = _mm_setzero_ps();
  }
  for (size_t b = 0; b < blocks; ++b) {
    const Q4KScales s = unpack_q4_k_scales(w[b].scales);
    uint8_t scale[8];
    std::memcpy(scale, &s.scales, 8);
    const float dw = _cvtsh_ss(w[b].d), dminw = _cvtsh_ss(w[b].dmin);
    __m256i sumi[2][NX];
    for (int r = 0; r < NX; ++r) sumi[0][r] = sumi[1][r] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i raw = load256(w[b].qs + 32 * j);
      const __m256i low = _mm256_and_si256(raw, low4);
      const __m256i high = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
      const __m256i scale_low = _mm256_set1_epi16(scale[2 * j]);
      const __m256i scale_high = _mm256_set1_epi16(scale[2 * j + 1]);
#pragma GCC unroll 4
      for (int r = 0; r < NX; ++r) {
        const int8_t* q8 = x[static_cast<size_t>(r) * blocks + b].qs + 64 * j;
        const __m256i p_low = _mm256_maddubs_epi16(low, load256(q8));
        const __m256i p_high = _mm256_maddubs_epi16(high, load256(q8 + 32));
        sumi[j % 2][r] = _mm256_add_epi32(sumi[j % 2][r],
                                          _mm256_add_epi32(_mm256_madd_epi16(p_low, scale_low),
                                                           _mm256_madd_epi16(p_high, scale_high)));
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NX; ++r) {
      const BlockQ8_K& xb = x[static_cast<size_t>(r) * blocks + b];
      acc_min[r] = q4_k_min_term(xb, s.mins, dminw * xb.d, acc_min[r]);
      acc[r] =
          _mm256_fmadd_ps(_mm256_set1_ps(dw * xb.d),
                          _mm256_cvtepi32_ps(_mm256_add_epi32(sumi[0][r], sumi[1][r])), acc[r]);
    }
  }
  for (int r = 0; r < NX; ++r) out[r] = horizontal_sum(acc[r]) - horizontal_sum(acc_min[r]);
}

// 8 int32 lanes of −32·Σ_k sc_k·bsums_k: the offset of the unsigned Q6_K quants.
TULU_AVX2 inline __m256i q6_k_offset(__m256i scales16, const BlockQ8_K& x) {
  const __m256i prod = _mm256_madd_epi16(scales16, load256(x.bsums));
  return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(prod, 5));
}

// Unsigned 6-bit quants of elements 128n + 32g .. +31 of a Q6_K block.
TULU_AVX2 inline __m256i q6_k_quants(const BlockQ6_K& w, int n, int g) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), high2 = _mm256_set1_epi8(0x30);
  const __m256i ql = load256(w.ql + 64 * n + 32 * (g % 2));
  const __m256i h = load256(w.qh + 32 * n);
  const __m256i low =
      g < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
  // Bits 2g, 2g + 1 of each qh byte moved to bits 4, 5.
  const __m256i high = g == 0   ? _mm256_slli_epi16(h, 4)
                       : g == 1 ? _mm256_slli_epi16(h, 2)
                       : g == 2 ? h
                                : _mm256_srli_epi16(h, 2);
  return _mm256_or_si256(low, _mm256_and_si256(high, high2));
}

template <int NX>
TULU_AVX2 void dot_q6_k_avx2(const BlockQ6_K* w, const BlockQ8_K* x, size_t blocks, float* out) {
  __m256 acc[NX];
  for (int r = 0; r < NX; ++r) acc[r] = _mm256_setzero_ps();
  for (size_t b = 0; b < blocks; ++b) {
    const __m128i scales8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].scales));
    const __m256i scales16 = _mm256_cvtepi8_epi16(scales8);
    const float dw = _cvtsh_ss(w[b].d);
    __m256i sumi[2][NX];
    for (int r = 0; r < NX; ++r) {
      sumi[0][r] = q6_k_offset(scales16, x[static_cast<size_t>(r) * blocks + b]);
      sumi[1][r] = _mm256_setzero_si256();
    }
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) {  // chunk c = 4n + g: elements 32c .. 32c + 31
      const int n = c / 4, g = c % 4;
      const __m256i q = q6_k_quants(w[b], n, g);
      // Scales 2c (elements 0–15 of the chunk) and 2c + 1 (16–31), as int16.
      const int64_t k = 2 * c;
      const __m128i pick = _mm_set_epi64x((k + 1) * 0x0101010101010101LL, k * 0x0101010101010101LL);
      const __m256i s = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(scales8, pick));
#pragma GCC unroll 4
      for (int r = 0; r < NX; ++r) {
        const __m256i p =
            _mm256_maddubs_epi16(q, load256(x[static_cast<size_t>(r) * blocks + b].qs + 32 * c));
        sumi[c % 2][r] = _mm256_add_epi32(sumi[c % 2][r], _mm256_madd_epi16(p, s));
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NX; ++r)
      acc[r] =
          _mm256_fmadd_ps(_mm256_set1_ps(dw * x[static_cast<size_t>(r) * blocks + b].d),
                          _mm256_cvtepi32_ps(_mm256_add_epi32(sumi[0][r], sumi[1][r])), acc[r]);
  }
  for (int r = 0; r < NX; ++r) out[r] = horizontal_sum(acc[r]);
}

// 512-bit: one zmm of weights covers 64 consecutive activations (two Q4_K sub-blocks, four
// Q6_K ones); vpdpwssd applies the int16 scales to the maddubs pair sums and accumulates.
template <int NX>
TULU_VNNI void dot_q4_k_vnni(const BlockQ4_K* w, const BlockQ8_K* x, size_t blocks, float* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  // Word lanes 0–15 take scale 2j, 16–31 scale 2j + 1.
  __m512i pick[4];
  for (int j = 0; j < 4; ++j)
    pick[j] = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(static_cast<int16_t>(2 * j)),
                                      _mm512_set1_epi16(static_cast<int16_t>(2 * j + 1)));
  __m512 acc[NX];
  __m128 acc_min[NX];
  for (int r = 0; r < NX; ++r) {
    acc[r] = _mm512_setzero_ps();
    acc_min[r] = _mm_setzero_ps();
  }
  for (size_t b = 0; b < blocks; ++b) {
    const Q4KScales s = unpack_q4_k_scales(w[b].scales);
    const __m512i scales16 = _mm512_zextsi128_si512(
        _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(s.scales))));
    const float dw = _cvtsh_ss(w[b].d), dminw = _cvtsh_ss(w[b].dmin);
    __m512i sumi[2][NX];
    for (int r = 0; r < NX; ++r) sumi[0][r] = sumi[1][r] = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i raw = load256(w[b].qs + 32 * j);
      const __m512i nibbles = _mm512_and_si512(
          _mm512_inserti64x4(_mm512_castsi256_si512(raw), _mm256_srli_epi16(raw, 4), 1), low4);
      const __m512i scale = _mm512_permutexvar_epi16(pick[j], scales16);
#pragma GCC unroll 4
      for (int r = 0; r < NX; ++r) {
        const __m512i p = _mm512_maddubs_epi16(
            nibbles, _mm512_loadu_si512(x[static_cast<size_t>(r) * blocks + b].qs + 64 * j));
        sumi[j % 2][r] = _mm512_dpwssd_epi32(sumi[j % 2][r], p, scale);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NX; ++r) {
      const BlockQ8_K& xb = x[static_cast<size_t>(r) * blocks + b];
      acc_min[r] = q4_k_min_term(xb, s.mins, dminw * xb.d, acc_min[r]);
      acc[r] =
          _mm512_fmadd_ps(_mm512_set1_ps(dw * xb.d),
                          _mm512_cvtepi32_ps(_mm512_add_epi32(sumi[0][r], sumi[1][r])), acc[r]);
    }
  }
  for (int r = 0; r < NX; ++r) out[r] = _mm512_reduce_add_ps(acc[r]) - horizontal_sum(acc_min[r]);
}

template <int NX>
TULU_VNNI void dot_q6_k_vnni(const BlockQ6_K* w, const BlockQ8_K* x, size_t blocks, float* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F), high2 = _mm512_set1_epi8(0x30);
  const __mmask32 upper = 0xFFFF0000u;
  // qh shifts per word: the low 256 bits serve elements 0–31 / 64–95 of a half block, the
  // high 256 bits elements 32–63 / 96–127 (high-bit pairs 0, 1 / 2, 3 of each qh byte).
  const __m512i shift_left =
      _mm512_mask_blend_epi16(upper, _mm512_set1_epi16(4), _mm512_set1_epi16(2));
  const __m512i shift_right =
      _mm512_mask_blend_epi16(upper, _mm512_setzero_si512(), _mm512_set1_epi16(2));
  // pick[i]: word lane l takes scale 4i + l/8 (16 elements = 8 pair sums per scale).
  __m512i pick[4];
  for (int i = 0; i < 4; ++i) {
    alignas(64) int16_t idx[32];
    for (int l = 0; l < 32; ++l) idx[l] = static_cast<int16_t>(4 * i + l / 8);
    pick[i] = _mm512_load_si512(idx);
  }
  __m512 acc[NX];
  for (int r = 0; r < NX; ++r) acc[r] = _mm512_setzero_ps();
  for (size_t b = 0; b < blocks; ++b) {
    const __m128i scales8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].scales));
    const __m256i scales16_256 = _mm256_cvtepi8_epi16(scales8);
    const __m512i scales16 = _mm512_zextsi256_si512(scales16_256);
    const float dw = _cvtsh_ss(w[b].d);
    __m512i sumi[2][NX];
    for (int r = 0; r < NX; ++r) {
      sumi[0][r] =
          _mm512_zextsi256_si512(q6_k_offset(scales16_256, x[static_cast<size_t>(r) * blocks + b]));
      sumi[1][r] = _mm512_setzero_si512();
    }
#pragma GCC unroll 2
    for (int n = 0; n < 2; ++n) {
      const __m512i ql = _mm512_loadu_si512(w[b].ql + 64 * n);
      const __m512i h = _mm512_broadcast_i64x4(load256(w[b].qh + 32 * n));
      const __m512i q_first = _mm512_or_si512(
          _mm512_and_si512(ql, low4), _mm512_and_si512(_mm512_sllv_epi16(h, shift_left), high2));
      const __m512i q_second =
          _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                          _mm512_and_si512(_mm512_srlv_epi16(h, shift_right), high2));
      const __m512i scale_first = _mm512_permutexvar_epi16(pick[2 * n], scales16);
      const __m512i scale_second = _mm512_permutexvar_epi16(pick[2 * n + 1], scales16);
#pragma GCC unroll 4
      for (int r = 0; r < NX; ++r) {
        const int8_t* q8 = x[static_cast<size_t>(r) * blocks + b].qs + 128 * n;
        const __m512i p_first = _mm512_maddubs_epi16(q_first, _mm512_loadu_si512(q8));
        const __m512i p_second = _mm512_maddubs_epi16(q_second, _mm512_loadu_si512(q8 + 64));
        sumi[0][r] = _mm512_dpwssd_epi32(sumi[0][r], p_first, scale_first);
        sumi[1][r] = _mm512_dpwssd_epi32(sumi[1][r], p_second, scale_second);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < NX; ++r)
      acc[r] =
          _mm512_fmadd_ps(_mm512_set1_ps(dw * x[static_cast<size_t>(r) * blocks + b].d),
                          _mm512_cvtepi32_ps(_mm512_add_epi32(sumi[0][r], sumi[1][r])), acc[r]);
  }
  for (int r = 0; r < NX; ++r) out[r] = _mm512_reduce_add_ps(acc[r]);
}


// Calls body(std::integral_constant<int, NX>) for NX = the chunks of 4, then the rest.
template <typename Body>
void in_row_chunks(int x_rows, size_t blocks, const BlockQ8_K*& x, float*& out, Body body) {
  for (; x_rows >= 4; x_rows -= 4, x += 4 * blocks, out += 4)
    body(std::integral_constant<int, 4>{});
  if (x_rows == 3) body(std::integral_constant<int, 3>{});
  if (x_rows == 2) body(std::integral_constant<int, 2>{});
  if (x_rows == 1) body(std::integral_constant<int, 1>{});
}

}  // namespace

void vec_dot_q4_K_q8_K_rows(const BlockQ4_K* w, const BlockQ8_K* x, size_t blocks, int x_rows,
                            float* out) {
  switch (quant_dot_path()) {
    case QuantPath::kVnni:
      return in_row_chunks(x_rows, blocks, x, out,
                           [&](auto nx) { dot_q4_k_vnni<decltype(nx)::value>(w, x, blocks, out); });
    case QuantPath::kAvx2:
      return in_row_chunks(x_rows, blocks, x, out,
                           [&](auto nx) { dot_q4_k_avx2<decltype(nx)::value>(w, x, blocks, out); });
    case QuantPath::kGeneric:
      break;
  }
  for (int r = 0; r < x_rows; ++r)
    out[r] = vec_dot_q4_K_q8_K_ref(w, x + static_cast<size_t>(r) * blocks, blocks);
}

void vec_dot_q6_K_q8_K_rows(const BlockQ6_K* w, const BlockQ8_K* x, size_t blocks, int x_rows,
                            float* out) {
  switch (quant_dot_path()) {
    case QuantPath::kVnni:
      return in_row_chunks(x_rows, blocks, x, out,
                           [&](auto nx) { dot_q6_k_vnni<decltype(nx)::value>(w, x, blocks, out); });
    case QuantPath::kAvx2:
      return in_row_chunks(x_rows, blocks, x, out,
                           [&](auto nx) { dot_q6_k_avx2<decltype(nx)::value>(w, x, blocks, out); });
    case QuantPath::kGeneric:
      break;
  }
  for (int r = 0; r < x_rows; ++r)
    out[r] = vec_dot_q6_K_q8_K_ref(w, x + static_cast<size_t>(r) * blocks, blocks);
}


#else  // not x86: the scalar references are the implementation

void vec_dot_q4_K_q8_K_rows(const BlockQ4_K* w, const BlockQ8_K* x, size_t blocks, int x_rows,
                            float* out) {
  for (int r = 0; r < x_rows; ++r)
    out[r] = vec_dot_q4_K_q8_K_ref(w, x + static_cast<size_t>(r) * blocks, blocks);
}
void vec_dot_q6_K_q8_K_rows(const BlockQ6_K* w, const BlockQ8_K* x, size_t blocks, int x_rows,
                            float* out) {
  for (int r = 0; r < x_rows; ++r)
    out[r] = vec_dot_q6_K_q8_K_ref(w, x + static_cast<size_t>(r) * blocks, blocks);
}

#endif

float vec_dot_q4_K_q8_K(const BlockQ4_K* w, const BlockQ8_K* x, size_t blocks) {
  float out = 0.0f;
  vec_dot_q4_K_q8_K_rows(w, x, blocks, 1, &out);
  return out;
}

float vec_dot_q6_K_q8_K(const BlockQ6_K* w, const BlockQ8_K* x, size_t blocks) {
  float out = 0.0f;
  vec_dot_q6_K_q8_K_rows(w, x, blocks, 1, &out);
  return out;
}

namespace {

// Output rows per pool task, and how many weight rows ahead the prefetch runs: K-quant
// rows are 144–210 bytes per 256 inputs (1–6 KB), too short for the hardware prefetcher.
constexpr size_t kMinRowsPerTask = 16;
constexpr size_t kPrefetchRowsAhead = 2;

// Activation rows per rows-kernel call: the weight row's blocks are unpacked once per call.
constexpr int kRowsPerCall = 16;

template <typename WBlock, void (*DotRows)(const WBlock*, const BlockQ8_K*, size_t, int, float*)>
void matmul_q8_k_activations(const float* x, int64_t rows, const TensorView& w, float* y,
                             ThreadPool& pool) {
  const int64_t out = w.dim(0), in = w.dim(1);
  const auto blocks = static_cast<size_t>(in) / kSuperBlock;
  std::vector<BlockQ8_K> xq(static_cast<size_t>(rows) * blocks);
  for (int64_t r = 0; r < rows; ++r)
    quantize_row_q8_K_ref(x + r * in, xq.data() + static_cast<size_t>(r) * blocks,
                          static_cast<size_t>(in));
  const auto* weights = static_cast<const WBlock*>(w.data);
  const bool prefetch = !force_generic_kernels() && g_prefetch.load();
  const size_t row_bytes = blocks * sizeof(WBlock);
  pool.parallel_for(static_cast<size_t>(out), kMinRowsPerTask, [&](size_t begin, size_t end) {
    float products[kRowsPerCall];
    for (size_t o = begin; o < end; ++o) {
      if (prefetch && o + kPrefetchRowsAhead < end) {
        const char* ahead =
            reinterpret_cast<const char*>(weights + (o + kPrefetchRowsAhead) * blocks);
        for (size_t line = 0; line < row_bytes; line += 64) __builtin_prefetch(ahead + line, 0, 3);
      }
      const WBlock* row = weights + o * blocks;
      for (int64_t r = 0; r < rows; r += kRowsPerCall) {
        const auto n = static_cast<int>(std::min<int64_t>(kRowsPerCall, rows - r));
        DotRows(row, xq.data() + static_cast<size_t>(r) * blocks, blocks, n, products);
        for (int i = 0; i < n; ++i) y[(r + i) * out + static_cast<int64_t>(o)] = products[i];
      }
    }
  });
}

}  // namespace

void matmul_k_quant(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool) {
  TULU_CHECK(w.shape.size() == 2 && w.dim(1) % static_cast<int64_t>(kSuperBlock) == 0,
             "matmul: ", dtype_name(w.dtype), " weight ", shape_to_string(w.shape),
             " rows are not whole blocks of ", kSuperBlock);
  switch (w.dtype) {
    case DType::Q4_K:
      return matmul_q8_k_activations<BlockQ4_K, vec_dot_q4_K_q8_K_rows>(x, rows, w, y, pool);
    case DType::Q6_K:
      return matmul_q8_k_activations<BlockQ6_K, vec_dot_q6_K_q8_K_rows>(x, rows, w, y, pool);
    default:
      break;
  }
  fail("matmul_k_quant: ", dtype_name(w.dtype), " is not Q4_K or Q6_K");
}

}  // namespace tulu
