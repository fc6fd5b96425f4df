// matmul: the Highway matrix–vector path (rows = 1), the BLAS paths (F32 in place, BF16/F16
// widened in blocks) and the generic path, against the scalar reference in double, for
// every weight dtype, inner length 0 .. 2·16 + 3, misaligned x and W, one and two threads.
#include <cmath>

#include "core/error.h"
#include "kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/matmul_ref.h"

namespace tulu {
namespace {

using testing::Floats;
using testing::StoredMatrix;

// fp32 accumulation of an n-term dot product: |error| ≤ γ_n · Σ|x_i·w_i| with
// γ_n ≈ n·u, u = 2⁻²⁴ (Higham, Accuracy and Stability of Numerical Algorithms, §3.1);
// the weights are exact in fp32 (they were widened exactly), so this is the whole bound.
double dot_tolerance(const double* x, const double* w, int64_t n) {
  double magnitude = 0;
  for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(x[i] * w[i]);
  return (static_cast<double>(n) + 2) * 0x1p-24 * magnitude + 1e-30;
}

// Compares matmul(x, W) with the double reference for one shape; returns nothing, asserts.
void check_matmul(DType dtype, int64_t rows, int64_t out, int64_t in, int misalign,
                  ThreadPool& pool, MatmulScratch* scratch) {
  SCOPED_TRACE(::testing::Message()
               << dtype_name(dtype) << " rows=" << rows << " out=" << out << " in=" << in
               << " misalign=" << misalign << " threads=" << pool.num_threads());
  StoredMatrix w(dtype, out, in, misalign, static_cast<uint32_t>(11 + in));
  Floats x(testing::random_floats(static_cast<size_t>(rows * in), static_cast<uint32_t>(12 + in)),
           misalign);
  Floats y(static_cast<size_t>(rows * out), misalign);
  matmul(x.data, rows, w.view, y.data, pool, scratch);

  std::vector<double> xd(x.data, x.data + rows * in), yd(static_cast<size_t>(rows * out));
  matmul_ref<double>(xd.data(), rows, w.view, 0, out, yd.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      const double tolerance = dot_tolerance(xd.data() + r * in, w.values.data() + o * in, in);
      ASSERT_NEAR(y.data[r * out + o], yd[static_cast<size_t>(r * out + o)], tolerance)
          << "at [" << r << ", " << o << "]";
    }
  }
}

TEST(Matmul, MatrixVectorEveryLengthAndTarget) {
  ThreadPool one(1), two(2);
  testing::for_each_target([&] {
    for (DType dtype : testing::kAllDtypes) {
      for (int in = 0; in <= testing::kMaxTestLength; ++in) {
        for (int misalign : testing::kMisalignments) {
          check_matmul(dtype, 1, 5, in, misalign, one, nullptr);
          check_matmul(dtype, 1, 37, in, misalign, two, nullptr);
        }
      }
    }
  });
}

TEST(Matmul, BlasPathsEveryLength) {
  ThreadPool one(1), two(2);
  testing::for_each_target([&] {  // the BF16/F16 widening uses Highway
    for (DType dtype : testing::kAllDtypes) {
      for (int in = 0; in <= testing::kMaxTestLength; ++in) {
        for (int misalign : testing::kMisalignments) {
          check_matmul(dtype, 3, 7, in, misalign, one, nullptr);
        }
      }
    }
  });
  // Output sizes around the widening block (kBlockRows rows) and the per-task split, both
  // pools, with a caller-provided scratch too.
  constexpr int64_t block = MatmulScratch::kBlockRows;
  for (DType dtype : testing::kAllDtypes) {
    for (int64_t out : {int64_t{1}, int64_t{63}, int64_t{64}, int64_t{65}, int64_t{130},
                        block - 1, block, block + 1, 2 * block + 3}) {
      MatmulScratch scratch(40, 2);
      check_matmul(dtype, 5, out, 40, 1, one, nullptr);
      check_matmul(dtype, 5, out, 40, 0, two, &scratch);
      check_matmul(dtype, 2, out, 33, 3, two, &scratch);
    }
  }
}

TEST(Matmul, LargerShapesBothThreadCounts) {
  ThreadPool two(2);
  for (DType dtype : testing::kAllDtypes) {
    check_matmul(dtype, 1, 300, 257, 0, two, nullptr);
    check_matmul(dtype, 17, 300, 257, 1, two, nullptr);
  }
}

TEST(Matmul, GenericPathIsTheReference) {
  ThreadPool two(2);
  testing::ForceGeneric generic;
  for (DType dtype : testing::kAllDtypes) {
    StoredMatrix w(dtype, 70, 19, 1, 21);
    std::vector<float> x = testing::random_floats(3 * 19, 22), y(3 * 70), expected(3 * 70);
    matmul(x.data(), 3, w.view, y.data(), two);
    matmul_ref<float>(x.data(), 3, w.view, 0, 70, expected.data());
    EXPECT_EQ(y, expected) << dtype_name(dtype);
  }
}

TEST(Matmul, ScratchTooSmallIsAnError) {
  ThreadPool one(1);
  StoredMatrix w(DType::BF16, 4, 8, 0, 23);
  std::vector<float> x(2 * 8, 1.0f), y(2 * 4);
  MatmulScratch scratch(7, 1);
  EXPECT_THROW(matmul(x.data(), 2, w.view, y.data(), one, &scratch), Error);
}

}  // namespace
}  // namespace tulu
