// packed_gemm (AVX-512 prompt GEMM for F32/BF16/F16 weights): every output must equal the
// fp32 fused multiply-add chain over k in order (the contract of packed_gemm.h), bit for
// bit, for row counts around the 12-row group, output counts around the 16/32-column
// panel, inner lengths around the 16-element transpose (odd ones included), misaligned
// buffers and one to three threads; and it must stay within the fp32 dot bound of the
// double reference. The bf16-input mode likewise against the chain vdpbf16ps forms.
// Skipped where the CPU lacks AVX-512 (the bf16-input mode: AVX-512 BF16).
#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "core/error.h"
#include "kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/matmul_ref.h"
#include "kernels/packed_gemm.h"

namespace tulu {
namespace {

using testing::Floats;
using testing::StoredMatrix;

// One product's operands: random W [out, in] in `dtype`, x [rows, in], y pre-filled with
// NaN (an output left unwritten shows), all `misalign` elements off alignment; yd is the
// double reference x · Wᵀ.
struct Operands {
  StoredMatrix w;
  Floats x, y;
  std::vector<double> xd, yd;
  Operands(DType dtype, int64_t rows, int64_t out, int64_t in, int misalign, uint32_t seed)
      : w(dtype, out, in, misalign, seed),
        x(testing::random_floats(static_cast<size_t>(rows * in), seed + 1), misalign),
        y(static_cast<size_t>(rows * out), misalign),
        xd(x.data, x.data + rows * in),
        yd(static_cast<size_t>(rows * out)) {
    std::fill(y.data, y.data + y.size, std::numeric_limits<float>::quiet_NaN());
    matmul_ref<double>(xd.data(), rows, w.view, 0, out, yd.data());
  }
};

void check_packed_gemm(DType dtype, int64_t rows, int64_t out, int64_t in, int misalign,
                       ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " rows=" << rows << " out=" << out
                                    << " in=" << in << " misalign=" << misalign
                                    << " threads=" << pool.num_threads());
  Operands op(dtype, rows, out, in, misalign, static_cast<uint32_t>(7 * in + out + rows));
  packed_gemm(op.x.data, rows, op.w.view, op.y.data, pool);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      float chain = 0.0f;
      for (int64_t k = 0; k < in; ++k)
        chain = std::fma(op.x.data[r * in + k], static_cast<float>(op.w.values[o * in + k]), chain);
      const float got = op.y.data[r * out + o];
      ASSERT_EQ(got, chain) << "at [" << r << ", " << o << "]";
      ASSERT_NEAR(got, op.yd[r * out + o],
                  testing::dot_tolerance(op.xd.data() + r * in, op.w.values.data() + o * in, in));
    }
  }
}

class PackedGemm : public ::testing::Test {
 protected:
  void SetUp() override {
    set_force_generic_kernels(false);
    if (!packed_gemm_available()) GTEST_SKIP() << "no AVX-512 on this CPU";
  }
};

TEST_F(PackedGemm, EveryTailOfRowsColumnsAndInner) {
  ThreadPool one(1), two(2);
  for (DType dtype : testing::kAllDtypes) {
    for (int64_t in : {1, 2, 3, 15, 16, 17, 33, 40}) {
      for (int64_t rows : {1, 11, 12, 13, 25}) {
        for (int64_t out : {1, 15, 16, 17, 31, 32, 33, 70}) {
          check_packed_gemm(dtype, rows, out, in, 0, one);
          check_packed_gemm(dtype, rows, out, in, 3, two);
        }
      }
    }
  }
}

TEST_F(PackedGemm, LargerShapesAndThreads) {
  ThreadPool three(3);
  for (DType dtype : testing::kAllDtypes) {
    check_packed_gemm(dtype, 37, 300, 257, 1, three);
    check_packed_gemm(dtype, 64, 97, 512, 0, three);
  }
}

TEST_F(PackedGemm, EmptyShapes) {
  ThreadPool two(2);
  StoredMatrix w(DType::BF16, 5, 0, 0, 1);
  std::vector<float> y(3 * 5, std::numeric_limits<float>::quiet_NaN());
  packed_gemm(nullptr, 3, w.view, y.data(), two);  // in = 0: empty sums
  EXPECT_EQ(y, std::vector<float>(15, 0.0f));
  StoredMatrix w2(DType::F32, 4, 8, 0, 2);
  packed_gemm(nullptr, 0, w2.view, nullptr, two);  // no rows: nothing touched
}

TEST_F(PackedGemm, MatmulRoutesPromptBatchesHere) {
  // matmul() sends more than kMatvecMultiMaxRows rows of F32/BF16/F16 here: same bits.
  ThreadPool two(2);
  for (DType dtype : testing::kAllDtypes) {
    StoredMatrix w(dtype, 45, 50, 0, 9);
    const std::vector<float> x = testing::random_floats(30 * 50, 10);
    std::vector<float> direct(30 * 45), routed(30 * 45);
    packed_gemm(x.data(), 30, w.view, direct.data(), two);
    matmul(x.data(), 30, w.view, routed.data(), two);
    EXPECT_EQ(direct, routed) << dtype_name(dtype);
  }
}

// Bf16-input mode: bit-equal to the chain over pairs that vdpbf16ps forms (x rounded to
// bf16; per pair x̂[2p+1]·W[2p+1] then x̂[2p]·W[2p], each a fused multiply-add), and within
// the documented bound of the exact product of the unrounded x.
void check_bf16_inputs(int64_t rows, int64_t out, int64_t in, int misalign, ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message() << "bf16 inputs rows=" << rows << " out=" << out
                                    << " in=" << in << " misalign=" << misalign
                                    << " threads=" << pool.num_threads());
  Operands op(DType::BF16, rows, out, in, misalign, static_cast<uint32_t>(5 * in + out + rows));
  packed_gemm_bf16_inputs(op.x.data, rows, op.w.view, op.y.data, pool);
  auto rounded = [&](int64_t i) { return bf16_to_f32(f32_to_bf16(op.x.data[i])); };
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      float chain = 0.0f;
      for (int64_t k = 0; k < in; k += 2) {
        const auto weight = [&](int64_t j) { return static_cast<float>(op.w.values[o * in + j]); };
        if (k + 1 < in) chain = std::fma(rounded(r * in + k + 1), weight(k + 1), chain);
        chain = std::fma(rounded(r * in + k), weight(k), chain);
      }
      const float got = op.y.data[r * out + o];
      ASSERT_EQ(got, chain) << "at [" << r << ", " << o << "]";
      double magnitude = 0;
      for (int64_t k = 0; k < in; ++k) magnitude += std::fabs(op.xd[r * in + k] * op.w.values[o * in + k]);
      ASSERT_NEAR(got, op.yd[r * out + o], (0x1p-8 + (in + 2) * 0x1p-24) * magnitude + 1e-30);
    }
  }
}

TEST_F(PackedGemm, Bf16InputsEveryTail) {
  if (!packed_gemm_bf16_available()) GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  ThreadPool one(1), three(3);
  for (int64_t in : {1, 2, 3, 31, 32, 33, 34, 65}) {
    for (int64_t rows : {1, 12, 13, 25}) {
      for (int64_t out : {1, 16, 17, 33, 70}) {
        check_bf16_inputs(rows, out, in, 0, one);
        check_bf16_inputs(rows, out, in, 1, three);
      }
    }
  }
  check_bf16_inputs(40, 100, 257, 3, three);
}

TEST_F(PackedGemm, Bf16ActivationsSwitchRoutesBf16PromptsOnly) {
  if (!packed_gemm_bf16_available()) GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  ThreadPool two(2);
  const std::vector<float> x = testing::random_floats(30 * 50, 11);
  for (DType dtype : testing::kAllDtypes) {
    StoredMatrix w(dtype, 45, 50, 0, 12);
    std::vector<float> exact(30 * 45), fast(30 * 45), routed(30 * 45), decode(2 * 45),
        decode_on(2 * 45);
    packed_gemm(x.data(), 30, w.view, exact.data(), two);
    matmul(x.data(), 2, w.view, decode.data(), two);
    set_bf16_activations(Bf16Activations::On);
    matmul(x.data(), 30, w.view, routed.data(), two);
    matmul(x.data(), 2, w.view, decode_on.data(), two);
    set_bf16_activations(Bf16Activations::Auto);
    EXPECT_EQ(decode, decode_on) << dtype_name(dtype) << ": decode steps keep fp32 activations";
    if (dtype != DType::BF16) {
      EXPECT_EQ(routed, exact) << dtype_name(dtype);
      continue;
    }
    packed_gemm_bf16_inputs(x.data(), 30, w.view, fast.data(), two);
    EXPECT_EQ(routed, fast);
    EXPECT_NE(routed, exact);
  }
}

// The per-thread scope (a model's own choice under the Auto mode) overrides the mode, nests,
// and restores what was outside it; another thread sees only the mode.
TEST_F(PackedGemm, Bf16ActivationsScopeOverridesTheModeOnItsThread) {
  if (!packed_gemm_bf16_available()) GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  ThreadPool two(2);
  const std::vector<float> x = testing::random_floats(30 * 50, 13);
  StoredMatrix w(DType::BF16, 45, 50, 0, 14);
  std::vector<float> exact(30 * 45), fast(30 * 45), got(30 * 45);
  packed_gemm(x.data(), 30, w.view, exact.data(), two);
  packed_gemm_bf16_inputs(x.data(), 30, w.view, fast.data(), two);
  auto run = [&] {
    matmul(x.data(), 30, w.view, got.data(), two);
    return got;
  };
  ASSERT_EQ(bf16_activations_mode(), Bf16Activations::Auto);
  EXPECT_EQ(run(), exact) << "Auto without a scope: fp32";
  {
    const Bf16ActivationsScope on(true);
    EXPECT_EQ(run(), fast);
    bool other_thread = true;
    std::thread([&] { other_thread = bf16_activations(); }).join();
    EXPECT_FALSE(other_thread);
    {
      const Bf16ActivationsScope off(false);
      EXPECT_EQ(run(), exact);
    }
    EXPECT_EQ(run(), fast) << "the outer scope is back";
  }
  EXPECT_EQ(run(), exact);
  set_bf16_activations(Bf16Activations::On);
  EXPECT_EQ(run(), fast);
  {
    const Bf16ActivationsScope off(false);
    EXPECT_EQ(run(), exact) << "a scope overrides the mode";
  }
  set_bf16_activations(Bf16Activations::Off);
  EXPECT_EQ(run(), exact);
  set_bf16_activations(Bf16Activations::Auto);
}

TEST_F(PackedGemm, BadInputIsAnError) {
  ThreadPool one(1);
  std::vector<uint8_t> blocks(34 * 4);
  TensorView q8;
  q8.dtype = DType::Q8_0;
  q8.shape = {4, 32};
  q8.data = blocks.data();
  std::vector<float> x(2 * 32), y(2 * 4);
  EXPECT_THROW(packed_gemm(x.data(), 2, q8, y.data(), one), Error);
  StoredMatrix w(DType::F32, 4, 8, 0, 3);
  if (packed_gemm_bf16_available()) {
    EXPECT_THROW(packed_gemm_bf16_inputs(x.data(), 2, w.view, y.data(), one), Error);
  }
  testing::ForceGeneric generic;
  EXPECT_FALSE(packed_gemm_available());
  EXPECT_THROW(packed_gemm(x.data(), 2, w.view, y.data(), one), Error);
}

}  // namespace
}  // namespace tulu
