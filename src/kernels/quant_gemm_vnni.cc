// AVX-512 VNNI prompt-batch GEMM of quant_gemm_vnni.h. Compiled with per-function target
// attributes (the build stays baseline x86-64) and entered only after a run-time CPU check.
#include "kernels/quant_gemm_vnni.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "kernels/dispatch.h"
#include "kernels/quant_dot.h"
#include "tensor/half.h"
#include "tensor/quant_repack.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TULU_QGEMM_X86 1
#endif

namespace tulu {

bool quant_gemm_available() {
#ifdef TULU_QGEMM_X86
  // quant_dot_target_name() already folds in the CPU check, force_generic_kernels() and the
  // path limit; the GEMM needs the same instructions as the VNNI tiles (plus AVX-512F/BW).
  static const bool cpu = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  return cpu && !force_generic_kernels() && quant_dot_target_name() == "AVX512-VNNI";
#else
  return false;
#endif
}

#ifdef TULU_QGEMM_X86
// GCC 12 flags the `__Y = __Y` "undefined" pass-through operand inside the AVX-512
// intrinsics (cvtepi32_ps, cvtph_ps, srli_epi32, ...) as maybe-uninitialized once inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace {

#define TULU_QGEMM_TARGET \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

constexpr int kLanes = 16;                   // weight rows (output columns) per zmm
constexpr size_t kKSteps = kQuantBlock / 4;  // vpdpbusd per block: 4 k each
// One packed block of one lane group: kKSteps zmm of [16 rows][4 bytes], then 16 fp32 scales.
constexpr size_t kPackedBlockBytes = kKSteps * 64 + kLanes * sizeof(float);
// Lane groups per pool task: the packed tile (4 · 16 rows × in) stays in L2 while every
// activation row streams past it once.
constexpr int64_t kGroupsPerTile = 4;
constexpr int kPackAhead = 512;  // bytes of each weight row prefetched ahead of packing
constexpr int kMaxRows = 4;      // activation rows per microkernel
constexpr int kMaxGroups = 2;    // lane groups per microkernel

// Activations in the layout the microkernel reads: int8 quants of each row contiguous,
// per block the fp32 scale and the offset correction −offset·Σq.
struct PackedActivations {
  std::vector<int8_t> qs;        // [rows][blocks · 32]
  std::vector<float> scale;      // [rows][blocks]
  std::vector<int32_t> correct;  // [rows][blocks]
  size_t blocks = 0;
};

template <int kOffset>
void pack_activations(const BlockQ8_0* xq, int64_t rows, size_t blocks, ThreadPool& pool,
                      PackedActivations& out) {
  const size_t n = static_cast<size_t>(rows) * blocks;
  out.qs.resize(n * kQuantBlock);
  out.scale.resize(n);
  out.correct.resize(n);
  out.blocks = blocks;
  pool.parallel_for(static_cast<size_t>(rows), 1, [&](size_t begin, size_t end) {
    for (size_t i = begin * blocks; i < end * blocks; ++i) {
      std::memcpy(out.qs.data() + i * kQuantBlock, xq[i].qs, kQuantBlock);
      int32_t sum = 0;
      for (size_t j = 0; j < kQuantBlock; ++j) sum += xq[i].qs[j];
      out.scale[i] = f16_to_f32(xq[i].d);
      out.correct[i] = -kOffset * sum;
    }
  });
}

constexpr int weight_offset(const BlockQ8_0*) {
  return 128;
}
constexpr int weight_offset(const BlockQ4_0*) {
  return 8;
}
constexpr int weight_offset(const BlockQ4_0x16*) {
  return 8;
}
constexpr int weight_offset(const BlockQ8_0x16*) {
  return 128;
}

// Packs lane group rows [first, first + valid) of w (valid ≤ 16; missing lanes get zero
// quants and zero scales) into dst: `blocks` × kPackedBlockBytes. Gathers read one dword
// of each of the 16 rows at a time, which is exactly one zmm of the packed layout.
template <typename WBlock>
TULU_QGEMM_TARGET void pack_group(const WBlock* w, size_t blocks, int64_t first, int valid,
                                  uint8_t* dst) {
  const auto row_bytes = static_cast<int>(blocks * sizeof(WBlock));
  const __mmask16 lanes = static_cast<__mmask16>((1u << valid) - 1u);
  const __m512i rows =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(row_bytes));
  const auto* base = reinterpret_cast<const uint8_t*>(w + static_cast<size_t>(first) * blocks);
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* block = base + b * sizeof(WBlock);
    uint8_t* out = dst + b * kPackedBlockBytes;
    // The weights come from memory once per matmul, as 16 strided streams the hardware
    // prefetcher does not follow through gathers: fetch each row ~8 lines ahead.
    for (int i = 0; i < valid; ++i)
      _mm_prefetch(reinterpret_cast<const char*>(block + i * row_bytes + kPackAhead), _MM_HINT_T0);
    const __m512i d = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, rows, block, 1);
    _mm512_storeu_ps(
        out + kKSteps * 64,
        _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_and_si512(d, _mm512_set1_epi32(0xFFFF)))));
    const __m512i zero = _mm512_setzero_si512();
    if constexpr (sizeof(WBlock) == sizeof(BlockQ8_0)) {
      const __m512i flip = _mm512_set1_epi32(static_cast<int>(0x80808080u));
      for (size_t k = 0; k < kKSteps; ++k) {
        const __m512i q = _mm512_mask_i32gather_epi32(zero, lanes, rows, block + 2 + 4 * k, 1);
        // Missing lanes stay 0: their scale is 0, so whatever u is they contribute 0.
        _mm512_storeu_si512(out + k * 64, _mm512_xor_si512(q, flip));
      }
    } else {
      const __m512i low = _mm512_set1_epi8(0x0F);
      for (size_t k = 0; k < kKSteps / 2; ++k) {
        const __m512i q = _mm512_mask_i32gather_epi32(zero, lanes, rows, block + 2 + 4 * k, 1);
        _mm512_storeu_si512(out + k * 64, _mm512_and_si512(q, low));
        _mm512_storeu_si512(out + (k + kKSteps / 2) * 64,
                            _mm512_and_si512(_mm512_srli_epi32(q, 4), low));
      }
    }
  }
}

// Q4_0_R16 / Q8_0_R16 weights already hold 16 rows per block in lanes
// (tensor/quant_repack.h): the group is read as one contiguous stream. A Q4_0 load splits
// into the packed layout's k-steps q (low nibbles) and q + 4 (high nibbles); a Q8_0 load is
// k-step q, made unsigned. Groups are always whole.
template <typename Block>
TULU_QGEMM_TARGET void pack_interleaved_group(const Block* w, size_t blocks, int64_t first,
                                              uint8_t* dst) {
  const Block* group = w + static_cast<size_t>(first / kLanes) * blocks;
  const __m512i low = _mm512_set1_epi8(0x0F);
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (size_t b = 0; b < blocks; ++b) {
    uint8_t* out = dst + b * kPackedBlockBytes;
    const auto* qs = reinterpret_cast<const uint8_t*>(group[b].qs);
    if constexpr (std::is_same_v<Block, BlockQ4_0x16>) {
      for (size_t q = 0; q < kKSteps / 2; ++q) {
        const __m512i packed = _mm512_loadu_si512(qs + 64 * q);
        _mm512_storeu_si512(out + q * 64, _mm512_and_si512(packed, low));
        _mm512_storeu_si512(out + (q + kKSteps / 2) * 64,
                            _mm512_and_si512(_mm512_srli_epi32(packed, 4), low));
      }
    } else {
      for (size_t q = 0; q < kKSteps; ++q)
        _mm512_storeu_si512(out + q * 64, _mm512_xor_si512(_mm512_loadu_si512(qs + 64 * q), flip));
    }
    _mm512_storeu_ps(out + kKSteps * 64, _mm512_cvtph_ps(_mm256_loadu_si256(
                                             reinterpret_cast<const __m256i*>(group[b].d))));
  }
}
TULU_QGEMM_TARGET void pack_group(const BlockQ4_0x16* w, size_t blocks, int64_t first,
                                  int /*valid: always 16*/, uint8_t* dst) {
  pack_interleaved_group(w, blocks, first, dst);
}
TULU_QGEMM_TARGET void pack_group(const BlockQ8_0x16* w, size_t blocks, int64_t first,
                                  int /*valid: always 16*/, uint8_t* dst) {
  pack_interleaved_group(w, blocks, first, dst);
}

// y[row0 + r, col0 + 16·c + lane] for r < R, c < C: R activation rows × C packed lane
// groups (group c at w + c·group_stride), all blocks. R·C int32 + R·C fp32 accumulators
// + C weight vectors stay in the 32 zmm registers.
template <int R, int C>
TULU_QGEMM_TARGET void microkernel(const uint8_t* w, size_t group_stride,
                                   const PackedActivations& x, int64_t row0, float* y, int64_t out,
                                   int64_t col0) {
  const size_t blocks = x.blocks;
  const int8_t* xq[R];
  const float* xd[R];
  const int32_t* xc[R];
  for (int r = 0; r < R; ++r) {
    const size_t row = static_cast<size_t>(row0 + r);
    xq[r] = x.qs.data() + row * blocks * kQuantBlock;
    xd[r] = x.scale.data() + row * blocks;
    xc[r] = x.correct.data() + row * blocks;
  }
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (size_t b = 0; b < blocks; ++b) {
    const uint8_t* wb = w + b * kPackedBlockBytes;
    __m512i sum[R][C];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512i start = _mm512_set1_epi32(xc[r][b]);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) sum[r][c] = start;
    }
#pragma GCC unroll 8
    for (size_t k = 0; k < kKSteps; ++k) {
      __m512i wv[C];
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c)
        wv[c] = _mm512_loadu_si512(wb + static_cast<size_t>(c) * group_stride + k * 64);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        int32_t four;
        std::memcpy(&four, xq[r] + b * kQuantBlock + k * 4, sizeof(four));
        const __m512i xv = _mm512_set1_epi32(four);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) sum[r][c] = _mm512_dpbusd_epi32(sum[r][c], wv[c], xv);
      }
    }
    __m512 dw[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c)
      dw[c] = _mm512_loadu_ps(wb + static_cast<size_t>(c) * group_stride + kKSteps * 64);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 dx = _mm512_set1_ps(xd[r][b]);
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c)
        acc[r][c] =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[r][c]), _mm512_mul_ps(dw[c], dx), acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      const int64_t col = col0 + c * kLanes;
      float* dst = y + (row0 + r) * out + col;
      if (out - col >= kLanes)
        _mm512_storeu_ps(dst, acc[r][c]);
      else
        _mm512_mask_storeu_ps(dst, static_cast<__mmask16>((1u << (out - col)) - 1u), acc[r][c]);
    }
  }
}

using Microkernel = void (*)(const uint8_t*, size_t, const PackedActivations&, int64_t, float*,
                             int64_t, int64_t);

template <int C, int... Rs>
constexpr auto microkernels_for(std::integer_sequence<int, Rs...>) {
  return std::array<Microkernel, sizeof...(Rs)>{&microkernel<Rs + 1, C>...};
}
// kernels[c − 1][r − 1]: r activation rows × c lane groups.
const std::array<std::array<Microkernel, kMaxRows>, kMaxGroups> kMicrokernels = {
    microkernels_for<1>(std::make_integer_sequence<int, kMaxRows>{}),
    microkernels_for<2>(std::make_integer_sequence<int, kMaxRows>{})};

template <typename WBlock>
void gemm(const WBlock* w, int64_t out, const BlockQ8_0* xq, int64_t rows, size_t blocks, float* y,
          ThreadPool& pool) {
  TULU_CHECK(quant_gemm_available(), "quant_gemm: the AVX-512 VNNI path is not available (",
             quant_dot_target_name(), ")");
  TULU_CHECK(out >= 0 && rows >= 0, "quant_gemm: negative shape out=", out, " rows=", rows);
  // The gathers index 16 rows with int32 byte offsets.
  TULU_CHECK(blocks * sizeof(WBlock) * kLanes < (size_t{1} << 31), "quant_gemm: rows of ", blocks,
             " blocks are too long");
  if (out == 0 || rows == 0) return;
  constexpr int offset = weight_offset(static_cast<const WBlock*>(nullptr));
  PackedActivations x;
  pack_activations<offset>(xq, rows, blocks, pool, x);
  const int64_t groups = (out + kLanes - 1) / kLanes;
  const int64_t tiles = (groups + kGroupsPerTile - 1) / kGroupsPerTile;
  const size_t group_stride = blocks * kPackedBlockBytes;
  pool.parallel_for(static_cast<size_t>(tiles), 1, [&](size_t begin, size_t end) {
    // Per thread, reused across calls: the packed tile (≤ 4 · 16 rows × in bytes + scales).
    static thread_local std::vector<uint8_t> buffer;
    buffer.resize(static_cast<size_t>(kGroupsPerTile) * group_stride + 64);
    uint8_t* packed = buffer.data() + (64 - reinterpret_cast<uintptr_t>(buffer.data()) % 64) % 64;
    for (auto tile = static_cast<int64_t>(begin); tile < static_cast<int64_t>(end); ++tile) {
      const int64_t g0 = tile * kGroupsPerTile;
      const int64_t tile_groups = std::min(kGroupsPerTile, groups - g0);
      for (int64_t g = 0; g < tile_groups; ++g) {
        const int64_t first = (g0 + g) * kLanes;
        pack_group(w, blocks, first, static_cast<int>(std::min<int64_t>(kLanes, out - first)),
                   packed + static_cast<size_t>(g) * group_stride);
      }
      for (int64_t row0 = 0; row0 < rows; row0 += kMaxRows) {
        const auto r = static_cast<int>(std::min<int64_t>(kMaxRows, rows - row0));
        for (int64_t g = 0; g < tile_groups; g += kMaxGroups) {
          const auto c = static_cast<int>(std::min<int64_t>(kMaxGroups, tile_groups - g));
          kMicrokernels[static_cast<size_t>(c - 1)][static_cast<size_t>(r - 1)](
              packed + static_cast<size_t>(g) * group_stride, group_stride, x, row0, y, out,
              (g0 + g) * kLanes);
        }
      }
    }
  });
}

}  // namespace

void quant_gemm_q8_0(const BlockQ8_0* w, int64_t out, const BlockQ8_0* xq, int64_t rows,
                     size_t blocks, float* y, ThreadPool& pool) {
  gemm(w, out, xq, rows, blocks, y, pool);
}

void quant_gemm_q4_0(const BlockQ4_0* w, int64_t out, const BlockQ8_0* xq, int64_t rows,
                     size_t blocks, float* y, ThreadPool& pool) {
  gemm(w, out, xq, rows, blocks, y, pool);
}

void quant_gemm_q4_0_r16(const BlockQ4_0x16* w, int64_t out, const BlockQ8_0* xq, int64_t rows,
                         size_t blocks, float* y, ThreadPool& pool) {
  TULU_CHECK(out % kLanes == 0, "quant_gemm: ", out, " Q4_0_R16 rows are not whole groups of ",
             kLanes);
  gemm(w, out, xq, rows, blocks, y, pool);
}

void quant_gemm_q8_0_r16(const BlockQ8_0x16* w, int64_t out, const BlockQ8_0* xq, int64_t rows,
                         size_t blocks, float* y, ThreadPool& pool) {
  TULU_CHECK(out % kLanes == 0, "quant_gemm: ", out, " Q8_0_R16 rows are not whole groups of ",
             kLanes);
  gemm(w, out, xq, rows, blocks, y, pool);
}

#else  // not x86: never available

void quant_gemm_q8_0(const BlockQ8_0*, int64_t, const BlockQ8_0*, int64_t, size_t, float*,
                     ThreadPool&) {
  fail("quant_gemm: the AVX-512 VNNI path is not available on this CPU");
}
void quant_gemm_q4_0(const BlockQ4_0*, int64_t, const BlockQ8_0*, int64_t, size_t, float*,
                     ThreadPool&) {
  fail("quant_gemm: the AVX-512 VNNI path is not available on this CPU");
}
void quant_gemm_q4_0_r16(const BlockQ4_0x16*, int64_t, const BlockQ8_0*, int64_t, size_t, float*,
                         ThreadPool&) {
  fail("quant_gemm: the AVX-512 VNNI path is not available on this CPU");
}
void quant_gemm_q8_0_r16(const BlockQ8_0x16*, int64_t, const BlockQ8_0*, int64_t, size_t, float*,
                         ThreadPool&) {
  fail("quant_gemm: the AVX-512 VNNI path is not available on this CPU");
}

#endif

}  // namespace tulu
