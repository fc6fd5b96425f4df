// matmul: the Highway matrix–vector path (rows = 1), the BLAS paths (F32 in place, BF16/F16
// widened in blocks) and the generic path, against the scalar reference in double, for
// every weight dtype, inner length 0 .. 2·16 + 3, misaligned x and W, one and two threads.
#include "core/error.h"
#include "kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/matmul_ref.h"

namespace tulu {
namespace {

using testing::Floats;
using testing::StoredMatrix;

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
  testing::expect_product_near(y.data, yd, xd, w, rows, out, in);
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
  testing::expect_generic_path_is_reference(
      3, 21,
      [&](const float* x, int64_t rows, const TensorView& w, float* y) {
        matmul(x, rows, w, y, two);
      },
      [](const float* x, int64_t rows, const TensorView& w, float* y) {
        matmul_ref<float>(x, rows, w, 0, w.shape[0], y);
      });
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
