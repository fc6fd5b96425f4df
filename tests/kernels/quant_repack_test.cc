// Q4_0_R16 / Q8_0_R16 (tensor/quant_repack.h), the 16-row interleaved layouts made at load:
//   * repacking then unpacking gives back every byte, and to_f32 reads the same values as
//     from the plain rows;
//   * the decode kernel (quant_matvec.h) is within the dot-product bound of ggml's scalar
//     dot for every row, for several block counts, and gives the prompt GEMM's bits;
//   * through matmul() and matmul_group(): on the prompt GEMM and on every fallback path
//     (AVX2, generic, each unpacking the groups) R16 gives the very bits the plain rows
//     give; 1–4 activation rows (the decode kernel, the GEMM where plain rows take tiles)
//     stay within the bound; 1–3 threads;
//   * the row-based decoders reject the layouts by name instead of reading a row that is
//     not there.
#include "tensor/quant_repack.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
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

constexpr DType kPlainTypes[] = {DType::Q4_0, DType::Q8_0};

// A [out, in] weight in both layouts.
struct Weights {
  DType plain_type;
  int64_t out, in;
  std::vector<uint8_t> plain, r16;
  size_t blocks() const { return static_cast<size_t>(in) / kQuantBlock; }
  size_t row_bytes() const { return dtype_row_bytes(plain_type, static_cast<uint64_t>(in)); }
  const uint8_t* row(int64_t o) const {
    return plain.data() + static_cast<size_t>(o) * row_bytes();
  }
  TensorView plain_view() const { return {plain_type, {out, in}, plain.data()}; }
  TensorView r16_view() const { return {interleaved_dtype(plain_type), {out, in}, r16.data()}; }
};

Weights make_weights(DType type, int64_t out, int64_t in, uint32_t seed) {
  Weights w{type, out, in, {}, {}};
  const std::vector<float> values = scaled_normals(static_cast<size_t>(out * in), seed);
  w.plain.resize(static_cast<size_t>(out) * w.row_bytes());
  w.r16.resize(w.plain.size());
  encode_row(values.data(), values.size(), type, w.plain.data());
  if (type == DType::Q4_0) {
    auto* blocks = reinterpret_cast<BlockQ4_0*>(w.plain.data());
    // The extreme nibbles 0 and 15 in many lane positions.
    for (size_t b = 0; b < w.plain.size() / sizeof(BlockQ4_0); b += 5)
      blocks[b].qs[b % 16] = (b % 2) ? 0xF0 : 0x0F;
  } else {
    auto* blocks = reinterpret_cast<BlockQ8_0*>(w.plain.data());
    for (size_t b = 0; b < w.plain.size() / sizeof(BlockQ8_0); b += 3)
      blocks[b].qs[b % 32] = -128;  // a foreign file may hold it
  }
  repack_r16(type, w.plain.data(), out, w.blocks(), w.r16.data());
  return w;
}

// ggml's scalar dot of weight row o with xq, and the bound a fast kernel is held to.
std::pair<double, double> reference(const Weights& w, int64_t o, const BlockQ8_0* xq) {
  if (w.plain_type == DType::Q4_0) {
    const auto* row = reinterpret_cast<const BlockQ4_0*>(w.row(o));
    return {vec_dot_q4_0_q8_0_ref(row, xq, w.blocks()), dot_bound(row, xq, w.blocks())};
  }
  const auto* row = reinterpret_cast<const BlockQ8_0*>(w.row(o));
  return {vec_dot_q8_0_q8_0_ref(row, xq, w.blocks()), dot_bound(row, xq, w.blocks())};
}

std::vector<float> activations(int64_t rows, int64_t in, uint32_t seed) {
  return scaled_normals(static_cast<size_t>(rows * in), seed);
}

std::string name(DType t) {
  return std::string(dtype_name(t));
}

TEST(QuantRepack, UnpackGivesBackEveryByteAndToF32TheSameValues) {
  for (DType type : kPlainTypes) {
    for (int64_t in : {32, 96, 2048}) {
      const Weights w = make_weights(type, 48, in, static_cast<uint32_t>(in));
      std::vector<uint8_t> back(w.plain.size());
      const size_t group_bytes = kRepackRows * w.row_bytes();
      for (size_t g = 0; g < static_cast<size_t>(w.out / kRepackRows); ++g) {
        unpack_r16_group(interleaved_dtype(type), w.r16.data() + g * group_bytes, w.blocks(),
                         back.data() + g * group_bytes);
      }
      ASSERT_EQ(back, w.plain) << name(type) << " in=" << in;
      EXPECT_EQ(to_f32(w.r16_view()), to_f32(w.plain_view())) << name(type) << " in=" << in;
    }
  }
  // The layout as documented: lane r of step q holds bytes 4q..4q+3 of row r's block.
  const Weights q4 = make_weights(DType::Q4_0, 16, 64, 1);
  const auto& row5 = reinterpret_cast<const BlockQ4_0*>(q4.row(5))[0];
  const auto& x16 = reinterpret_cast<const BlockQ4_0x16*>(q4.r16.data())[0];
  EXPECT_EQ(x16.d[5], row5.d);
  EXPECT_EQ(0, std::memcmp(x16.qs + (2 * 16 + 5) * 4, row5.qs + 8, 4));
  const Weights q8 = make_weights(DType::Q8_0, 16, 64, 2);
  const auto& row9 = reinterpret_cast<const BlockQ8_0*>(q8.row(9))[1];
  const auto& y16 = reinterpret_cast<const BlockQ8_0x16*>(q8.r16.data())[1];
  EXPECT_EQ(y16.d[9], row9.d);
  EXPECT_EQ(0, std::memcmp(y16.qs + (7 * 16 + 9) * 4, row9.qs + 28, 4));
}

TEST(QuantRepack, OnlyWholeGroupsOfWholeBlocks) {
  EXPECT_TRUE(rows16_repackable(16, 32));
  EXPECT_TRUE(rows16_repackable(32000, 2048));
  EXPECT_FALSE(rows16_repackable(24, 64));
  EXPECT_FALSE(rows16_repackable(0, 64));
  EXPECT_FALSE(rows16_repackable(16, 48));
  EXPECT_EQ(interleaved_dtype(DType::Q4_0), DType::Q4_0_R16);
  EXPECT_EQ(plain_dtype(DType::Q8_0_R16), DType::Q8_0);
  EXPECT_EQ(interleaved_dtype(DType::Q6_K), DType::Q6_K);
  uint8_t scratch[sizeof(BlockQ8_0x16)] = {};
  EXPECT_THROW(repack_r16(DType::Q6_K, scratch, 16, 1, scratch), Error);
  EXPECT_THROW(unpack_r16_group(DType::Q4_0, scratch, 1, scratch), Error);
}

TEST(QuantRepack, DecodeKernelMatchesScalarDots) {
  if (!quant_matvec_available()) GTEST_SKIP() << "no AVX-512 path";
  for (DType type : kPlainTypes) {
    double worst = 0.0;
    for (size_t blocks : {1u, 2u, 3u, 7u, 64u, 65u, 176u}) {
      for (int64_t rows : {16, 48}) {
        const auto in = static_cast<int64_t>(blocks * kQuantBlock);
        const Weights w = make_weights(type, rows, in, static_cast<uint32_t>(blocks * 3 + rows));
        const std::vector<float> xf = activations(1, in, static_cast<uint32_t>(blocks + 5));
        std::vector<BlockQ8_0> x(blocks);
        quantize_row_q8_0_ref(xf.data(), x.data(), xf.size());
        QuantMatvecRow prepared;
        ASSERT_TRUE(prepared.prepare(interleaved_dtype(type), x.data(), blocks));
        std::vector<float> out(static_cast<size_t>(rows), NAN);
        quant_matvec_rows(w.r16.data(), static_cast<size_t>(rows), prepared, out.data());
        for (int64_t r = 0; r < rows; ++r) {
          const auto [expected, bound] = reference(w, r, x.data());
          const double err = std::fabs(out[static_cast<size_t>(r)] - expected);
          ASSERT_LE(err, bound) << name(type) << " blocks=" << blocks << " r=" << r;
          worst = std::max(worst, err / bound);
        }
      }
    }
    std::printf("%s_R16 decode kernel: worst |fast − ref| = %.3g of the bound\n",
                name(type).c_str(), worst);
  }
}

// matmul() on R16 against matmul() on the plain rows, on every path the CPU has.
TEST(QuantRepack, MatmulEqualsPlainRowsOnEveryPath) {
  for (DType type : kPlainTypes) {
    const Weights w = make_weights(type, 80, 160, 17);  // 5 groups, 5 blocks
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
          // Where both layouts take the same kernel (the GEMM from 5 rows on, every
          // fallback) the bits agree; R16's decode kernel (1–3 rows) and its GEMM at 4 rows
          // (plain rows take 4 × 4 tiles there) are held to the bound against the scalar dots.
          const bool same_kernel = path != QuantPath::kVnni || rows >= 5;
          for (int64_t r = 0; r < rows; ++r) {
            std::vector<BlockQ8_0> xq(w.blocks());
            quantize_row_q8_0_ref(x.data() + r * w.in, xq.data(), static_cast<size_t>(w.in));
            for (int64_t o = 0; o < w.out; ++o) {
              const auto i = static_cast<size_t>(r * w.out + o);
              const std::string where =
                  name(type) + " path " + std::to_string(static_cast<int>(path)) +
                  " threads=" + std::to_string(threads) + " rows=" + std::to_string(rows) +
                  " r=" + std::to_string(r) + " o=" + std::to_string(o);
              if (same_kernel) {
                ASSERT_EQ(got[i], expected[i]) << where;
              } else {
                const auto [ref, bound] = reference(w, o, xq.data());
                ASSERT_LE(std::fabs(got[i] - ref), bound) << where;
              }
            }
          }
        }
      }
    }
    set_quant_dot_path_limit(QuantPath::kVnni);
  }
}

// The decode kernel and the prompt GEMM form each output as the same chain (exact block
// sums, scaled and fused into one fp32 accumulator in block order), so a generation step —
// of one row, or 2–4 concurrent ones in one pass — gives the very bits the same row gets
// inside a prompt batch.
TEST(QuantRepack, DecodeStepsGiveTheBitsOfThePromptGemm) {
  if (!quant_matvec_available()) GTEST_SKIP() << "no AVX-512 path";
  for (DType type : kPlainTypes) {
    const Weights w = make_weights(type, 64, 2048, 23);
    const TensorView r16 = w.r16_view();
    ThreadPool pool(2);
    const int64_t rows = 7;
    const std::vector<float> x = activations(rows, w.in, 31);
    std::vector<float> batch(static_cast<size_t>(rows * w.out));
    matmul(x.data(), rows, r16, batch.data(), pool);
    // Steps of 1–4 rows (the multi-row pass of quant_matvec_interleaved for 2–4).
    for (int64_t step_rows = 1; step_rows <= kMaxInterleavedMatvecRows; ++step_rows) {
      for (int64_t r = 0; r + step_rows <= rows; r += step_rows) {
        std::vector<float> step(static_cast<size_t>(step_rows * w.out), NAN);
        matmul(x.data() + r * w.in, step_rows, r16, step.data(), pool);
        for (size_t i = 0; i < step.size(); ++i)
          ASSERT_EQ(step[i], batch[static_cast<size_t>(r * w.out) + i])
              << name(type) << " step of " << step_rows << " rows from row " << r << " i=" << i;
      }
    }
  }
}

// A fused q/k/v-like group of R16 outputs (one dispatch, chunks on group boundaries) gives
// what each output gives alone.
TEST(QuantRepack, MatmulGroupEqualsSeparateProducts) {
  for (DType type : kPlainTypes) {
    const Weights q = make_weights(type, 64, 256, 1), k = make_weights(type, 16, 256, 2),
                  v = make_weights(type, 32, 256, 3);
    const TensorView qv = q.r16_view(), kv = k.r16_view(), vv = v.r16_view();
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      for (int64_t rows : {1, 3}) {
        const std::vector<float> x = activations(rows, 256, 9);
        std::vector<float> yq(static_cast<size_t>(rows * 64)), yk(static_cast<size_t>(rows * 16)),
            yv(static_cast<size_t>(rows * 32));
        const MatmulOutput outputs[] = {{&qv, yq.data()}, {&kv, yk.data()}, {&vv, yv.data()}};
        matmul_group(x.data(), rows, outputs, pool);
        for (const auto& [view, y] : {std::pair{&qv, &yq}, {&kv, &yk}, {&vv, &yv}}) {
          std::vector<float> alone(y->size(), NAN);
          matmul(x.data(), rows, *view, alone.data(), pool);
          EXPECT_EQ(*y, alone) << name(type) << " threads=" << threads << " rows=" << rows;
        }
      }
    }
  }
}

TEST(QuantRepack, InterleavedKernelRejectsBadRowCounts) {
  if (!quant_matvec_available()) GTEST_SKIP() << "no AVX-512 path";
  const Weights w = make_weights(DType::Q4_0, 32, 64, 8);
  std::vector<BlockQ8_0> x(2);
  quantize_row_q8_0_ref(activations(1, 64, 3).data(), x.data(), 64);
  QuantMatvecRow prepared[kMaxInterleavedMatvecRows + 1];
  for (auto& p : prepared) ASSERT_TRUE(p.prepare(DType::Q4_0_R16, x.data(), 2));
  std::vector<float> y(32 * (kMaxInterleavedMatvecRows + 1));
  float* outs[kMaxInterleavedMatvecRows + 1];
  for (int j = 0; j <= kMaxInterleavedMatvecRows; ++j) outs[j] = y.data() + 32 * j;
  EXPECT_THROW(quant_matvec_interleaved(w.r16.data(), 32, prepared, 0, outs), Error);
  EXPECT_THROW(quant_matvec_interleaved(w.r16.data(), 32, prepared,
                                        kMaxInterleavedMatvecRows + 1, outs),
               Error);
  EXPECT_THROW(quant_matvec_interleaved(w.r16.data(), 24, prepared, 1, outs), Error);
}

TEST(QuantRepack, RowDecodersRejectTheInterleavedLayouts) {
  for (DType type : kPlainTypes) {
    const Weights w = make_weights(type, 16, 32, 4);
    std::vector<float> row(32);
    try {
      dequantize_row(w.r16.data(), interleaved_dtype(type), 32, row.data());
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("_R16"), std::string::npos) << e.what();
    }
    const TensorView odd{interleaved_dtype(type), {8, 32}, w.r16.data()};
    EXPECT_THROW(to_f32(odd), Error);
  }
}

}  // namespace
}  // namespace tulu
