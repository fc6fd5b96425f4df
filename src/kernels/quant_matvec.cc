// The 512-bit decode kernels of quant_matvec.h, compiled with per-function target
// attributes (the build is baseline x86-64) and used only after a run-time CPU check.
#include "kernels/quant_matvec.h"

#include "core/error.h"
#include "kernels/quant_dot.h"
#include "tensor/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TULU_MATVEC_X86 1
#endif

namespace tulu {

namespace {

constexpr size_t kPairBytes = 64;  // activation bytes per pair of blocks (one zmm)
constexpr size_t kLanes = 16;      // int32 / float lanes per zmm

// Byte j of the 64-byte pair layout of Q4_0 holds element element_of[j] of block
// block_of[j]: low nibbles (elements 0..15) of a and b, then high nibbles (16..31) of a
// and b — the order in which one byte permute and one mask unpack the stored bytes.
size_t q4_block_of(size_t j) {
  return (j / 16) % 2;
}
size_t q4_element_of(size_t j) {
  return (j % 16) + (j >= 32 ? 16 : 0);
}

bool cpu_has_vbmi_path() {
#ifdef TULU_MATVEC_X86
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  }();
  return has;
#else
  return false;
#endif
}

}  // namespace

bool QuantMatvecRow::prepare(DType weight_type, const BlockQ8_0* x, size_t blocks) {
  TULU_CHECK(weight_type == DType::Q8_0 || weight_type == DType::Q4_0,
             "quant_matvec: weights must be Q8_0 or Q4_0, not ", dtype_name(weight_type));
  if (quant_dot_path() != QuantPath::kVnni || !cpu_has_vbmi_path()) return false;
  weight_type_ = weight_type;
  blocks_ = blocks;
  x_ = x;
  const size_t pairs = blocks / 2;
  bytes_.resize(pairs * kPairBytes);
  corrections_.resize(pairs * kLanes);
  scales_.resize(pairs * kLanes);
  const bool q4 = weight_type == DType::Q4_0;
  for (size_t p = 0; p < pairs; ++p) {
    const BlockQ8_0* pair = x + 2 * p;
    int8_t* bytes = bytes_.data() + p * kPairBytes;
    for (size_t j = 0; j < kPairBytes; ++j)
      bytes[j] = q4 ? pair[q4_block_of(j)].qs[q4_element_of(j)] : pair[j / 32].qs[j % 32];
    const float d[2] = {f16_to_f32(pair[0].d), f16_to_f32(pair[1].d)};
    for (size_t lane = 0; lane < kLanes; ++lane) {
      int32_t sum = 0;
      for (size_t k = 0; k < 4; ++k) sum += bytes[4 * lane + k];
      // Q4_0's high nibbles are multiplied in place (16·h, Q4Pair::load), so their lanes
      // hold 16× the integer sum, offset 16·8 included, and take d_x/16: a power of two,
      // so every lane's product sum·(d_w·d_x) rounds exactly as ggml's does.
      const bool high_nibbles = q4 && lane >= kLanes / 2;
      corrections_[p * kLanes + lane] = -(q4 && !high_nibbles ? 8 : 128) * sum;
      const size_t block = q4 ? q4_block_of(4 * lane) : lane / 8;
      scales_[p * kLanes + lane] = high_nibbles ? d[block] / 16 : d[block];
    }
  }
  return true;
}

#ifdef TULU_MATVEC_X86
namespace {

#define TULU_VBMI                                                             \
  __attribute__((                                                             \
      target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi," \
             "avx512dq")))

// GCC 12's plain forms of these intrinsics start from _mm512_undefined_*, which
// -Wmaybe-uninitialized reports once inlined; the zero-masked forms are the same
// instructions with every lane kept.
TULU_VBMI inline __m512 to_float(__m512i v) {
  return _mm512_maskz_cvtepi32_ps(0xFFFF, v);
}
TULU_VBMI inline float sum_lanes(__m512 v) {
  const __m256 half = _mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xFF, v, 0),
                                    _mm512_maskz_extractf32x8_ps(0xFF, v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The pair's 16 lane scales d_w (f16 words of the weight blocks, permuted into lanes),
// times the activation's lane scales.
TULU_VBMI inline __m512 lane_scales(__m512i raw, __m512i word_index, const float* x_scales) {
  const __m256i words = _mm512_castsi512_si256(_mm512_permutexvar_epi16(word_index, raw));
  return _mm512_mul_ps(_mm512_cvtph_ps(words), _mm512_loadu_ps(x_scales));
}

struct Q4Pair {
  static constexpr size_t kBlockBytes = sizeof(BlockQ4_0);
  // 36 bytes: a load of 64 would run past the end of the matrix on its last pair.
  static constexpr __mmask64 kLoadMask = (__mmask64{1} << (2 * kBlockBytes)) - 1;
  __m512i byte_index, nibble_mask, word_index;
  TULU_VBMI Q4Pair() {
    alignas(64) uint8_t bytes[64], masks[64];
    alignas(64) uint16_t words[32];
    for (size_t j = 0; j < 64; ++j) {
      bytes[j] = static_cast<uint8_t>(q4_block_of(j) * kBlockBytes + 2 + j % 16);
      masks[j] = j < 32 ? 0x0F : 0xF0;
    }
    for (size_t w = 0; w < 32; ++w)  // word 0 = d of block a, word 9 = d of block b (byte 18)
      words[w] = static_cast<uint16_t>(w < 16 && q4_block_of(4 * w) == 1 ? 9 : 0);
    byte_index = _mm512_load_si512(bytes);
    nibble_mask = _mm512_load_si512(masks);
    word_index = _mm512_load_si512(words);
  }
  // Unsigned weight bytes of the pair at p in the Q4_0 lane order — low nibbles l as l,
  // high nibbles h as 16·h (no shift: QuantMatvecRow scales those lanes by 1/16) — and
  // the raw bytes.
  TULU_VBMI inline __m512i load(const uint8_t* p, __m512i* raw) const {
    *raw = _mm512_maskz_loadu_epi8(kLoadMask, p);
    return _mm512_and_si512(_mm512_permutexvar_epi8(byte_index, *raw), nibble_mask);
  }
};

struct Q8Pair {
  static constexpr size_t kBlockBytes = sizeof(BlockQ8_0);
  __m512i word_index, sign_flip;
  TULU_VBMI Q8Pair() {
    alignas(64) uint16_t words[32];
    for (size_t w = 0; w < 32; ++w) words[w] = static_cast<uint16_t>(w >= 8 && w < 16 ? 17 : 0);
    word_index = _mm512_load_si512(words);
    sign_flip = _mm512_set1_epi8(static_cast<char>(0x80));
  }
  // Unsigned weight bytes (q + 128) of the pair at p, natural order, and its first 64 bytes.
  TULU_VBMI inline __m512i load(const uint8_t* p, __m512i* raw) const {
    *raw = _mm512_loadu_si512(p);
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kBlockBytes + 2));
    return _mm512_xor_si512(_mm512_maskz_inserti64x4(0xFF, _mm512_zextsi256_si512(a), b, 1),
                            sign_flip);
  }
};

// NW weight rows (NW = 4, or 1 for the last rows) over every whole pair.
template <int NW, typename Pair>
TULU_VBMI void rows_vbmi(const uint8_t* w, size_t row_bytes, size_t pairs, const int8_t* x_bytes,
                         const int32_t* corrections, const float* x_scales, const Pair& layout,
                         float* out) {
  constexpr size_t kPairWeightBytes = 2 * Pair::kBlockBytes;
  const uint8_t* ahead = w + 8 * row_bytes;  // two 4-row tiles ahead
  __m512 acc[NW];
  for (auto& a : acc) a = _mm512_setzero_ps();
  for (size_t p = 0; p < pairs; ++p) {
    for (size_t line = 0; line < NW * kPairWeightBytes; line += 64)
      _mm_prefetch(reinterpret_cast<const char*>(ahead + p * NW * kPairWeightBytes + line),
                   _MM_HINT_T0);
    const __m512i xv = _mm512_loadu_si512(x_bytes + p * kPairBytes);
    const __m512i correction = _mm512_loadu_si512(corrections + p * kLanes);
#pragma GCC unroll 4
    for (int i = 0; i < NW; ++i) {
      __m512i raw;
      const __m512i wu =
          layout.load(w + static_cast<size_t>(i) * row_bytes + p * kPairWeightBytes, &raw);
      const __m512i sum = _mm512_dpbusd_epi32(correction, wu, xv);
      acc[i] = _mm512_fmadd_ps(to_float(sum),
                               lane_scales(raw, layout.word_index, x_scales + p * kLanes), acc[i]);
    }
  }
  for (int i = 0; i < NW; ++i) out[i] = sum_lanes(acc[i]);
}

template <typename Pair, typename WBlock>
TULU_VBMI void matvec_vbmi(const uint8_t* w, size_t rows, size_t blocks, const int8_t* x_bytes,
                           const int32_t* corrections, const float* x_scales, const BlockQ8_0* x,
                           float (*dot)(const WBlock*, const BlockQ8_0*, size_t), float* out) {
  static const Pair layout;
  const size_t row_bytes = blocks * Pair::kBlockBytes, pairs = blocks / 2;
  size_t r = 0;
  for (; r + 4 <= rows; r += 4)
    rows_vbmi<4>(w + r * row_bytes, row_bytes, pairs, x_bytes, corrections, x_scales, layout,
                 out + r);
  for (; r < rows; ++r)
    rows_vbmi<1>(w + r * row_bytes, row_bytes, pairs, x_bytes, corrections, x_scales, layout,
                 out + r);
  if (blocks % 2 == 1)  // the odd last block: the pairwise dot on that block alone
    for (r = 0; r < rows; ++r)
      out[r] += dot(reinterpret_cast<const WBlock*>(w + r * row_bytes) + (blocks - 1),
                    x + (blocks - 1), 1);
}

}  // namespace

void quant_matvec_rows(const void* weights, size_t rows, const QuantMatvecRow& x, float* out) {
  const auto* w = static_cast<const uint8_t*>(weights);
  if (x.weight_type_ == DType::Q4_0)
    matvec_vbmi<Q4Pair, BlockQ4_0>(w, rows, x.blocks_, x.bytes_.data(), x.corrections_.data(),
                                   x.scales_.data(), x.x_, vec_dot_q4_0_q8_0, out);
  else
    matvec_vbmi<Q8Pair, BlockQ8_0>(w, rows, x.blocks_, x.bytes_.data(), x.corrections_.data(),
                                   x.scales_.data(), x.x_, vec_dot_q8_0_q8_0, out);
}

#else  // not x86: prepare() always declines, so this is never reached

void quant_matvec_rows(const void*, size_t, const QuantMatvecRow&, float*) {
  fail("quant_matvec_rows: no AVX-512 path on this CPU");
}

#endif

}  // namespace tulu
