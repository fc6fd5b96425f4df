// Block-quantized weights: round-trip error of the reference quantizers against bounds
// derived from the formats, the SIMD integer dot products against the scalar references
// on every path this CPU has (AVX-512 VNNI, AVX2, generic), and matmul() with quantized
// weights (matrix–vector and prompt batches, 1 and 2 threads) against those references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <type_traits>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/quant_dot.h"
#include "kernels/quant_dot_k.h"
#include "quant_test_util.h"
#include "tensor/half.h"
#include "tensor/quant_blocks.h"

namespace tulu {
namespace {

using quant_test::dot_bound;
using quant_test::scaled_normals;

constexpr double kEps = 1.0 / (1 << 23);  // fp32 unit roundoff × 2

// Q8_0: q = round(x/d) with d = amax/127, so |x − q·d| ≤ d/2; storing f16(d) adds
// |q|·|d − f16(d)|; x·(1/d) instead of x/d may move a value within 2⁻²² of a half to the
// other side (≤ 2⁻¹⁵·d more), and the product q·f16(d) rounds once (ε·|x̂|).
TEST(QuantRoundTrip, Q8_0WithinHalfAStep) {
  const std::vector<float> x = scaled_normals(32 * 2000, 1);
  std::vector<BlockQ8_0> q(x.size() / 32);
  quantize_row_q8_0_ref(x.data(), q.data(), x.size());
  std::vector<float> back(x.size());
  dequantize_row(q.data(), DType::Q8_0, x.size(), back.data());
  double worst_ratio = 0.0;
  for (size_t b = 0; b < q.size(); ++b) {
    float amax = 0.0f;
    for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const double d = static_cast<double>(amax / 127.0f), d16 = f16_to_f32(q[b].d);
    for (size_t j = 0; j < 32; ++j) {
      const size_t i = b * 32 + j;
      const double err = std::fabs(static_cast<double>(x[i]) - back[i]);
      const double bound = d * (0.5 + 0x1p-15) + std::abs(q[b].qs[j]) * std::fabs(d - d16) +
                           kEps * std::fabs(back[i]);
      ASSERT_LE(err, bound) << "block " << b << " element " << j;
      if (d >= 0x1p-14) worst_ratio = std::max(worst_ratio, err / d);  // f16-normal d
    }
  }
  std::printf(
      "Q8_0 round trip: max |x − x̂| / d = %.4f where f16(d) is normal (bound 0.5 + "
      "127·|d − f16(d)|/d ≤ 0.5 + 127·2⁻¹¹)\n",
      worst_ratio);
}

// Q4_0: x/d ∈ [−8, 8] (the signed max maps to −8); q = min(15, ⌊x/d + 8.5⌋), so
// |x − (q − 8)·d| ≤ |d|/2 except where the clamp bites (x/d > 7.5: error ≤ |d|); f16(d)
// adds 8·|d − f16(d)|, plus the roundings as for Q8_0.
TEST(QuantRoundTrip, Q4_0WithinHalfAStepExceptTheClamp) {
  const std::vector<float> x = scaled_normals(32 * 2000, 2);
  std::vector<BlockQ4_0> q(x.size() / 32);
  quantize_row_q4_0_ref(x.data(), q.data(), x.size());
  std::vector<float> back(x.size());
  dequantize_row(q.data(), DType::Q4_0, x.size(), back.data());
  double worst_unclamped = 0.0, worst_clamped = 0.0;
  size_t clamped = 0;
  for (size_t b = 0; b < q.size(); ++b) {
    float amax = 0.0f, max = 0.0f;
    for (size_t j = 0; j < 32; ++j) {
      if (amax < std::fabs(x[b * 32 + j])) {
        amax = std::fabs(x[b * 32 + j]);
        max = x[b * 32 + j];
      }
    }
    const double d = std::fabs(static_cast<double>(max / -8.0f)),
                 d16 = std::fabs(f16_to_f32(q[b].d));
    for (size_t j = 0; j < 32; ++j) {
      const size_t i = b * 32 + j;
      const bool clamp = static_cast<double>(x[i]) / (max / -8.0) > 7.5 - 1e-5;
      const double err = std::fabs(static_cast<double>(x[i]) - back[i]);
      const double bound = d * ((clamp ? 1.0 : 0.5) + 0x1p-18) + 8.0 * std::fabs(d - d16) +
                           kEps * std::fabs(back[i]);
      ASSERT_LE(err, bound) << "block " << b << " element " << j;
      (clamp ? worst_clamped : worst_unclamped) =
          std::max(clamp ? worst_clamped : worst_unclamped, err / d);
      clamped += clamp;
    }
  }
  std::printf(
      "Q4_0 round trip: max |x − x̂| / d = %.4f (bound 0.5 + 8·|d − f16(d)|/d), %.4f on %zu clamped "
      "elements (bound 1 + the same)\n",
      worst_unclamped, worst_clamped, clamped);
}

TEST(QuantRoundTrip, AllZeroBlocksHaveZeroScale) {
  const std::vector<float> zeros(64, 0.0f);
  BlockQ8_0 q8[2];
  BlockQ4_0 q4[2];
  quantize_row_q8_0_ref(zeros.data(), q8, 64);
  quantize_row_q4_0_ref(zeros.data(), q4, 64);
  for (int b = 0; b < 2; ++b) {
    EXPECT_EQ(q8[b].d, 0);
    EXPECT_EQ(f16_to_f32(q4[b].d), 0.0f);  // −0: d = max/−8 with max = 0, as in ggml
    for (int j = 0; j < 32; ++j) EXPECT_EQ(q8[b].qs[j], 0);
    for (int j = 0; j < 16; ++j) EXPECT_EQ(q4[b].qs[j], 0x88);  // q = 8 → value 0
  }
}

const QuantPath kPaths[] = {QuantPath::kVnni, QuantPath::kAvx2, QuantPath::kGeneric};

TEST(QuantDot, FastMatchesScalarReferenceOnEveryPath) {
  for (QuantPath path : kPaths) {
    set_quant_dot_path_limit(path);
    SCOPED_TRACE("path " + quant_dot_target_name());
    double worst = 0.0;
    for (size_t blocks : {1u, 2u, 3u, 7u, 64u, 176u}) {
      const std::vector<float> wf = scaled_normals(blocks * 32, static_cast<uint32_t>(blocks));
      const std::vector<float> xf =
          scaled_normals(blocks * 32, static_cast<uint32_t>(blocks + 100));
      std::vector<BlockQ8_0> w8(blocks), x8(blocks);
      std::vector<BlockQ4_0> w4(blocks);
      quantize_row_q8_0_ref(wf.data(), w8.data(), wf.size());
      quantize_row_q4_0_ref(wf.data(), w4.data(), wf.size());
      quantize_row_q8_0_ref(xf.data(), x8.data(), xf.size());
      // Extreme weights a foreign file may hold: −128 in Q8_0.
      w8[0].qs[0] = -128;
      const double e8 =
          std::fabs(vec_dot_q8_0_q8_0(w8.data(), x8.data(), blocks) -
                    static_cast<double>(vec_dot_q8_0_q8_0_ref(w8.data(), x8.data(), blocks)));
      const double e4 =
          std::fabs(vec_dot_q4_0_q8_0(w4.data(), x8.data(), blocks) -
                    static_cast<double>(vec_dot_q4_0_q8_0_ref(w4.data(), x8.data(), blocks)));
      const double b8 = 2 * dot_bound(w8.data(), x8.data(), blocks);
      const double b4 = 2 * dot_bound(w4.data(), x8.data(), blocks);
      EXPECT_LE(e8, b8) << "Q8_0 blocks=" << blocks;
      EXPECT_LE(e4, b4) << "Q4_0 blocks=" << blocks;
      if (path == QuantPath::kGeneric) {
        EXPECT_EQ(e8, 0.0);
        EXPECT_EQ(e4, 0.0);
      }
      worst = std::max({worst, e8 / b8, e4 / b4});
    }
    std::printf("%s dot products: worst |fast − ref| = %.3g of the bound\n",
                quant_dot_target_name().c_str(), worst);
  }
  set_quant_dot_path_limit(QuantPath::kVnni);
}

// A quantized weight [out, in] built from random rows.
struct QuantMatrix {
  std::vector<uint8_t> bytes;
  TensorView view;
  QuantMatrix(DType dtype, int64_t out, int64_t in, uint32_t seed) {
    const std::vector<float> values = scaled_normals(static_cast<size_t>(out * in), seed);
    bytes.resize(dtype_row_bytes(dtype, static_cast<uint64_t>(out * in)));
    if (dtype == DType::Q8_0) {
      auto* blocks = reinterpret_cast<BlockQ8_0*>(bytes.data());
      quantize_row_q8_0_ref(values.data(), blocks, values.size());
      // −128, which our quantizer never writes but a foreign file may hold (the unsigned
      // +128 trick of the tiles and the sign trick of the dots must both handle it).
      for (size_t b = 0; b < values.size() / 32; b += 3) blocks[b].qs[b % 32] = -128;
    } else if (dtype == DType::Q4_0)
      quantize_row_q4_0_ref(values.data(), reinterpret_cast<BlockQ4_0*>(bytes.data()),
                            values.size());
    else {  // K-quants: random blocks with finite scales
      std::mt19937 gen(seed);
      for (auto& byte : bytes) byte = static_cast<uint8_t>(gen());
      const size_t block_bytes = dtype_block_bytes(dtype);
      for (size_t off = 0; off < bytes.size(); off += block_bytes) {
        const uint16_t d = f32_to_f16(0.01f * static_cast<float>(gen() % 100) / 100.0f);
        if (dtype == DType::Q4_K) {
          std::memcpy(&bytes[off], &d, 2);
          std::memcpy(&bytes[off + 2], &d, 2);
        } else {
          std::memcpy(&bytes[off + 208], &d, 2);
        }
      }
    }
    view = TensorView{dtype, {out, in}, bytes.data()};
  }
};

TEST(QuantMatmul, MatchesReferenceForEveryTypePathAndBatch) {
  const int64_t out = 40, in = 512;
  for (DType dtype : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const QuantMatrix w(dtype, out, in, 5);
    std::vector<float> dequant(static_cast<size_t>(out * in));
    dequantize_row(w.view.data, dtype, dequant.size(), dequant.data());
    for (int threads : {1, 2}) {
      ThreadPool pool(threads);
      for (int64_t rows : {1, 3, 17}) {
        const std::vector<float> x = scaled_normals(static_cast<size_t>(rows * in), 77);
        std::vector<float> fast(static_cast<size_t>(rows * out)), generic(fast.size());
        matmul(x.data(), rows, w.view, fast.data(), pool);
        set_force_generic_kernels(true);
        matmul(x.data(), rows, w.view, generic.data(), pool);
        set_force_generic_kernels(false);
        for (int64_t r = 0; r < rows; ++r) {
          std::vector<BlockQ8_0> xq(static_cast<size_t>(in) / 32);
          quantize_row_q8_0_ref(x.data() + r * in, xq.data(), static_cast<size_t>(in));
          for (int64_t o = 0; o < out; ++o) {
            const size_t k = static_cast<size_t>(r * out + o);
            const uint8_t* wrow =
                w.bytes.data() + static_cast<size_t>(o) * dtype_row_bytes(dtype, in);
            if (dtype == DType::Q8_0 || dtype == DType::Q4_0) {
              // Generic path = the ggml scalar dot on Q8_0 activations, exactly.
              const auto* w8 = reinterpret_cast<const BlockQ8_0*>(wrow);
              const auto* w4 = reinterpret_cast<const BlockQ4_0*>(wrow);
              const float ref = dtype == DType::Q8_0
                                    ? vec_dot_q8_0_q8_0_ref(w8, xq.data(), xq.size())
                                    : vec_dot_q4_0_q8_0_ref(w4, xq.data(), xq.size());
              const double bound = dtype == DType::Q8_0 ? 2 * dot_bound(w8, xq.data(), xq.size())
                                                        : 2 * dot_bound(w4, xq.data(), xq.size());
              ASSERT_EQ(generic[k], ref) << dtype_name(dtype) << " r=" << r << " o=" << o;
              ASSERT_LE(std::fabs(static_cast<double>(fast[k]) - ref), bound)
                  << dtype_name(dtype) << " r=" << r << " o=" << o;
            } else {
              // K-quants: every output is one vec_dot on the row's Q8_K quantization
              // (generic: ggml's scalar code), bit for bit; quant_dot_k_test bounds the dots.
              std::vector<BlockQ8_K> xk(static_cast<size_t>(in) / kSuperBlock);
              quantize_row_q8_K_ref(x.data() + r * in, xk.data(), static_cast<size_t>(in));
              const auto* w4k = reinterpret_cast<const BlockQ4_K*>(wrow);
              const auto* w6k = reinterpret_cast<const BlockQ6_K*>(wrow);
              const bool q4k = dtype == DType::Q4_K;
              ASSERT_EQ(generic[k], q4k ? vec_dot_q4_K_q8_K_ref(w4k, xk.data(), xk.size())
                                        : vec_dot_q6_K_q8_K_ref(w6k, xk.data(), xk.size()))
                  << dtype_name(dtype) << " r=" << r << " o=" << o;
              ASSERT_EQ(fast[k], q4k ? vec_dot_q4_K_q8_K(w4k, xk.data(), xk.size())
                                     : vec_dot_q6_K_q8_K(w6k, xk.data(), xk.size()))
                  << dtype_name(dtype) << " r=" << r << " o=" << o;
            }
          }
        }
      }
    }
  }
}

// Prompt batches: 4 × 4 tiles (VNNI) plus leftover rows/columns (pairwise dots) cover
// every output exactly once; each agrees with the single-row product within the bound.
TEST(QuantMatmul, PromptBatchRowsMatchSingleRowProducts) {
  ThreadPool pool(2);
  const int64_t out = 26, in = 256;
  for (QuantPath path : kPaths) {
    set_quant_dot_path_limit(path);
    SCOPED_TRACE("path " + quant_dot_target_name());
    for (int64_t rows : {4, 9, 16}) {
      for (DType dtype : {DType::Q8_0, DType::Q4_0}) {
        const QuantMatrix w(dtype, out, in, 9);
        const std::vector<float> x = scaled_normals(static_cast<size_t>(rows * in), 3);
        std::vector<float> batch(static_cast<size_t>(rows * out), NAN),
            single(static_cast<size_t>(out));
        matmul(x.data(), rows, w.view, batch.data(), pool);
        for (int64_t r = 0; r < rows; ++r) {
          matmul(x.data() + r * in, 1, w.view, single.data(), pool);
          std::vector<BlockQ8_0> xq(static_cast<size_t>(in) / 32);
          quantize_row_q8_0_ref(x.data() + r * in, xq.data(), static_cast<size_t>(in));
          for (int64_t o = 0; o < out; ++o) {
            const uint8_t* wrow =
                w.bytes.data() + static_cast<size_t>(o) * dtype_row_bytes(dtype, in);
            const double bound =
                dtype == DType::Q8_0
                    ? 4 * dot_bound(reinterpret_cast<const BlockQ8_0*>(wrow), xq.data(), xq.size())
                    : 4 * dot_bound(reinterpret_cast<const BlockQ4_0*>(wrow), xq.data(), xq.size());
            ASSERT_LE(
                std::fabs(batch[static_cast<size_t>(r * out + o)] - single[static_cast<size_t>(o)]),
                bound)
                << dtype_name(dtype) << " rows=" << rows << " r=" << r << " o=" << o;
          }
        }
      }
    }
  }
  set_quant_dot_path_limit(QuantPath::kVnni);
}

TEST(QuantMatmul, RowsThatAreNotWholeBlocksAreAnError) {
  ThreadPool pool(1);
  std::vector<uint8_t> bytes(1024);
  const TensorView w{DType::Q4_0, {2, 48}, bytes.data()};
  std::vector<float> x(48), y(2);
  EXPECT_THROW(matmul(x.data(), 1, w, y.data(), pool), Error);
}

}  // namespace
}  // namespace tulu
