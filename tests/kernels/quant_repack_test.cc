// Q4_0_R16 (tensor/quant_repack.h), the 16-row interleaved Q4_0 layout made at load:
//   * repacking then unpacking gives back every byte, and to_f32 reads the same values as
//     from the plain rows;
//   * the decode kernel (quant_matvec.h) is within the dot-product bound of ggml's scalar
//     dot for every row, for several block counts, and gives the prompt GEMM's bits;
//   * through matmul() and matmul_group(): on the prompt GEMM and on every fallback path
//     (AVX2, generic, each unpacking the groups) R16 gives the very bits the plain rows
//     give; 1–4 activation rows (the decode kernel, the GEMM where plain rows take tiles)
//     stay within the bound; 1–3 threads;
//   * the row-based decoders reject it by name instead of reading a row that is not there.
#include "tensor/quant_repack.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"
#include "kernels/quant_dot.h"
#include "kernels/quant_matvec.h"
#include "quant_test_util.h"
#include "tensor/quant_blocks.h"
#include "tensor/tensor.h"

namespace tulu {
namespace {

using quant_test::dot_bound;
using quant_test::scaled_normals;

struct Weights {
  int64_t out, in;
  std::vector<BlockQ4_0> plain;
  std::vector<BlockQ4_0x16> r16;
  size_t blocks() const { return static_cast<size_t>(in) / kQuantBlock; }
  TensorView plain_view() const { return {DType::Q4_0, {out, in}, plain.data()}; }
  TensorView r16_view() const { return {DType::Q4_0_R16, {out, in}, r16.data()}; }
};

Weights make_weights(int64_t out, int64_t in, uint32_t seed) {
  Weights w{out, in, {}, {}};
  const std::vector<float> values = scaled_normals(static_cast<size_t>(out * in), seed);
  w.plain.resize(static_cast<size_t>(out) * w.blocks());
  quantize_row_q4_0_ref(values.data(), w.plain.data(), values.size());
  // The extreme nibbles 0 and 15 in every lane position of some blocks.
  for (size_t b = 0; b < w.plain.size(); b += 5) w.plain[b].qs[b % 16] = (b % 2) ? 0xF0 : 0x0F;
  w.r16.resize(w.plain.size() / kRepackRows);
  repack_q4_0_r16(w.plain.data(), out, w.blocks(), w.r16.data());
  return w;
}

std::vector<float> activations(int64_t rows, int64_t in, uint32_t seed) {
  return scaled_normals(static_cast<size_t>(rows * in), seed);
}

TEST(QuantRepack, UnpackGivesBackEveryByteAndToF32TheSameValues) {
  for (int64_t in : {32, 96, 2048}) {
    const Weights w = make_weights(48, in, static_cast<uint32_t>(in));
    std::vector<BlockQ4_0> back(w.plain.size());
    for (int64_t g = 0; g < w.out / kRepackRows; ++g)
      unpack_q4_0_r16_group(w.r16.data() + static_cast<size_t>(g) * w.blocks(), w.blocks(),
                            back.data() + static_cast<size_t>(g * kRepackRows) * w.blocks());
    ASSERT_EQ(0, std::memcmp(back.data(), w.plain.data(), back.size() * sizeof(BlockQ4_0)));
    EXPECT_EQ(to_f32(w.r16_view()), to_f32(w.plain_view())) << "in=" << in;
    // The layout as documented: lane r of step q holds bytes 4q..4q+3 of row r.
    const BlockQ4_0& row5 = w.plain[5 * w.blocks() + 0];
    EXPECT_EQ(w.r16[0].d[5], row5.d);
    EXPECT_EQ(0, std::memcmp(w.r16[0].qs + (2 * 16 + 5) * 4, row5.qs + 8, 4));
  }
}

TEST(QuantRepack, OnlyWholeGroupsOfWholeBlocks) {
  EXPECT_TRUE(q4_0_rows16_repackable(16, 32));
  EXPECT_TRUE(q4_0_rows16_repackable(32000, 2048));
  EXPECT_FALSE(q4_0_rows16_repackable(24, 64));
  EXPECT_FALSE(q4_0_rows16_repackable(0, 64));
  EXPECT_FALSE(q4_0_rows16_repackable(16, 48));
}

TEST(QuantRepack, DecodeKernelMatchesScalarDots) {
  double worst = 0.0;
  for (size_t blocks : {1u, 2u, 3u, 7u, 64u, 65u, 176u}) {
    for (int64_t rows : {16, 48}) {
      const auto in = static_cast<int64_t>(blocks * kQuantBlock);
      const Weights w = make_weights(rows, in, static_cast<uint32_t>(blocks * 3 + rows));
      const std::vector<float> xf = activations(1, in, static_cast<uint32_t>(blocks + 5));
      std::vector<BlockQ8_0> x(blocks);
      quantize_row_q8_0_ref(xf.data(), x.data(), xf.size());
      QuantMatvecRow prepared;
      if (!prepared.prepare(DType::Q4_0_R16, x.data(), blocks)) GTEST_SKIP() << "no AVX-512 path";
      std::vector<float> out(static_cast<size_t>(rows), NAN);
      quant_matvec_rows(w.r16.data(), static_cast<size_t>(rows), prepared, out.data());
      for (int64_t r = 0; r < rows; ++r) {
        const BlockQ4_0* row = w.plain.data() + static_cast<size_t>(r) * blocks;
        const double expected = vec_dot_q4_0_q8_0_ref(row, x.data(), blocks);
        const double bound = dot_bound(row, x.data(), blocks);
        const double err = std::fabs(static_cast<double>(out[static_cast<size_t>(r)]) - expected);
        ASSERT_LE(err, bound) << "blocks=" << blocks << " r=" << r;
        worst = std::max(worst, err / bound);
      }
    }
  }
  std::printf("Q4_0_R16 decode kernel: worst |fast − ref| = %.3g of the bound\n", worst);
}

// matmul() on R16 against matmul() on the plain rows, on every path the CPU has.
TEST(QuantRepack, MatmulEqualsPlainRowsOnEveryPath) {
  const Weights w = make_weights(80, 160, 17);  // 5 groups, 5 blocks (one Q4_0 quad + 1)
  const TensorView plain = w.plain_view(), r16 = w.r16_view();
  for (QuantPath path : {QuantPath::kVnni, QuantPath::kAvx2, QuantPath::kGeneric}) {
    if (static_cast<int>(path) > static_cast<int>(quant_cpu_best_path())) continue;
    set_quant_dot_path_limit(path);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      for (int64_t rows : {1, 2, 3, 4, 5, 17, 33}) {
        const std::vector<float> x = activations(rows, w.in, static_cast<uint32_t>(rows));
        std::vector<float> expected(static_cast<size_t>(rows * w.out), NAN);
        std::vector<float> got(expected.size(), NAN);
        matmul(x.data(), rows, plain, expected.data(), pool);
        matmul(x.data(), rows, r16, got.data(), pool);
        // Where both layouts take the same kernel (the GEMM from 5 rows on, every fallback)
        // the bits agree; R16's decode kernel (1–3 rows) and its GEMM at 4 rows (plain rows
        // take 4 × 4 tiles there) are held to the bound against the scalar dots.
        const bool same_kernel = path != QuantPath::kVnni || rows >= 5;
        for (int64_t r = 0; r < rows; ++r) {
          std::vector<BlockQ8_0> xq(w.blocks());
          quantize_row_q8_0_ref(x.data() + r * w.in, xq.data(), static_cast<size_t>(w.in));
          for (int64_t o = 0; o < w.out; ++o) {
            const auto i = static_cast<size_t>(r * w.out + o);
            if (same_kernel) {
              ASSERT_EQ(got[i], expected[i]) << "path " << static_cast<int>(path) << " threads="
                                             << threads << " rows=" << rows << " r=" << r
                                             << " o=" << o;
              continue;
            }
            const BlockQ4_0* row = w.plain.data() + static_cast<size_t>(o) * w.blocks();
            ASSERT_LE(std::fabs(got[i] - vec_dot_q4_0_q8_0_ref(row, xq.data(), w.blocks())),
                      dot_bound(row, xq.data(), w.blocks()))
                << "threads=" << threads << " rows=" << rows << " r=" << r << " o=" << o;
          }
        }
      }
    }
  }
  set_quant_dot_path_limit(QuantPath::kVnni);
}

// The decode kernel and the prompt GEMM form each output as the same chain (exact block
// sums, scaled and fused into one fp32 accumulator in block order), so a generation step
// gives the very bits the same row gets inside a prompt batch.
TEST(QuantRepack, DecodeStepsGiveTheBitsOfThePromptGemm) {
  if (!quant_matvec_available()) GTEST_SKIP() << "no AVX-512 path";
  const Weights w = make_weights(64, 2048, 23);
  const TensorView r16 = w.r16_view();
  ThreadPool pool(2);
  const int64_t rows = 7;
  const std::vector<float> x = activations(rows, w.in, 31);
  std::vector<float> batch(static_cast<size_t>(rows * w.out));
  matmul(x.data(), rows, r16, batch.data(), pool);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> step(static_cast<size_t>(w.out), NAN);
    matmul(x.data() + r * w.in, 1, r16, step.data(), pool);
    for (int64_t o = 0; o < w.out; ++o)
      ASSERT_EQ(step[static_cast<size_t>(o)], batch[static_cast<size_t>(r * w.out + o)])
          << "r=" << r << " o=" << o;
  }
}

// A fused q/k/v-like group of R16 outputs (one dispatch, chunks on group boundaries) gives
// what each output gives alone.
TEST(QuantRepack, MatmulGroupEqualsSeparateProducts) {
  const Weights q = make_weights(64, 256, 1), k = make_weights(16, 256, 2),
                v = make_weights(32, 256, 3);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t rows : {1, 3}) {
      const std::vector<float> x = activations(rows, 256, 9);
      std::vector<float> yq(static_cast<size_t>(rows * 64)), yk(static_cast<size_t>(rows * 16)),
          yv(static_cast<size_t>(rows * 32));
      const TensorView qv = q.r16_view(), kv = k.r16_view(), vv = v.r16_view();
      const MatmulOutput outputs[] = {{&qv, yq.data()}, {&kv, yk.data()}, {&vv, yv.data()}};
      matmul_group(x.data(), rows, outputs, pool);
      for (const auto& [view, y] : {std::pair{&qv, &yq}, {&kv, &yk}, {&vv, &yv}}) {
        std::vector<float> alone(y->size(), NAN);
        matmul(x.data(), rows, *view, alone.data(), pool);
        EXPECT_EQ(*y, alone) << "threads=" << threads << " rows=" << rows;
      }
    }
  }
}

TEST(QuantRepack, RowDecodersRejectTheInterleavedLayout) {
  const Weights w = make_weights(16, 32, 4);
  std::vector<float> row(32);
  try {
    dequantize_row(w.r16.data(), DType::Q4_0_R16, 32, row.data());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Q4_0_R16"), std::string::npos) << e.what();
  }
  const TensorView odd{DType::Q4_0_R16, {8, 32}, w.r16.data()};
  EXPECT_THROW(to_f32(odd), Error);
}

}  // namespace
}  // namespace tulu
