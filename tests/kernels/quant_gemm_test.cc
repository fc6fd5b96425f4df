// The AVX-512 VNNI prompt GEMM (quant_gemm_vnni.h) against ggml's scalar dot products
// (vec_dot_*_ref) output by output, with the bound the header states: both form the same
// exact integer block sums and fp32 products d_w·d_x and differ only in how the fp32 terms
// are accumulated, so |gemm − ref| ≤ (blocks + 2)·2⁻²³·Σ_b |sumi_b·(d_w·d_x)|. Shapes cover
// partial lane groups (out not a multiple of 16), partial tiles and microkernels (rows and
// groups not multiples of the blocking), 1–3 threads, rows 1..40 and 515, in 32..5632,
// extreme quants (Q8_0 −128, Q4_0 nibbles 0 and 15, activations ±127) and all-zero blocks.
// Then quant_matmul (matmul.h) with the GEMM against the generic path and against the
// single-row path, and the switches that must turn the GEMM off.
#include "kernels/quant_gemm_vnni.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/quant_dot.h"
#include "tensor/half.h"
#include "tensor/quant_blocks.h"
#include "quant_test_util.h"

namespace tulu {
namespace {

// Values whose 32-element blocks span 10⁻⁴..10³ in scale; every 7th block all zero.
std::vector<float> block_scaled_normals(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> exponent(-4.0f, 3.0f);
  std::vector<float> v(n);
  for (size_t b = 0; b < n / 32; ++b) {
    const float scale = b % 7 == 6 ? 0.0f : std::pow(10.0f, exponent(gen));
    for (size_t j = 0; j < 32; ++j) v[b * 32 + j] = scale * normal(gen);
  }
  return v;
}

template <typename WBlock>
std::vector<WBlock> random_weights(int64_t out, size_t blocks, uint32_t seed) {
  const std::vector<float> values =
      block_scaled_normals(static_cast<size_t>(out) * blocks * 32, seed);
  std::vector<WBlock> w(static_cast<size_t>(out) * blocks);
  std::mt19937 gen(seed + 1);
  if constexpr (std::is_same_v<WBlock, BlockQ8_0>) {
    quantize_row_q8_0_ref(values.data(), w.data(), values.size());
    // −128 never comes out of our quantizer but a foreign file may hold it; the unsigned
    // +128 packing must map it to 0.
    for (size_t b = 0; b < w.size(); b += 3) w[b].qs[gen() % 32] = -128;
  } else {
    quantize_row_q4_0_ref(values.data(), w.data(), values.size());
    for (size_t b = 1; b < w.size(); b += 5) {  // both extreme nibbles in one byte
      w[b].qs[gen() % 16] = 0xF0;
      w[b].qs[gen() % 16] = 0x0F;
    }
  }
  return w;
}

std::vector<BlockQ8_0> random_activations(int64_t rows, size_t blocks, uint32_t seed) {
  const std::vector<float> values =
      block_scaled_normals(static_cast<size_t>(rows) * blocks * 32, seed);
  std::vector<BlockQ8_0> x(static_cast<size_t>(rows) * blocks);
  quantize_row_q8_0_ref(values.data(), x.data(), values.size());
  return x;
}

int weight_int(const BlockQ8_0& b, size_t j) {
  return b.qs[j];
}
int weight_int(const BlockQ4_0& b, size_t j) {
  return j < 16 ? (b.qs[j] & 15) - 8 : (b.qs[j - 16] >> 4) - 8;
}

// (blocks + 2)·2⁻²³·Σ_b |sumi_b·(d_w·d_x)| for one weight row and one activation row.
template <typename WBlock>
double gemm_bound(const WBlock* w, const BlockQ8_0* x, size_t blocks) {
  double total = 0.0;
  for (size_t b = 0; b < blocks; ++b) {
    int64_t sumi = 0;
    for (size_t j = 0; j < 32; ++j) sumi += weight_int(w[b], j) * x[b].qs[j];
    const float scale = f16_to_f32(w[b].d) * f16_to_f32(x[b].d);
    total += std::fabs(static_cast<double>(sumi) * static_cast<double>(scale));
  }
  return static_cast<double>(blocks + 2) * 0x1p-23 * total;
}

float reference_dot(const BlockQ8_0* w, const BlockQ8_0* x, size_t blocks) {
  return vec_dot_q8_0_q8_0_ref(w, x, blocks);
}
float reference_dot(const BlockQ4_0* w, const BlockQ8_0* x, size_t blocks) {
  return vec_dot_q4_0_q8_0_ref(w, x, blocks);
}

void gemm(const BlockQ8_0* w, int64_t out, const BlockQ8_0* x, int64_t rows, size_t blocks,
          float* y, ThreadPool& pool) {
  quant_gemm_q8_0(w, out, x, rows, blocks, y, pool);
}
void gemm(const BlockQ4_0* w, int64_t out, const BlockQ8_0* x, int64_t rows, size_t blocks,
          float* y, ThreadPool& pool) {
  quant_gemm_q4_0(w, out, x, rows, blocks, y, pool);
}

struct Shape {
  int64_t out;
  size_t in;
  int64_t rows;
};

template <typename WBlock>
void check_gemm_against_reference(const Shape& s, int threads, uint32_t seed, double& worst) {
  const size_t blocks = s.in / 32;
  const std::vector<WBlock> w = random_weights<WBlock>(s.out, blocks, seed);
  std::vector<BlockQ8_0> x = random_activations(s.rows, blocks, seed + 7);
  // Activations at the ±127 limit in the first block of the first row.
  for (size_t j = 0; j < 32; ++j) x[0].qs[j] = j % 2 ? 127 : -127;
  std::vector<float> y(static_cast<size_t>(s.rows * s.out), NAN);
  ThreadPool pool(threads);
  gemm(w.data(), s.out, x.data(), s.rows, blocks, y.data(), pool);
  for (int64_t r = 0; r < s.rows; ++r) {
    const BlockQ8_0* xr = x.data() + static_cast<size_t>(r) * blocks;
    for (int64_t o = 0; o < s.out; ++o) {
      const WBlock* wo = w.data() + static_cast<size_t>(o) * blocks;
      const float ref = reference_dot(wo, xr, blocks);
      const double bound = gemm_bound(wo, xr, blocks);
      const float got = y[static_cast<size_t>(r * s.out + o)];
      const double err = std::fabs(static_cast<double>(got) - ref);
      ASSERT_LE(err, bound) << "out=" << s.out << " in=" << s.in << " rows=" << s.rows
                            << " threads=" << threads << " r=" << r << " o=" << o << " got " << got
                            << " ref " << ref;
      if (bound > 0) worst = std::max(worst, err / bound);
    }
  }
}

const Shape kShapes[] = {
    {16, 32, 1},   {1, 64, 3},    {37, 96, 5},   {64, 256, 8},   {100, 128, 13},
    {129, 64, 40}, {48, 2048, 7}, {33, 5632, 9}, {19, 256, 515}, {80, 320, 4},
    {200, 32, 17}, {7, 160, 2},   {65, 64, 1},
};

TEST(QuantGemm, MatchesScalarDotsWithinTheAccumulationBound) {
  if (!quant_gemm_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  double worst8 = 0.0, worst4 = 0.0;
  uint32_t seed = 1;
  for (const Shape& s : kShapes) {
    for (int threads : {1, 2, 3}) {
      check_gemm_against_reference<BlockQ8_0>(s, threads, seed, worst8);
      check_gemm_against_reference<BlockQ4_0>(s, threads, seed + 1, worst4);
      seed += 2;
      if (HasFatalFailure()) return;
    }
  }
  std::printf("quant GEMM: worst |gemm − ref| = %.3g (Q8_0), %.3g (Q4_0) of the bound\n", worst8,
              worst4);
}

TEST(QuantGemm, EmptyShapesWriteNothing) {
  if (!quant_gemm_available()) GTEST_SKIP() << "no AVX-512 VNNI on this CPU";
  ThreadPool pool(2);
  const std::vector<BlockQ8_0> w = random_weights<BlockQ8_0>(4, 2, 3);
  const std::vector<BlockQ8_0> x = random_activations(4, 2, 4);
  std::vector<float> y(16, 5.0f);
  quant_gemm_q8_0(w.data(), 0, x.data(), 4, 2, y.data(), pool);
  quant_gemm_q8_0(w.data(), 4, x.data(), 0, 2, y.data(), pool);
  for (float v : y) EXPECT_EQ(v, 5.0f);
}

// Restores the global kernel switches however a test ends.
struct KernelSwitchGuard {
  ~KernelSwitchGuard() {
    set_force_generic_kernels(false);
    set_quant_dot_path_limit(QuantPath::kVnni);
  }
};

TEST(QuantGemm, ForceGenericAndThePathLimitTurnItOff) {
  KernelSwitchGuard guard;
  const bool cpu = quant_gemm_available();
  set_force_generic_kernels(true);
  EXPECT_FALSE(quant_gemm_available());
  set_force_generic_kernels(false);
  set_quant_dot_path_limit(QuantPath::kAvx2);
  EXPECT_FALSE(quant_gemm_available());
  ThreadPool pool(1);
  const std::vector<BlockQ8_0> w = random_weights<BlockQ8_0>(16, 1, 3);
  const std::vector<BlockQ8_0> x = random_activations(8, 1, 4);
  std::vector<float> y(128);
  EXPECT_THROW(quant_gemm_q8_0(w.data(), 16, x.data(), 8, 1, y.data(), pool), Error);
  set_quant_dot_path_limit(QuantPath::kVnni);
  EXPECT_EQ(quant_gemm_available(), cpu);
}

// A block-quantized weight [out, in] as matmul() takes it.
template <typename WBlock>
struct Weight {
  std::vector<WBlock> blocks;
  TensorView view;
  Weight(int64_t out, int64_t in, uint32_t seed)
      : blocks(random_weights<WBlock>(out, static_cast<size_t>(in) / 32, seed)) {
    view = TensorView{
        std::is_same_v<WBlock, BlockQ8_0> ? DType::Q8_0 : DType::Q4_0, {out, in}, blocks.data()};
  }
};

// quant_matmul's threshold (quant_matmul.cc): batches of this many rows take the GEMM.
constexpr int64_t kGemmMinRows = 5;

// matmul() over a prompt batch (the GEMM when available) against the generic path (the
// ggml scalar dot, exactly) and the single-row path (4 × 1 tiles / pairwise dots), on
// every path limit: the generic and AVX2 limits must give results with the old kernels.
template <typename WBlock>
void check_matmul(int64_t out, int64_t in, int64_t rows, int threads) {
  KernelSwitchGuard guard;
  const size_t blocks = static_cast<size_t>(in) / 32;
  const Weight<WBlock> w(out, in, static_cast<uint32_t>(out + in + rows));
  const std::vector<float> x =
      block_scaled_normals(static_cast<size_t>(rows * in), static_cast<uint32_t>(rows));
  ThreadPool pool(threads);
  std::vector<float> generic(static_cast<size_t>(rows * out), NAN);
  set_force_generic_kernels(true);
  matmul(x.data(), rows, w.view, generic.data(), pool);
  set_force_generic_kernels(false);
  for (QuantPath path : {QuantPath::kVnni, QuantPath::kAvx2, QuantPath::kGeneric}) {
    set_quant_dot_path_limit(path);
    SCOPED_TRACE("path " + quant_dot_target_name());
    std::vector<float> batch(generic.size(), NAN), single(static_cast<size_t>(out), NAN);
    matmul(x.data(), rows, w.view, batch.data(), pool);
    for (int64_t r = 0; r < rows; ++r) {
      matmul(x.data() + r * in, 1, w.view, single.data(), pool);
      std::vector<BlockQ8_0> xq(blocks);
      quantize_row_q8_0_ref(x.data() + r * in, xq.data(), static_cast<size_t>(in));
      for (int64_t o = 0; o < out; ++o) {
        const WBlock* wo = w.blocks.data() + static_cast<size_t>(o) * blocks;
        const auto k = static_cast<size_t>(r * out + o);
        ASSERT_EQ(generic[k], reference_dot(wo, xq.data(), blocks)) << "r=" << r << " o=" << o;
        // The GEMM (rows ≥ its threshold on the VNNI path) keeps the header's bound; the
        // other kernels (fewer rows, other paths, the single-row products) quant_dot.h's.
        const bool gemm = path == QuantPath::kVnni && rows >= kGemmMinRows;
        const double old = 2 * quant_test::dot_bound(wo, xq.data(), blocks);
        const double bound = (gemm ? gemm_bound(wo, xq.data(), blocks) : old) + 1e-30;
        ASSERT_LE(std::fabs(static_cast<double>(batch[k]) - generic[k]), bound)
            << "rows=" << rows << " r=" << r << " o=" << o;
        ASSERT_LE(std::fabs(static_cast<double>(batch[k]) - single[static_cast<size_t>(o)]),
                  bound + old)
            << "rows=" << rows << " r=" << r << " o=" << o;
        if (path == QuantPath::kGeneric) {
          ASSERT_EQ(batch[k], generic[k]);
        }
      }
    }
  }
}

TEST(QuantGemm, MatmulBatchesAgreeWithTheGenericAndSingleRowPaths) {
  for (int threads : {1, 2, 3}) {
    for (int64_t rows : {4, 5, 9, 16, 33}) {
      check_matmul<BlockQ8_0>(70, 256, rows, threads);
      check_matmul<BlockQ4_0>(70, 256, rows, threads);
      if (HasFatalFailure()) return;
    }
  }
  check_matmul<BlockQ8_0>(32, 5632, 12, 2);
  check_matmul<BlockQ4_0>(32, 5632, 12, 2);
}

}  // namespace
}  // namespace tulu
