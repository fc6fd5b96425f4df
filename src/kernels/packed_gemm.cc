// AVX-512 prompt-batch GEMM of packed_gemm.h. Compiled with per-function target
// attributes (the build stays baseline x86-64) and entered only after a run-time CPU check.
#include "kernels/packed_gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "tensor/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TULU_PGEMM_X86 1
#endif

namespace tulu {

bool packed_gemm_available() {
#ifdef TULU_PGEMM_X86
  static const bool cpu = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  return cpu && !force_generic_kernels();
#else
  return false;
#endif
}

bool packed_gemm_bf16_available() {
#ifdef TULU_PGEMM_X86
  static const bool cpu = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
  }();
  return cpu && packed_gemm_available();
#else
  return false;
#endif
}

#ifdef TULU_PGEMM_X86
namespace {

#define TULU_PGEMM_TARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#define TULU_PGEMM_BF16_TARGET \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

constexpr int64_t kRows = 12;   // activation rows per microkernel (12 × 2 accumulators)
constexpr int64_t kLanes = 16;  // fp32 lanes per zmm
constexpr int64_t kCols = 32;   // weight rows per panel: two zmm of output columns
constexpr size_t kAlign = 64;
constexpr int64_t kPrefetchBytes = 512;  // how far ahead each weight row is prefetched

// A 64-byte-aligned view of a thread-local buffer of at least n 4-byte elements (fp32, or
// two bf16 in the bf16-input mode).
template <typename T>
T* aligned_words(std::vector<float>& buffer, size_t n) {
  static_assert(sizeof(T) == sizeof(float));
  buffer.resize(n + kAlign / sizeof(float));
  const auto address = reinterpret_cast<uintptr_t>(buffer.data());
  return reinterpret_cast<T*>(buffer.data() + (kAlign - address % kAlign) % kAlign / sizeof(float));
}

// Calls pack(g, r, src) for every row slot r < 12 of every 12-row group g of x (rows of
// `in` elements), split over the pool by groups; src is null for the slots past `rows`
// (the zero padding of the last group).
template <typename Pack>
void for_each_row_slot(const float* x, int64_t rows, int64_t in, ThreadPool& pool,
                       const Pack& pack) {
  const int64_t groups = (rows + kRows - 1) / kRows;
  pool.parallel_for(static_cast<size_t>(groups), 1, [&](size_t begin, size_t end) {
    for (auto g = static_cast<int64_t>(begin); g < static_cast<int64_t>(end); ++g)
      for (int64_t r = 0; r < kRows; ++r)
        pack(g, r, g * kRows + r < rows ? x + (g * kRows + r) * in : nullptr);
  });
}

// x rows [12g, 12g + 12) → xp[g][k][12], rows past `rows` as zeros.
void pack_rows(const float* x, int64_t rows, int64_t in, float* xp, ThreadPool& pool) {
  for_each_row_slot(x, rows, in, pool, [&](int64_t g, int64_t r, const float* src) {
    float* dst = xp + g * in * kRows + r;
    for (int64_t k = 0; k < in; ++k) dst[k * kRows] = src != nullptr ? src[k] : 0.0f;
  });
}

// Bf16-input mode: x rows [12g, 12g + 12) rounded to bf16 (to nearest even) →
// xp[g][p][12], one dword per pair of elements (2p in the low half, 2p + 1 in the high; an
// odd `in` ends with a zero), rows past `rows` as zeros.
void pack_rows_bf16(const float* x, int64_t rows, int64_t in, uint32_t* xp, ThreadPool& pool) {
  const int64_t pairs = (in + 1) / 2;
  for_each_row_slot(x, rows, in, pool, [&](int64_t g, int64_t r, const float* src) {
    uint32_t* dst = xp + g * pairs * kRows + r;
    for (int64_t p = 0; p < pairs; ++p) {
      uint32_t pair = 0;
      if (src != nullptr) {
        pair = f32_to_bf16(src[2 * p]);
        if (2 * p + 1 < in) pair |= static_cast<uint32_t>(f32_to_bf16(src[2 * p + 1])) << 16;
      }
      dst[p * kRows] = pair;
    }
  });
}

// In-register transpose: r[i] lane j ← r[j] lane i.
TULU_PGEMM_TARGET inline void transpose16(__m512 r[kLanes]) {
  __m512 t[kLanes], u[kLanes];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  // u[4i + j] holds, in 128-bit lane L, element 4L + j of rows 4i .. 4i + 3.
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xDD);
    t[8 + j] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xDD);
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
    r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xDD);
  }
}

// n ≤ 16 stored elements at p, widened to fp32 lanes (the rest zero; masked loads never
// touch memory past element n).
TULU_PGEMM_TARGET inline __m512 load_widened(DType dtype, const uint8_t* p, __mmask16 n_mask) {
  if (dtype == DType::F32) return _mm512_maskz_loadu_ps(n_mask, p);
  const __m256i h = _mm256_maskz_loadu_epi16(n_mask, p);
  if (dtype == DType::F16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));  // BF16
}

// Weight rows [first, first + valid) (valid ≤ 16; missing lanes are zeros), widened to
// fp32, into lane half `half` of the panel: panel[k·32 + 16·half + lane] = W[first + lane, k].
// Each row is read 16 elements at a time and 16 rows are transposed in registers: row
// loads are sequential (rows `in` apart map to the same L1 set, so a gather across them
// misses L1 at every k).
TULU_PGEMM_TARGET void pack_half_panel(const TensorView& w, int64_t first, int64_t valid,
                                       int half, float* panel) {
  const int64_t in = w.dim(1);
  const auto elem = static_cast<int64_t>(dtype_size(w.dtype));
  const auto* base = static_cast<const uint8_t*>(w.data) + first * in * elem;
  float* dst = panel + half * kLanes;
  __m512 r[kLanes];
  for (int64_t k0 = 0; k0 < in; k0 += kLanes) {
    const int64_t n = std::min(kLanes, in - k0);
    const auto n_mask = static_cast<__mmask16>(n == kLanes ? 0xFFFFu : (1u << n) - 1u);
    for (int64_t j = 0; j < kLanes; ++j) {
      if (j < valid) {
        const uint8_t* p = base + (j * in + k0) * elem;
        _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T0);
        r[j] = load_widened(w.dtype, p, n_mask);
      } else {
        r[j] = _mm512_setzero_ps();
      }
    }
    transpose16(r);
    for (int64_t i = 0; i < n; ++i) _mm512_store_ps(dst + (k0 + i) * kCols, r[i]);
  }
}

// Bf16-input mode: BF16 weight rows [first, first + valid) as stored, one dword per pair
// of elements: panel[p·32 + 16·half + lane] = W[first + lane, 2p .. 2p + 1] (an odd `in`
// ends with a zero high half). 32 elements of each row per step, transposed as 16 dwords.
TULU_PGEMM_TARGET void pack_half_panel_bf16(const TensorView& w, int64_t first, int64_t valid,
                                            int half, uint32_t* panel) {
  const int64_t in = w.dim(1), pairs = (in + 1) / 2;
  const auto* base = static_cast<const uint16_t*>(w.data) + first * in;
  auto* dst = reinterpret_cast<float*>(panel + half * kLanes);
  __m512 r[kLanes];
  for (int64_t p0 = 0; p0 < pairs; p0 += kLanes) {
    const int64_t n = std::min(kLanes, pairs - p0), elements = std::min(2 * kLanes, in - 2 * p0);
    const auto mask = static_cast<__mmask32>(elements == 2 * kLanes ? 0xFFFFFFFFu
                                                                     : (1u << elements) - 1u);
    for (int64_t j = 0; j < kLanes; ++j) {
      if (j < valid) {
        const uint16_t* p = base + j * in + 2 * p0;
        _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0);
        r[j] = _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mask, p));
      } else {
        r[j] = _mm512_setzero_ps();
      }
    }
    transpose16(r);
    for (int64_t i = 0; i < n; ++i) _mm512_store_ps(dst + (p0 + i) * kCols, r[i]);
  }
}

// Stores rows r < valid_rows of a 12 × 32 accumulator tile at y[r, col0 ..], the columns
// from col0 up to `out` only.
TULU_PGEMM_TARGET inline void store_tile(const __m512 (&acc)[kRows][2], float* y, int64_t out,
                                         int64_t col0, int64_t valid_rows) {
  const int64_t left = out - col0;
  const auto m0 = static_cast<__mmask16>(left >= kLanes ? 0xFFFFu : (1u << left) - 1u);
  const auto m1 = static_cast<__mmask16>(left >= kCols   ? 0xFFFFu
                                         : left <= kLanes ? 0u
                                                          : (1u << (left - kLanes)) - 1u);
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) {
    if (r >= valid_rows) break;
    float* dst = y + r * out + col0;
    _mm512_mask_storeu_ps(dst, m0, acc[r][0]);
    if (m1 != 0) _mm512_mask_storeu_ps(dst + kLanes, m1, acc[r][1]);
  }
}

// y[r, col0 + c] for r < valid_rows (≤ 12), c < min(32, out − col0): the activation group
// xp ([in][12]) times the panel ([in][32]), one FMA chain per output in k order.
TULU_PGEMM_TARGET void microkernel(const float* xp, const float* panel, int64_t in, float* y,
                                   int64_t out, int64_t col0, int64_t valid_rows) {
  __m512 acc[kRows][2];
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < in; ++k) {
    const __m512 w0 = _mm512_load_ps(panel + k * kCols);
    const __m512 w1 = _mm512_load_ps(panel + k * kCols + kLanes);
    const float* xk = xp + k * kRows;
#pragma GCC unroll 12
    for (int r = 0; r < kRows; ++r) {
      const __m512 xv = _mm512_set1_ps(xk[r]);
      acc[r][0] = _mm512_fmadd_ps(xv, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(xv, w1, acc[r][1]);
    }
  }
  store_tile(acc, y, out, col0, valid_rows);
}

// Bf16-input mode: as microkernel, over pairs: per pair one vdpbf16ps per accumulator, which
// adds x̂[2p+1]·W[2p+1] and then x̂[2p]·W[2p] (each product exact in fp32, each sum rounded
// to nearest; subnormal inputs and results flushed to zero).
TULU_PGEMM_BF16_TARGET void microkernel_bf16(const uint32_t* xp, const uint32_t* panel,
                                             int64_t pairs, float* y, int64_t out, int64_t col0,
                                             int64_t valid_rows) {
  __m512 acc[kRows][2];
#pragma GCC unroll 12
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < pairs; ++p) {
    const auto w0 = reinterpret_cast<__m512bh>(_mm512_load_si512(panel + p * kCols));
    const auto w1 = reinterpret_cast<__m512bh>(_mm512_load_si512(panel + p * kCols + kLanes));
    const uint32_t* xk = xp + p * kRows;
#pragma GCC unroll 12
    for (int r = 0; r < kRows; ++r) {
      const auto xv = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(xk[r])));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], xv, w0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], xv, w1);
    }
  }
  store_tile(acc, y, out, col0, valid_rows);
}

// Checks shared by both modes; false when there is nothing to compute (y then done).
bool start_gemm(const char* name, int64_t rows, const TensorView& w, float* y) {
  TULU_CHECK(w.shape.size() == 2, name, ": weight of shape ", shape_to_string(w.shape),
             " is not a matrix");
  TULU_CHECK(rows >= 0, name, ": negative row count ", rows);
  const int64_t out = w.dim(0), in = w.dim(1);
  if (rows == 0 || out == 0) return false;
  if (in == 0) {
    std::fill(y, y + rows * out, 0.0f);
    return false;
  }
  return true;
}

// The driver of both modes, over `words` 4-byte words of k per row (fp32: in; bf16 pairs:
// ⌈in/2⌉): x packed once (pack_x), then the 32-row weight panels dealt over the pool, each
// packed into a thread-local buffer (pack_half, twice) and run against every row group.
template <typename Word>
void run_gemm(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool,
              int64_t words,
              void (*pack_x)(const float*, int64_t, int64_t, Word*, ThreadPool&),
              void (*pack_half)(const TensorView&, int64_t, int64_t, int, Word*),
              void (*kernel)(const Word*, const Word*, int64_t, float*, int64_t, int64_t, int64_t)) {
  const int64_t out = w.dim(0);
  const int64_t groups = (rows + kRows - 1) / kRows;
  static thread_local std::vector<float> x_buffer;
  Word* xp = aligned_words<Word>(x_buffer, static_cast<size_t>(groups * kRows * words));
  pack_x(x, rows, w.dim(1), xp, pool);
  const int64_t panels = (out + kCols - 1) / kCols;
  pool.parallel_for(static_cast<size_t>(panels), 1, [&](size_t begin, size_t end) {
    static thread_local std::vector<float> panel_buffer;
    Word* panel = aligned_words<Word>(panel_buffer, static_cast<size_t>(kCols * words));
    for (auto p = static_cast<int64_t>(begin); p < static_cast<int64_t>(end); ++p) {
      const int64_t col0 = p * kCols;
      pack_half(w, col0, std::min(kLanes, out - col0), 0, panel);
      pack_half(w, col0 + kLanes, std::min(kLanes, out - col0 - kLanes), 1, panel);
      for (int64_t g = 0; g < groups; ++g)
        kernel(xp + g * words * kRows, panel, words, y + g * kRows * out, out, col0,
               std::min(kRows, rows - g * kRows));
    }
  });
}

}  // namespace

void packed_gemm(const float* x, int64_t rows, const TensorView& w, float* y, ThreadPool& pool) {
  TULU_CHECK(packed_gemm_available(), "packed_gemm: the AVX-512 path is not available (",
             force_generic_kernels() ? "generic kernels forced" : "CPU lacks AVX-512", ")");
  TULU_CHECK(w.dtype == DType::F32 || w.dtype == DType::BF16 || w.dtype == DType::F16,
             "packed_gemm: ", dtype_name(w.dtype), " weights need the quantized kernels");
  if (!start_gemm("packed_gemm", rows, w, y)) return;
  run_gemm<float>(x, rows, w, y, pool, w.dim(1), pack_rows, pack_half_panel, microkernel);
}

void packed_gemm_bf16_inputs(const float* x, int64_t rows, const TensorView& w, float* y,
                             ThreadPool& pool) {
  TULU_CHECK(packed_gemm_bf16_available(),
             "packed_gemm_bf16_inputs: the AVX-512 BF16 path is not available (",
             force_generic_kernels() ? "generic kernels forced" : "CPU lacks AVX-512 BF16", ")");
  TULU_CHECK(w.dtype == DType::BF16, "packed_gemm_bf16_inputs: weights must be BF16, not ",
             dtype_name(w.dtype));
  if (!start_gemm("packed_gemm_bf16_inputs", rows, w, y)) return;
  run_gemm<uint32_t>(x, rows, w, y, pool, (w.dim(1) + 1) / 2, pack_rows_bf16,
                     pack_half_panel_bf16, microkernel_bf16);
}

#else  // not x86: never available

void packed_gemm(const float*, int64_t, const TensorView&, float*, ThreadPool&) {
  fail("packed_gemm: the AVX-512 path is not available on this CPU");
}
void packed_gemm_bf16_inputs(const float*, int64_t, const TensorView&, float*, ThreadPool&) {
  fail("packed_gemm_bf16_inputs: the AVX-512 BF16 path is not available on this CPU");
}

#endif

}  // namespace tulu
