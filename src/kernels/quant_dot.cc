// Integer dot products of quant_dot.h: scalar references and x86 SIMD paths compiled with
// per-function target attributes (the rest of the build stays baseline x86-64) and chosen
// at run time by CPU feature checks.
#include "kernels/quant_dot.h"

#include <algorithm>
#include <atomic>

#include "kernels/dispatch.h"
#include "tensor/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TULU_QUANT_X86 1
#endif

namespace tulu {

float vec_dot_q8_0_q8_0_ref(const BlockQ8_0* w, const BlockQ8_0* x, size_t blocks) {
  float sumf = 0.0f;
  for (size_t b = 0; b < blocks; ++b) {
    int sumi = 0;
    for (size_t j = 0; j < kQuantBlock; ++j) sumi += w[b].qs[j] * x[b].qs[j];
    sumf += static_cast<float>(sumi) * (f16_to_f32(w[b].d) * f16_to_f32(x[b].d));
  }
  return sumf;
}

float vec_dot_q4_0_q8_0_ref(const BlockQ4_0* w, const BlockQ8_0* x, size_t blocks) {
  constexpr size_t half = kQuantBlock / 2;
  float sumf = 0.0f;
  for (size_t b = 0; b < blocks; ++b) {
    int sumi0 = 0, sumi1 = 0;
    for (size_t j = 0; j < half; ++j) {
      const int v0 = (w[b].qs[j] & 0x0F) - 8;
      const int v1 = (w[b].qs[j] >> 4) - 8;
      sumi0 += v0 * x[b].qs[j];
      sumi1 += v1 * x[b].qs[j + half];
    }
    sumf += static_cast<float>(sumi0 + sumi1) * (f16_to_f32(w[b].d) * f16_to_f32(x[b].d));
  }
  return sumf;
}

#ifdef TULU_QUANT_X86
namespace {

#define TULU_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TULU_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

TULU_AVX2 inline float block_scale(uint16_t dw, uint16_t dx) {
  return _cvtsh_ss(dw) * _cvtsh_ss(dx);
}

TULU_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// The 32 signed 4-bit weights of a Q4_0 block as int8 in element order: low nibbles are
// elements 0..15 (low 128 bits), high nibbles elements 16..31.
TULU_AVX2 inline __m256i unpack_q4_0(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  return _mm256_sub_epi8(_mm256_and_si256(both, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
}

// 8 int32 partial sums of Σ w_j·x_j over 32 int8 pairs (|x_j| ≤ 127): |w| as unsigned
// times x with w's sign moved onto it, so the unsigned×signed instructions apply.
TULU_AVX2 inline __m256i block_dot_avx2(__m256i w, __m256i x) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

TULU_VNNI inline __m256i block_dot_vnni(__m256i w, __m256i x) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(w, w),
                             _mm256_sign_epi8(x, w));
}

TULU_AVX2 inline __m256i load32(const int8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// One body for both instruction sets: BlockDot is block_dot_avx2 or block_dot_vnni,
// LoadW turns a weight block into 32 int8.
#define TULU_DEFINE_DOT(NAME, ATTR, WBLOCK, LOADW, BLOCKDOT)                                      \
  ATTR float NAME(const WBLOCK* w, const BlockQ8_0* x, size_t blocks) {                           \
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                                \
    size_t b = 0;                                                                                 \
    for (; b + 2 <= blocks; b += 2) {                                                             \
      const __m256i s0 = BLOCKDOT(LOADW(w[b]), load32(x[b].qs));                                  \
      const __m256i s1 = BLOCKDOT(LOADW(w[b + 1]), load32(x[b + 1].qs));                          \
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(block_scale(w[b].d, x[b].d)), _mm256_cvtepi32_ps(s0), \
                             acc0);                                                               \
      acc1 = _mm256_fmadd_ps(_mm256_set1_ps(block_scale(w[b + 1].d, x[b + 1].d)),                 \
                             _mm256_cvtepi32_ps(s1), acc1);                                       \
    }                                                                                             \
    for (; b < blocks; ++b) {                                                                     \
      const __m256i s0 = BLOCKDOT(LOADW(w[b]), load32(x[b].qs));                                  \
      acc0 = _mm256_fmadd_ps(_mm256_set1_ps(block_scale(w[b].d, x[b].d)), _mm256_cvtepi32_ps(s0), \
                             acc0);                                                               \
    }                                                                                             \
    return horizontal_sum(_mm256_add_ps(acc0, acc1));                                             \
  }

#define TULU_LOAD_Q8(block) load32((block).qs)
#define TULU_LOAD_Q4(block) unpack_q4_0((block).qs)

TULU_DEFINE_DOT(dot_q8_avx2, TULU_AVX2, BlockQ8_0, TULU_LOAD_Q8, block_dot_avx2)
TULU_DEFINE_DOT(dot_q4_avx2, TULU_AVX2, BlockQ4_0, TULU_LOAD_Q4, block_dot_avx2)
TULU_DEFINE_DOT(dot_q8_vnni, TULU_VNNI, BlockQ8_0, TULU_LOAD_Q8, block_dot_vnni)
TULU_DEFINE_DOT(dot_q4_vnni, TULU_VNNI, BlockQ4_0, TULU_LOAD_Q4, block_dot_vnni)

// Weight block as unsigned bytes u with w = u − offset.
TULU_AVX2 inline __m256i unsigned_block(const BlockQ4_0& b) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F));
}
TULU_AVX2 inline __m256i unsigned_block(const BlockQ8_0& b) {
  return _mm256_xor_si256(load32(b.qs), _mm256_set1_epi8(static_cast<char>(0x80)));
}
constexpr int weight_offset(const BlockQ4_0*) {
  return 8;
}
constexpr int weight_offset(const BlockQ8_0*) {
  return 128;
}

// 4 weight rows × NX activation rows, out[i·NX + j]; 4 + 2·NX + 4·NX ymm registers live
// (AVX-512VL gives 32).
template <int NX, typename WBlock>
TULU_VNNI void tile_vnni(const WBlock* w, const BlockQ8_0* x, size_t blocks, float* out) {
  constexpr int offset = weight_offset(static_cast<const WBlock*>(nullptr));
  const __m256i offset_bytes = _mm256_set1_epi8(static_cast<char>(offset));
  __m256 acc[4][NX];
  for (auto& row : acc)
    for (auto& a : row) a = _mm256_setzero_ps();
  // The 4 rows are contiguous and short (1–6 KB): too short for the hardware prefetcher
  // to lock on, so the tile two tiles ahead is prefetched as this one is read.
  const char* ahead = reinterpret_cast<const char*>(w + 8 * blocks);
  constexpr size_t kTileBytesPerBlock = 4 * sizeof(WBlock);
  for (size_t b = 0; b < blocks; ++b) {
    if constexpr (NX == 1)  // prompt tiles reread their weights from cache: no prefetch
      for (size_t line = 0; line < kTileBytesPerBlock; line += 64)
        _mm_prefetch(ahead + b * kTileBytesPerBlock + line, _MM_HINT_T0);
    __m256i wu[4];
    float dw[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      wu[i] = unsigned_block(w[static_cast<size_t>(i) * blocks + b]);
      dw[i] = _cvtsh_ss(w[static_cast<size_t>(i) * blocks + b].d);
    }
#pragma GCC unroll 4
    for (int j = 0; j < NX; ++j) {
      const BlockQ8_0& xb = x[static_cast<size_t>(j) * blocks + b];
      const __m256i xv = load32(xb.qs);
      // −offset·Σ of each lane's 4 activation bytes: the lane then sums Σ (u − offset)·x,
      // an exact partial of the block's signed sum (a correction kept in one lane would
      // make that lane's fp32 conversion round at the scale of offset·Σx).
      const __m256i correction = _mm256_sub_epi32(
          _mm256_setzero_si256(), _mm256_dpbusd_epi32(_mm256_setzero_si256(), offset_bytes, xv));
      const float dx = _cvtsh_ss(xb.d);
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        const __m256i sum = _mm256_dpbusd_epi32(correction, wu[i], xv);
        acc[i][j] = _mm256_fmadd_ps(_mm256_set1_ps(dw[i] * dx), _mm256_cvtepi32_ps(sum), acc[i][j]);
      }
    }
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < NX; ++j) out[i * NX + j] = horizontal_sum(acc[i][j]);
}

QuantPath detect_path() {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                    __builtin_cpu_supports("f16c");
  if (avx2 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw"))
    return QuantPath::kVnni;
  return avx2 ? QuantPath::kAvx2 : QuantPath::kGeneric;
}

std::atomic<int> g_path_limit{static_cast<int>(QuantPath::kVnni)};

}  // namespace

QuantPath quant_cpu_best_path() {
  static const QuantPath detected = detect_path();
  return detected;
}

namespace {

QuantPath current_path() {
  const QuantPath detected = quant_cpu_best_path();
  if (force_generic_kernels()) return QuantPath::kGeneric;
  return static_cast<QuantPath>(std::min(static_cast<int>(detected), g_path_limit.load()));
}

}  // namespace

float vec_dot_q8_0_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, size_t blocks) {
  switch (current_path()) {
    case QuantPath::kVnni:
      return dot_q8_vnni(w, x, blocks);
    case QuantPath::kAvx2:
      return dot_q8_avx2(w, x, blocks);
    case QuantPath::kGeneric:
      break;
  }
  return vec_dot_q8_0_q8_0_ref(w, x, blocks);
}

float vec_dot_q4_0_q8_0(const BlockQ4_0* w, const BlockQ8_0* x, size_t blocks) {
  switch (current_path()) {
    case QuantPath::kVnni:
      return dot_q4_vnni(w, x, blocks);
    case QuantPath::kAvx2:
      return dot_q4_avx2(w, x, blocks);
    case QuantPath::kGeneric:
      break;
  }
  return vec_dot_q4_0_q8_0_ref(w, x, blocks);
}

void set_quant_dot_path_limit(QuantPath best) {
  g_path_limit = static_cast<int>(best);
}

QuantPath quant_dot_path() {
  return current_path();
}

template <typename WBlock>
bool tile(const WBlock* w, const BlockQ8_0* x, size_t blocks, int x_rows, float* out) {
  if (current_path() != QuantPath::kVnni || (x_rows != 1 && x_rows != 4)) return false;
  if (x_rows == 4)
    tile_vnni<4>(w, x, blocks, out);
  else
    tile_vnni<1>(w, x, blocks, out);
  return true;
}

bool quant_tile_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, size_t blocks, int x_rows,
                     float* out) {
  return tile(w, x, blocks, x_rows, out);
}

bool quant_tile_q4_0(const BlockQ4_0* w, const BlockQ8_0* x, size_t blocks, int x_rows,
                     float* out) {
  return tile(w, x, blocks, x_rows, out);
}

std::string quant_dot_target_name() {
  switch (current_path()) {
    case QuantPath::kVnni:
      return "AVX512-VNNI";
    case QuantPath::kAvx2:
      return "AVX2";
    case QuantPath::kGeneric:
      break;
  }
  return "generic";
}

#else  // not x86: the scalar references are the implementation

float vec_dot_q8_0_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, size_t blocks) {
  return vec_dot_q8_0_q8_0_ref(w, x, blocks);
}
float vec_dot_q4_0_q8_0(const BlockQ4_0* w, const BlockQ8_0* x, size_t blocks) {
  return vec_dot_q4_0_q8_0_ref(w, x, blocks);
}
std::string quant_dot_target_name() {
  return "generic";
}
bool quant_tile_q8_0(const BlockQ8_0*, const BlockQ8_0*, size_t, int, float*) {
  return false;
}
bool quant_tile_q4_0(const BlockQ4_0*, const BlockQ8_0*, size_t, int, float*) {
  return false;
}
void set_quant_dot_path_limit(QuantPath) {}
QuantPath quant_dot_path() {
  return QuantPath::kGeneric;
}
QuantPath quant_cpu_best_path() {
  return QuantPath::kGeneric;
}

#endif

}  // namespace tulu
