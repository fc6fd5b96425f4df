// The 512-bit decode kernels of quant_matvec.h, compiled with per-function target
// attributes (the build is baseline x86-64) and used only after a run-time CPU check.
#include "kernels/quant_matvec.h"

#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "kernels/quant_dot.h"
#include "tensor/half.h"
#include "tensor/quant_repack.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TULU_MATVEC_X86 1
#endif

namespace tulu {

namespace {

constexpr size_t kLanes = 16;  // int32 / float lanes per zmm

// One step of the kernel covers a pair of Q8_0 blocks (64 weight bytes in one zmm) or a
// quad of Q4_0 blocks (64 nibble bytes: the low nibbles in one zmm, the high in another).
size_t blocks_per_step(DType weight_type) {
  return weight_type == DType::Q4_0 ? 4 : 2;
}
// Activation bytes per step, in the lanes' order: Q8_0: the pair's 64 values as stored;
// Q4_0: elements 0..15 of the quad's 4 blocks (64 bytes, block j/16, element j%16), then
// elements 16..31 likewise — the order in which one two-table byte permute gathers the
// stored nibble bytes and a mask / shift splits them.
size_t step_bytes(DType weight_type) {
  return weight_type == DType::Q4_0 ? 128 : 64;
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

bool quant_matvec_available() {
  return quant_dot_path() == QuantPath::kVnni && cpu_has_vbmi_path();
}

bool QuantMatvecRow::prepare(DType weight_type, const BlockQ8_0* x, size_t blocks) {
  TULU_CHECK(weight_type == DType::Q8_0 || weight_type == DType::Q4_0 ||
                 weight_type == DType::Q4_0_R16 || weight_type == DType::Q8_0_R16,
             "quant_matvec: weights must be Q8_0, Q4_0 or their R16 layouts, not ",
             dtype_name(weight_type));
  if (!quant_matvec_available()) return false;
  weight_type_ = weight_type;
  blocks_ = blocks;
  x_ = x;
  if (weight_type == DType::Q4_0_R16 || weight_type == DType::Q8_0_R16) {
    // The weights go in unsigned (the nibble; q + 128): u − offset is the weight.
    const int32_t offset = weight_type == DType::Q4_0_R16 ? 8 : 128;
    corrections_.resize(blocks);
    scales_.resize(blocks);
    for (size_t b = 0; b < blocks; ++b) {
      int32_t sum = 0;
      for (size_t j = 0; j < kQuantBlock; ++j) sum += x[b].qs[j];
      corrections_[b] = -offset * sum;
      scales_[b] = f16_to_f32(x[b].d);
    }
    return true;
  }
  const size_t per_step = blocks_per_step(weight_type), bytes_per_step = step_bytes(weight_type);
  const size_t steps = blocks / per_step;
  bytes_.resize(steps * bytes_per_step);
  corrections_.resize(steps * kLanes);
  scales_.resize(steps * kLanes);
  const bool q4 = weight_type == DType::Q4_0;
  for (size_t step = 0; step < steps; ++step) {
    const BlockQ8_0* group = x + per_step * step;
    int8_t* bytes = bytes_.data() + step * bytes_per_step;
    for (size_t j = 0; j < 64; ++j) {
      if (q4) {
        bytes[j] = group[j / 16].qs[j % 16];
        bytes[64 + j] = group[j / 16].qs[16 + j % 16];
      } else {
        bytes[j] = group[j / 32].qs[j % 32];
      }
    }
    for (size_t lane = 0; lane < kLanes; ++lane) {
      int32_t sum = 0;
      for (size_t k = 0; k < 4; ++k)
        sum += bytes[4 * lane + k] + (q4 ? bytes[64 + 4 * lane + k] : 0);
      // The weights go in unsigned (Q4_0: the nibble; Q8_0: q + 128); each lane takes the
      // offset back for its own activation bytes, so it holds an exact partial of the
      // block's signed integer sum.
      corrections_[step * kLanes + lane] = -(q4 ? 8 : 128) * sum;
      const size_t block = q4 ? lane / 4 : lane / 8;
      scales_[step * kLanes + lane] = f16_to_f32(group[block].d);
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

// The step's 16 lane scales d_w (f16 words of the weight blocks, permuted into lanes),
// times the activation's lane scales.
TULU_VBMI inline __m512 lane_scales(__m512i raw, __m512i word_index, const float* x_scales) {
  const __m256i words = _mm512_castsi512_si256(_mm512_permutexvar_epi16(word_index, raw));
  return _mm512_mul_ps(_mm512_cvtph_ps(words), _mm512_loadu_ps(x_scales));
}

struct Q4Quad {
  using Block = BlockQ4_0;
  static constexpr size_t kBlocks = 4, kXBytes = 128;
  __m512i byte_index, low_nibbles, word_index;
  TULU_VBMI Q4Quad() {
    alignas(64) uint8_t bytes[64];
    alignas(64) uint16_t words[32];
    // Byte j = stored byte j%16 of block j/16 (18-byte blocks; indices ≥ 64 select the
    // second table, the quad's last 8 bytes).
    for (size_t j = 0; j < 64; ++j)
      bytes[j] = static_cast<uint8_t>((j / 16) * sizeof(Block) + 2 + j % 16);
    for (size_t w = 0; w < 32; ++w)  // lane l: d of block l/4, word 9·(l/4) (byte 18·(l/4))
      words[w] = static_cast<uint16_t>(w < 16 ? 9 * (w / 4) : 0);
    byte_index = _mm512_load_si512(bytes);
    low_nibbles = _mm512_set1_epi8(0x0F);
    word_index = _mm512_load_si512(words);
  }
  // Σ (u − 8)·x per lane over the quad at p (72 bytes); raw: its first 64 bytes.
  TULU_VBMI inline __m512i dot(const uint8_t* p, const int8_t* x, __m512i correction,
                               __m512i* raw) const {
    *raw = _mm512_loadu_si512(p);
    const __m512i tail = _mm512_maskz_loadu_epi8(0xFF, p + 64);  // never past the quad
    const __m512i packed = _mm512_permutex2var_epi8(*raw, byte_index, tail);
    const __m512i low = _mm512_and_si512(packed, low_nibbles);
    const __m512i high = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
    const __m512i sum = _mm512_dpbusd_epi32(correction, low, _mm512_loadu_si512(x));
    return _mm512_dpbusd_epi32(sum, high, _mm512_loadu_si512(x + 64));
  }
};

struct Q8Pair {
  using Block = BlockQ8_0;
  static constexpr size_t kBlocks = 2, kXBytes = 64;
  __m512i word_index, sign_flip;
  TULU_VBMI Q8Pair() {
    alignas(64) uint16_t words[32];
    for (size_t w = 0; w < 32; ++w) words[w] = static_cast<uint16_t>(w >= 8 && w < 16 ? 17 : 0);
    word_index = _mm512_load_si512(words);
    sign_flip = _mm512_set1_epi8(static_cast<char>(0x80));
  }
  // Σ (u − 128)·x per lane over the pair at p (68 bytes), u = q + 128; raw: its first 64
  // bytes.
  TULU_VBMI inline __m512i dot(const uint8_t* p, const int8_t* x, __m512i correction,
                               __m512i* raw) const {
    *raw = _mm512_loadu_si512(p);
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + sizeof(Block) + 2));
    const __m512i u = _mm512_xor_si512(
        _mm512_maskz_inserti64x4(0xFF, _mm512_zextsi256_si512(a), b, 1), sign_flip);
    return _mm512_dpbusd_epi32(correction, u, _mm512_loadu_si512(x));
  }
};

// One weight row over every whole step. Rows go one at a time, each step prefetching the
// same step of the next row. Measured on this VM (1.1B, 2 threads, interleaved A/B of
// `tulu bench -p 0 -n 32`, 6 pairs each): against reading 4 rows at once (4 streams per
// thread, sharing the activation loads) with the rows 8 ahead prefetched, this decoded
// 1.20× (Q4_0) and 1.26× (Q8_0) faster in one pair of runs and 1.03× / 1.13× in a later one
// (the machine's bandwidth moves by ±30 %); prefetching 2 rows ahead instead of 1 was 5 %
// slower, not prefetching 7 % slower. DRAM here serves fewer concurrent streams better.
// A row is prefetched at least kMinPrefetchBytes ahead, so whole rows ahead: one for Q8_0
// (2176-byte rows at in = 2048), two for Q4_0's 1152-byte rows, which one row ahead left
// too close to hide the memory latency (Q4_0 1.1B decode +3 %, three interleaved A/Bs of 5–6
// pairs: pair ratios 1.04, 1.02, 1.03).
constexpr size_t kMinPrefetchBytes = 2048;

template <typename Layout>
TULU_VBMI float row_vbmi(const uint8_t* w, size_t row_bytes, size_t steps, const int8_t* x_bytes,
                         const int32_t* corrections, const float* x_scales, const Layout& layout) {
  constexpr size_t kStepWeightBytes = Layout::kBlocks * sizeof(typename Layout::Block);
  const uint8_t* next = w + row_bytes * ((kMinPrefetchBytes + row_bytes - 1) / row_bytes);
  __m512 acc = _mm512_setzero_ps();
  for (size_t s = 0; s < steps; ++s) {
    for (size_t line = 0; line < kStepWeightBytes; line += 64)
      _mm_prefetch(reinterpret_cast<const char*>(next + s * kStepWeightBytes + line), _MM_HINT_T0);
    __m512i raw;
    const __m512i sum = layout.dot(w + s * kStepWeightBytes, x_bytes + s * Layout::kXBytes,
                                   _mm512_loadu_si512(corrections + s * kLanes), &raw);
    acc = _mm512_fmadd_ps(to_float(sum), lane_scales(raw, layout.word_index, x_scales + s * kLanes),
                          acc);
  }
  return sum_lanes(acc);
}

template <typename Layout>
TULU_VBMI void matvec_vbmi(const uint8_t* w, size_t rows, size_t blocks, const int8_t* x_bytes,
                           const int32_t* corrections, const float* x_scales, const BlockQ8_0* x,
                           float (*dot)(const typename Layout::Block*, const BlockQ8_0*, size_t),
                           float* out) {
  static const Layout layout;
  const size_t row_bytes = blocks * sizeof(typename Layout::Block);
  const size_t steps = blocks / Layout::kBlocks;
  for (size_t r = 0; r < rows; ++r)
    out[r] = row_vbmi(w + r * row_bytes, row_bytes, steps, x_bytes, corrections, x_scales, layout);
  const size_t done = steps * Layout::kBlocks;
  if (done < blocks)  // the last blocks that do not fill a step: the pairwise dot
    for (size_t r = 0; r < rows; ++r)
      out[r] += dot(reinterpret_cast<const typename Layout::Block*>(w + r * row_bytes) + done,
                    x + done, blocks - done);
}

// What the interleaved kernel reads of one prepared activation row: its Q8_0 blocks (the
// caller's) and per block the offset correction and the fp32 scale.
struct InterleavedRow {
  const BlockQ8_0* blocks;
  const int32_t* corrections;
  const float* scales;
};

// Four activation bytes in every 32-bit lane.
TULU_VBMI inline __m512i broadcast4(const int8_t* four) {
  int32_t v;
  std::memcpy(&v, four, sizeof(v));
  return _mm512_set1_epi32(v);
}

// One 16-row group of Q4_0_R16 / Q8_0_R16 weights (tensor/quant_repack.h) times R
// activation rows: out[j][0..15] for row j < R. Per block the group's quants are loaded and
// unpacked once for all R rows. Per row, two int32 chains of vpdpbusd (Q4_0: low and high
// nibbles; Q8_0: even and odd steps) keep the dependency short; the block's sum is then
// scaled and added in block order, as in the prompt GEMM (so both give the same bits). No
// software prefetch: the group is one contiguous stream, which the hardware prefetcher
// follows (measured for Q4_0: prefetching 1152–4608 bytes ahead was no faster, 4608 slower).
template <typename Block, int R>
TULU_VBMI void group_r16(const Block* w, size_t blocks, const InterleavedRow* x,
                         float* const* out) {
  constexpr bool kQ4 = std::is_same_v<Block, BlockQ4_0x16>;
  constexpr int kSteps = kQ4 ? 4 : 8;  // 64-byte loads per block
  const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
  const __m512i high_nibbles = _mm512_set1_epi8(static_cast<char>(0xF0));
  const __m512i sign_flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[R];
  for (int j = 0; j < R; ++j) acc[j] = _mm512_setzero_ps();
  for (size_t b = 0; b < blocks; ++b) {
    const auto* qs = reinterpret_cast<const uint8_t*>(w[b].qs);
    // Unsigned quants of k-steps 0..7 (4 activation bytes each): Q4_0 step q < 4 is the
    // low nibbles of load q, step q + 4 its high nibbles left in place (16 × the nibble:
    // one instruction less per load; that chain's sum is divided by 16 below, exactly);
    // Q8_0 step q is load q + 128.
    __m512i u[8];
#pragma GCC unroll 8
    for (int q = 0; q < kSteps; ++q) {
      const __m512i packed = _mm512_loadu_si512(qs + 64 * q);
      if constexpr (kQ4) {
        u[q] = _mm512_and_si512(packed, low_nibbles);
        u[q + 4] = _mm512_and_si512(packed, high_nibbles);
      } else {
        u[q] = _mm512_xor_si512(packed, sign_flip);
      }
    }
    const __m512 w_scales =
        _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].d)));
#pragma GCC unroll 4
    for (int j = 0; j < R; ++j) {
      const int8_t* xb = x[j].blocks[b].qs;
      __m512i sum0 = _mm512_set1_epi32(x[j].corrections[b]);
      __m512i sum1 = _mm512_setzero_si512();
      if constexpr (kQ4) {  // low nibbles into sum0, high (× 16) into sum1
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) {
          sum0 = _mm512_dpbusd_epi32(sum0, u[k], broadcast4(xb + 4 * k));
          sum1 = _mm512_dpbusd_epi32(sum1, u[k + 4], broadcast4(xb + 4 * k + 16));
        }
        sum1 = _mm512_srai_epi32(sum1, 4);  // a multiple of 16 (|sum| < 2²⁰): exact
      } else {
#pragma GCC unroll 4
        for (int k = 0; k < 8; k += 2) {
          sum0 = _mm512_dpbusd_epi32(sum0, u[k], broadcast4(xb + 4 * k));
          sum1 = _mm512_dpbusd_epi32(sum1, u[k + 1], broadcast4(xb + 4 * k + 4));
        }
      }
      acc[j] = _mm512_fmadd_ps(to_float(_mm512_add_epi32(sum0, sum1)),
                               _mm512_mul_ps(w_scales, _mm512_set1_ps(x[j].scales[b])), acc[j]);
    }
  }
  for (int j = 0; j < R; ++j) _mm512_storeu_ps(out[j], acc[j]);
}

template <typename Block, int R>
void groups_r16(const void* weights, size_t rows, size_t blocks, const InterleavedRow* x,
                float* const* out) {
  const auto* groups = static_cast<const Block*>(weights);
  for (size_t g = 0; g < rows / kRepackRows; ++g) {
    float* dst[R];
    for (int j = 0; j < R; ++j) dst[j] = out[j] + g * kRepackRows;
    group_r16<Block, R>(groups + g * blocks, blocks, x, dst);
  }
}

template <typename Block>
void groups_r16(const void* weights, size_t rows, size_t blocks, const InterleavedRow* x,
                int count, float* const* out) {
  switch (count) {
    case 1: return groups_r16<Block, 1>(weights, rows, blocks, x, out);
    case 2: return groups_r16<Block, 2>(weights, rows, blocks, x, out);
    case 3: return groups_r16<Block, 3>(weights, rows, blocks, x, out);
    case 4: return groups_r16<Block, 4>(weights, rows, blocks, x, out);
    default: break;
  }
  fail("quant_matvec: ", count, " activation rows (1..", kMaxInterleavedMatvecRows, " allowed)");
}

}  // namespace

void quant_matvec_interleaved(const void* weights, size_t rows, const QuantMatvecRow* xs,
                              int count, float* const* outs) {
  TULU_CHECK(count >= 1 && count <= kMaxInterleavedMatvecRows, "quant_matvec: ", count,
             " activation rows (1..", kMaxInterleavedMatvecRows, " allowed)");
  const DType type = xs[0].weight_type_;
  TULU_CHECK(type == DType::Q4_0_R16 || type == DType::Q8_0_R16,
             "quant_matvec_interleaved: weights are ", dtype_name(type), ", not an R16 layout");
  TULU_CHECK(rows % kRepackRows == 0, "quant_matvec: ", rows,
             " interleaved rows are not whole groups of ", kRepackRows);
  InterleavedRow x[kMaxInterleavedMatvecRows];
  for (int j = 0; j < count; ++j) {
    TULU_CHECK(xs[j].weight_type_ == type && xs[j].blocks_ == xs[0].blocks_,
               "quant_matvec: activation rows prepared for different weights");
    x[j] = {xs[j].x_, xs[j].corrections_.data(), xs[j].scales_.data()};
  }
  if (type == DType::Q4_0_R16)
    groups_r16<BlockQ4_0x16>(weights, rows, xs[0].blocks_, x, count, outs);
  else
    groups_r16<BlockQ8_0x16>(weights, rows, xs[0].blocks_, x, count, outs);
}

void quant_matvec_rows(const void* weights, size_t rows, const QuantMatvecRow& x, float* out) {
  const auto* w = static_cast<const uint8_t*>(weights);
  if (x.weight_type_ == DType::Q4_0_R16 || x.weight_type_ == DType::Q8_0_R16)
    return quant_matvec_interleaved(weights, rows, &x, 1, &out);
  if (x.weight_type_ == DType::Q4_0)
    matvec_vbmi<Q4Quad>(w, rows, x.blocks_, x.bytes_.data(), x.corrections_.data(),
                        x.scales_.data(), x.x_, vec_dot_q4_0_q8_0, out);
  else
    matvec_vbmi<Q8Pair>(w, rows, x.blocks_, x.bytes_.data(), x.corrections_.data(),
                        x.scales_.data(), x.x_, vec_dot_q8_0_q8_0, out);
}

#else  // not x86: prepare() always declines, so this is never reached

void quant_matvec_rows(const void*, size_t, const QuantMatvecRow&, float*) {
  fail("quant_matvec_rows: no AVX-512 path on this CPU");
}
void quant_matvec_interleaved(const void*, size_t, const QuantMatvecRow*, int, float* const*) {
  fail("quant_matvec_interleaved: no AVX-512 path on this CPU");
}

#endif

}  // namespace tulu
