// Linear layer for training (linear_backward.h): the double references against central
// differences of the forward reference; the sgemm paths (and the forced scalar path)
// against the double references on odd shapes with 1–3 threads; parallel_sgemm's four
// transpose combinations, strides, beta and k = 0.
#include <cmath>
#include <vector>

#include "gradient_check_util.h"
#include "kernel_test_util.h"
#include "kernels/linear_backward.h"
#include "kernels/linear_backward_ref.h"

namespace tulu {
namespace {

using testing::to_double;

constexpr double kU = 0x1p-24;  // fp32 unit roundoff

TEST(LinearBackward, ReferenceMatchesFiniteDifferences) {
  const int64_t rows = 3, out = 4, in = 5;
  auto x = to_double(testing::random_floats(static_cast<size_t>(rows * in), 1));
  auto w = to_double(testing::random_floats(static_cast<size_t>(out * in), 2));
  const auto dy = to_double(testing::random_floats(static_cast<size_t>(rows * out), 3));
  std::vector<double> y(static_cast<size_t>(rows * out));
  auto loss = [&] {
    linear_forward_ref(x.data(), rows, w.data(), out, in, y.data());
    return testing::dot(dy, y);
  };
  std::vector<double> dx(x.size()), dw(w.size(), 0.0);
  linear_backward_input_ref(dy.data(), rows, w.data(), out, in, dx.data(), false);
  linear_backward_weight_ref(dy.data(), x.data(), rows, out, in, dw.data(), 0, out);
  testing::expect_gradients_match(testing::numeric_gradient(x, loss), dx, "dx");
  testing::expect_gradients_match(testing::numeric_gradient(w, loss), dw, "dw");
}

// |fast − exact| ≤ (k + 2)·u·Σ|a·b| per element (fp32 dot products of length k, any
// summation order), plus u·|previous value| where the result is added to.
void check_linear(int64_t rows, int64_t out, int64_t in, ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message() << "rows=" << rows << " out=" << out << " in=" << in
                                    << " threads=" << pool.num_threads());
  const auto x = testing::random_floats(static_cast<size_t>(rows * in), 11);
  const auto w = testing::random_floats(static_cast<size_t>(out * in), 12);
  const auto dy = testing::random_floats(static_cast<size_t>(rows * out), 13);
  const auto previous_dx = testing::random_floats(static_cast<size_t>(rows * in), 14);
  const auto previous_dw = testing::random_floats(static_cast<size_t>(out * in), 15);
  auto xd = to_double(x), wd = to_double(w), dyd = to_double(dy);
  auto abs_all = [](std::vector<double> v) {
    for (auto& e : v) e = std::fabs(e);
    return v;
  };
  const auto xa = abs_all(xd), wa = abs_all(wd), dya = abs_all(dyd);

  // Forward.
  std::vector<float> y(static_cast<size_t>(rows * out), -7.0f);
  linear_forward(x.data(), rows, w.data(), out, in, y.data(), pool);
  std::vector<double> expected(y.size()), magnitude(y.size());
  linear_forward_ref(xd.data(), rows, wd.data(), out, in, expected.data());
  linear_forward_ref(xa.data(), rows, wa.data(), out, in, magnitude.data());
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], expected[i], static_cast<double>(in + 2) * kU * magnitude[i] + 1e-30)
        << "y " << i;

  // Input gradient, overwritten and accumulated.
  for (bool accumulate : {false, true}) {
    std::vector<float> dx = previous_dx;
    linear_backward_input(dy.data(), rows, w.data(), out, in, dx.data(), accumulate, pool);
    std::vector<double> dx_expected = to_double(previous_dx), dx_magnitude(dx.size());
    linear_backward_input_ref(dyd.data(), rows, wd.data(), out, in, dx_expected.data(), accumulate);
    linear_backward_input_ref(dya.data(), rows, wa.data(), out, in, dx_magnitude.data(), false);
    for (size_t i = 0; i < dx.size(); ++i) {
      const double previous = accumulate ? std::fabs(previous_dx[i]) : 0.0;
      ASSERT_NEAR(dx[i], dx_expected[i],
                  static_cast<double>(out + 2) * kU * (dx_magnitude[i] + previous) + 1e-30)
          << "dx " << i << " accumulate=" << accumulate;
    }
  }

  // Weight gradient: always added to.
  std::vector<float> dw = previous_dw;
  linear_backward_weight(dy.data(), x.data(), rows, out, in, dw.data(), pool);
  std::vector<double> dw_expected = to_double(previous_dw), dw_magnitude(dw.size(), 0.0);
  linear_backward_weight_ref(dyd.data(), xd.data(), rows, out, in, dw_expected.data(), 0, out);
  linear_backward_weight_ref(dya.data(), xa.data(), rows, out, in, dw_magnitude.data(), 0, out);
  for (size_t i = 0; i < dw.size(); ++i) {
    ASSERT_NEAR(
        dw[i], dw_expected[i],
        static_cast<double>(rows + 2) * kU * (dw_magnitude[i] + std::fabs(previous_dw[i])) + 1e-30)
        << "dw " << i;
  }
}

void check_all_shapes(ThreadPool& pool) {
  check_linear(1, 1, 1, pool);
  check_linear(1, 40, 33, pool);  // one row (a decode-like shape)
  check_linear(5, 7, 3, pool);
  check_linear(33, 17, 70, pool);
  check_linear(64, 96, 48, pool);
  check_linear(130, 20, 257, pool);  // rows ≫ out: the split is over rows
  check_linear(3, 300, 16, pool);    // out ≫ rows: the split is over columns
  check_linear(7, 5, 0, pool);       // empty sums
}

TEST(LinearBackward, BlasMatchesReference) {
  ThreadPool one(1), two(2), three(3), five(5);
  for (ThreadPool* pool : {&one, &two, &three}) check_all_shapes(*pool);
  for (ThreadPool* pool : {&three, &five}) check_linear(150, 170, 120, *pool);  // 2-D grids
}

TEST(LinearBackward, ScalarPathMatchesReference) {
  testing::ForceGeneric generic;
  ThreadPool one(1), three(3);
  for (ThreadPool* pool : {&one, &three}) check_all_shapes(*pool);
}

TEST(LinearBackward, ParallelSgemmTransposesStridesAndBeta) {
  // Big enough (≈1.9 M multiply-adds) for one task per thread: 1-D splits with 3 threads,
  // 2 × 2 and 2 × 3 grids with 4 and 6 (more threads than cores is fine for a pool).
  ThreadPool one(1), three(3), four(4), six(6);
  const int64_t m = 131, n = 150, k = 97, pad = 3;  // every stored matrix has pad extra columns
  for (ThreadPool* pool : {&one, &three, &four, &six}) {
    for (bool trans_a : {false, true}) {
      for (bool trans_b : {false, true}) {
        for (float beta : {0.0f, 1.0f, 0.5f}) {
          for (int64_t kk : {k, int64_t{0}}) {
            SCOPED_TRACE(::testing::Message()
                         << "trans_a=" << trans_a << " trans_b=" << trans_b << " beta=" << beta
                         << " k=" << kk << " threads=" << pool->num_threads());
            const int64_t a_rows = trans_a ? kk : m, a_cols = trans_a ? m : kk;
            const int64_t b_rows = trans_b ? n : kk, b_cols = trans_b ? kk : n;
            const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
            const auto a = testing::random_floats(static_cast<size_t>(a_rows * lda), 21);
            const auto b = testing::random_floats(static_cast<size_t>(b_rows * ldb), 22);
            auto c = testing::random_floats(static_cast<size_t>(m * ldc), 23);
            const auto c_before = c;
            parallel_sgemm(trans_a, trans_b, m, n, kk, 0.75f, a.data(), lda, b.data(), ldb, beta,
                           c.data(), ldc, *pool);
            for (int64_t i = 0; i < m; ++i) {
              for (int64_t j = 0; j < ldc; ++j) {
                const size_t at = static_cast<size_t>(i * ldc + j);
                if (j >= n) {  // padding columns of C are never written
                  ASSERT_EQ(c[at], c_before[at]) << i << "," << j;
                  continue;
                }
                double sum = 0, magnitude = 0;
                for (int64_t p = 0; p < kk; ++p) {
                  const double av = trans_a ? a[static_cast<size_t>(p * lda + i)]
                                            : a[static_cast<size_t>(i * lda + p)];
                  const double bv = trans_b ? b[static_cast<size_t>(j * ldb + p)]
                                            : b[static_cast<size_t>(p * ldb + j)];
                  sum += av * bv;
                  magnitude += std::fabs(av * bv);
                }
                const double expected = 0.75 * sum + beta * static_cast<double>(c_before[at]);
                const double bound =
                    static_cast<double>(kk + 4) * kU *
                        (magnitude + std::fabs(static_cast<double>(c_before[at]))) +
                    1e-30;
                ASSERT_NEAR(c[at], expected, bound) << i << "," << j;
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace tulu
