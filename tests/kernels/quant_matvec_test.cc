// The 512-bit decode kernel (quant_matvec.h) against the scalar ggml block dots: every
// output within the dot-product bound, for row counts that exercise the 4-row tiles and
// the single-row tail, odd block counts (the last block goes through the pairwise dot),
// the extreme weight −128 of Q8_0, and through matmul() with 1–3 activation rows.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/quant_dot.h"
#include "kernels/quant_matvec.h"
#include "quant_test_util.h"
#include "tensor/quant_blocks.h"

namespace tulu {
namespace {

using quant_test::dot_bound;
using quant_test::scaled_normals;

template <typename WBlock>
std::vector<WBlock> quantized_rows(size_t rows, size_t blocks, uint32_t seed) {
  const std::vector<float> values = scaled_normals(rows * blocks * 32, seed);
  std::vector<WBlock> w(rows * blocks);
  if constexpr (std::is_same_v<WBlock, BlockQ8_0>) {
    quantize_row_q8_0_ref(values.data(), w.data(), values.size());
    for (size_t b = 0; b < w.size(); b += 3) w[b].qs[b % 32] = -128;  // a foreign file may
  } else {
    quantize_row_q4_0_ref(values.data(), w.data(), values.size());
  }
  return w;
}

template <typename WBlock>
void check_rows(DType dtype, float (*ref)(const WBlock*, const BlockQ8_0*, size_t)) {
  double worst = 0.0;
  for (size_t blocks : {1u, 2u, 3u, 7u, 24u, 64u, 65u, 176u}) {
    for (size_t rows : {1u, 3u, 4u, 9u}) {
      const auto w = quantized_rows<WBlock>(rows, blocks, static_cast<uint32_t>(blocks * rows));
      const std::vector<float> xf = scaled_normals(blocks * 32, static_cast<uint32_t>(blocks + 7));
      std::vector<BlockQ8_0> x(blocks);
      quantize_row_q8_0_ref(xf.data(), x.data(), xf.size());
      QuantMatvecRow prepared;
      if (!prepared.prepare(dtype, x.data(), blocks)) GTEST_SKIP() << "no AVX-512 VBMI path";
      std::vector<float> out(rows, NAN);
      quant_matvec_rows(w.data(), rows, prepared, out.data());
      for (size_t r = 0; r < rows; ++r) {
        const WBlock* row = w.data() + r * blocks;
        const double expected = ref(row, x.data(), blocks);
        const double bound = 2 * dot_bound(row, x.data(), blocks);
        const double err = std::fabs(static_cast<double>(out[r]) - expected);
        ASSERT_LE(err, bound) << dtype_name(dtype) << " blocks=" << blocks << " rows=" << rows
                              << " r=" << r;
        worst = std::max(worst, err / bound);
      }
    }
  }
  std::printf("%s matvec (512-bit): worst |fast − ref| = %.3g of the bound\n",
              std::string(dtype_name(dtype)).c_str(), worst);
}

TEST(QuantMatvec, Q8_0RowsMatchScalarDots) {
  check_rows<BlockQ8_0>(DType::Q8_0, vec_dot_q8_0_q8_0_ref);
}

TEST(QuantMatvec, Q4_0RowsMatchScalarDots) {
  check_rows<BlockQ4_0>(DType::Q4_0, vec_dot_q4_0_q8_0_ref);
}

// A lower path forced (tests of the other paths, TULU_FORCE_GENERIC) declines to prepare.
TEST(QuantMatvec, DeclinesWhenALowerPathIsForced) {
  std::vector<BlockQ8_0> x(2);
  quantize_row_q8_0_ref(scaled_normals(64, 1).data(), x.data(), 64);
  set_quant_dot_path_limit(QuantPath::kAvx2);
  QuantMatvecRow prepared;
  EXPECT_FALSE(prepared.prepare(DType::Q4_0, x.data(), 2));
  set_quant_dot_path_limit(QuantPath::kVnni);
}

// Through matmul(): generation steps of 1–3 rows, output rows split over 1–3 threads,
// against the scalar dot of each row's own Q8_0 quantization.
TEST(QuantMatvec, MatmulWithFewRowsMatchesScalarDots) {
  const int64_t out = 70, in = 96;  // 3 blocks: one pair + the odd block
  for (DType dtype : {DType::Q8_0, DType::Q4_0}) {
    std::vector<uint8_t> bytes(dtype_row_bytes(dtype, static_cast<uint64_t>(out * in)));
    const std::vector<float> values = scaled_normals(static_cast<size_t>(out * in), 11);
    encode_row(values.data(), values.size(), dtype, bytes.data());
    const TensorView w{dtype, {out, in}, bytes.data()};
    const size_t row_bytes = dtype_row_bytes(dtype, static_cast<uint64_t>(in));
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      for (int64_t rows : {1, 2, 3}) {
        const std::vector<float> x = scaled_normals(static_cast<size_t>(rows * in), 5);
        std::vector<float> y(static_cast<size_t>(rows * out), NAN);
        matmul(x.data(), rows, w, y.data(), pool);
        for (int64_t r = 0; r < rows; ++r) {
          std::vector<BlockQ8_0> xq(static_cast<size_t>(in) / 32);
          quantize_row_q8_0_ref(x.data() + r * in, xq.data(), static_cast<size_t>(in));
          for (int64_t o = 0; o < out; ++o) {
            const uint8_t* wrow = bytes.data() + static_cast<size_t>(o) * row_bytes;
            double ref = 0, bound = 0;
            if (dtype == DType::Q8_0) {
              const auto* w8 = reinterpret_cast<const BlockQ8_0*>(wrow);
              ref = vec_dot_q8_0_q8_0_ref(w8, xq.data(), xq.size());
              bound = 2 * dot_bound(w8, xq.data(), xq.size());
            } else {
              const auto* w4 = reinterpret_cast<const BlockQ4_0*>(wrow);
              ref = vec_dot_q4_0_q8_0_ref(w4, xq.data(), xq.size());
              bound = 2 * dot_bound(w4, xq.data(), xq.size());
            }
            ASSERT_LE(std::fabs(y[static_cast<size_t>(r * out + o)] - ref), bound)
                << dtype_name(dtype) << " threads=" << threads << " rows=" << rows << " r=" << r
                << " o=" << o;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace tulu
