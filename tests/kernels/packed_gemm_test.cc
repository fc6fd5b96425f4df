// packed_gemm (AVX-512 prompt GEMM for F32/BF16/F16 weights): every output must equal the
// fp32 fused multiply-add chain over k in order (the contract of packed_gemm.h), bit for
// bit, for row counts around the 12-row group, output counts around the 16/32-column
// panel, inner lengths around the 16-element transpose (odd ones included), misaligned
// buffers and one to three threads; and it must stay within the fp32 dot bound of the
// double reference. Skipped where the CPU lacks AVX-512.
#include <cmath>
#include <limits>

#include "core/error.h"
#include "kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/matmul_ref.h"
#include "kernels/packed_gemm.h"

namespace tulu {
namespace {

using testing::Floats;
using testing::StoredMatrix;

void check_packed_gemm(DType dtype, int64_t rows, int64_t out, int64_t in, int misalign,
                       ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dtype) << " rows=" << rows << " out=" << out
                                    << " in=" << in << " misalign=" << misalign
                                    << " threads=" << pool.num_threads());
  StoredMatrix w(dtype, out, in, misalign, static_cast<uint32_t>(7 * in + out));
  Floats x(testing::random_floats(static_cast<size_t>(rows * in), static_cast<uint32_t>(rows + in)),
           misalign);
  Floats y(static_cast<size_t>(rows * out), misalign);
  std::fill(y.data, y.data + y.size, std::numeric_limits<float>::quiet_NaN());
  packed_gemm(x.data, rows, w.view, y.data, pool);

  std::vector<double> xd(x.data, x.data + rows * in), yd(static_cast<size_t>(rows * out));
  matmul_ref<double>(xd.data(), rows, w.view, 0, out, yd.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      float chain = 0.0f;
      for (int64_t k = 0; k < in; ++k)
        chain = std::fma(x.data[r * in + k], static_cast<float>(w.values[o * in + k]), chain);
      const float got = y.data[r * out + o];
      ASSERT_EQ(got, chain) << "at [" << r << ", " << o << "]";
      ASSERT_NEAR(got, yd[r * out + o],
                  testing::dot_tolerance(xd.data() + r * in, w.values.data() + o * in, in));
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
  testing::ForceGeneric generic;
  EXPECT_FALSE(packed_gemm_available());
  EXPECT_THROW(packed_gemm(x.data(), 2, w.view, y.data(), one), Error);
}

}  // namespace
}  // namespace tulu
