// matvec_multi (few-row matrix product, each weight row read once for all activation
// rows) against its scalar reference in double, for every weight dtype and Highway target,
// rows 1 ..= kMatvecMultiMaxRows + 1 (every 4-row group split), output counts around the 4-column
// tile, inner lengths covering every vector tail, misaligned buffers, thread counts 1 ..= 6;
// matmul() routing few rows to it; the sgemm path (matmul_blas) at the same small shapes; the
// generic path bit-equal to the float reference; quantized weights rejected.
#include <cmath>

#include "core/error.h"
#include "kernel_test_util.h"
#include "kernels/matmul.h"
#include "kernels/matvec_multi.h"
#include "kernels/matvec_multi_ref.h"

namespace tulu {
namespace {

using testing::Floats;
using testing::StoredMatrix;

enum class Path { kMatvecMulti, kMatmul, kBlas };

void check(Path path, DType dtype, int64_t rows, int64_t out, int64_t in, int misalign,
           ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message()
               << dtype_name(dtype) << " path=" << static_cast<int>(path) << " rows=" << rows
               << " out=" << out << " in=" << in << " misalign=" << misalign
               << " threads=" << pool.num_threads());
  const auto seed = static_cast<uint32_t>(100 * rows + 7 * out + in);
  StoredMatrix w(dtype, out, in, misalign, seed);
  Floats x(testing::random_floats(static_cast<size_t>(rows * in), seed + 1), misalign);
  Floats y(static_cast<size_t>(rows * out), misalign);
  std::fill(y.data, y.data + y.size, NAN);  // every output must be written
  switch (path) {
    case Path::kMatvecMulti:
      matvec_multi(x.data, rows, w.view, y.data, pool);
      break;
    case Path::kMatmul:
      matmul(x.data, rows, w.view, y.data, pool);
      break;
    case Path::kBlas:
      matmul_blas(x.data, rows, w.view, y.data, pool);
      break;
  }
  std::vector<double> xd(x.data, x.data + rows * in), yd(static_cast<size_t>(rows * out));
  matvec_multi_ref<double>(xd.data(), rows, w.view, 0, out, yd.data());
  testing::expect_product_near(y.data, yd, xd, w, rows, out, in);
}

// Inner lengths: empty, below one vector, around 1 and 2 AVX-512 / AVX2 / SSE vectors.
constexpr int kLengths[] = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 35};

TEST(MatvecMulti, EveryRowCountLengthAndTarget) {
  ThreadPool one(1), three(3);
  testing::for_each_target([&] {
    for (DType dtype : testing::kAllDtypes) {
      for (int64_t rows = 1; rows <= kMatvecMultiMaxRows + 1; ++rows) {
        for (int in : kLengths) {
          const int misalign = static_cast<int>((rows + in) % 3 == 0   ? 0
                                                : (rows + in) % 3 == 1 ? 1
                                                                       : 3);
          check(Path::kMatvecMulti, dtype, rows, 7, in, misalign, one);  // one tile + 3 single
          check(Path::kMatvecMulti, dtype, rows, 37, in, misalign, three);
        }
      }
    }
  });
}

TEST(MatvecMulti, ThreadCountsOneToSixAndOddShapes) {
  for (int threads = 1; threads <= 6; ++threads) {
    ThreadPool pool(threads);
    for (DType dtype : testing::kAllDtypes) {
      for (int64_t out : {1, 2, 3, 4, 5, 17, 63, 64, 65, 130}) {
        check(Path::kMatvecMulti, dtype, 8, out, 67, 1, pool);
        check(Path::kMatvecMulti, dtype, 3, out, 129, 3, pool);
      }
      check(Path::kMatvecMulti, dtype, 16, 301, 257, 0, pool);
    }
  }
}

TEST(MatvecMulti, MatmulRoutesFewRowsHereAndBlasStillAgrees) {
  ThreadPool two(2);
  for (DType dtype : testing::kAllDtypes) {
    for (int64_t rows : {2, 3, 5, 8, 15, 16, 17, 24, 25, 33}) {
      check(Path::kMatmul, dtype, rows, 45, 70, 1, two);
      check(Path::kBlas, dtype, rows, 45, 70, 1, two);
    }
  }
}

TEST(MatvecMulti, GenericPathIsTheReference) {
  ThreadPool two(2);
  testing::expect_generic_path_is_reference(
      6, 31,
      [&](const float* x, int64_t rows, const TensorView& w, float* y) {
        matvec_multi(x, rows, w, y, two);
      },
      [](const float* x, int64_t rows, const TensorView& w, float* y) {
        matvec_multi_ref<float>(x, rows, w, 0, w.shape[0], y);
      });
}

TEST(MatvecMulti, QuantizedWeightsAreRejected) {
  ThreadPool one(1);
  std::vector<uint8_t> bytes(64 * 34);
  const TensorView w{DType::Q8_0, {2, 64}, bytes.data()};
  std::vector<float> x(3 * 64, 1.0f), y(3 * 2);
  EXPECT_THROW(matvec_multi(x.data(), 3, w, y.data(), one), Error);
  EXPECT_THROW(matmul_blas(x.data(), 3, w, y.data(), one), Error);
}

}  // namespace
}  // namespace tulu
