// rmsnorm_backward: the double reference against central differences of rmsnorm_ref (dx and
// dweight, both added to); the Highway path against the double reference on every target,
// lengths covering every tail, misalignments, 1–3 threads; dx and dweight bit-identical for
// every thread count.
#include <cmath>
#include <vector>

#include "gradient_check_util.h"
#include "kernel_test_util.h"
#include "kernels/rmsnorm_backward.h"
#include "kernels/rmsnorm_backward_ref.h"
#include "kernels/rmsnorm_ref.h"

namespace tulu {
namespace {

using testing::to_double;

constexpr double kU = 0x1p-24;

TEST(RmsnormBackward, ReferenceMatchesFiniteDifferences) {
  for (int64_t n : {1, 7, 64}) {
    SCOPED_TRACE(::testing::Message() << "n=" << n);
    const int64_t rows = 3;
    const double eps = 1e-5;
    auto x = to_double(testing::random_floats(static_cast<size_t>(rows * n), 1, 0.3f));
    auto w = to_double(testing::random_floats(static_cast<size_t>(n), 2));
    const auto dout = to_double(testing::random_floats(x.size(), 3));
    std::vector<double> y(x.size());
    auto loss = [&] {
      rmsnorm_ref(x.data(), w.data(), y.data(), rows, n, eps);
      return testing::dot(dout, y);
    };
    // Start from non-zero gradients: the backward adds.
    const auto dx_start = to_double(testing::random_floats(x.size(), 4));
    const auto dw_start = to_double(testing::random_floats(w.size(), 5));
    std::vector<double> dx = dx_start, dw = dw_start;
    rmsnorm_backward_ref(x.data(), w.data(), dout.data(), rows, n, eps, dx.data(), dw.data());
    for (size_t i = 0; i < dx.size(); ++i) dx[i] -= dx_start[i];
    for (size_t i = 0; i < dw.size(); ++i) dw[i] -= dw_start[i];
    testing::expect_gradients_match(testing::numeric_gradient(x, loss), dx, "dx");
    testing::expect_gradients_match(testing::numeric_gradient(w, loss), dw, "dweight");
  }
}

// Fast path vs double reference. Bounds: r carries ≲ (n/2 + 4)·u relative error (as the
// forward), the dot Σg·x ≲ (n + 2)·u·Σ|g·x|, the rest a few roundings; so per element
//   |Δdx| ≤ (n + 12)·u·(r·|g| + |x|·r³·Σ|g·x|/n) + u·|dx before|,
//   |Δdw| ≤ (rows + n/2 + 8)·u·Σ_rows |dout·x|·r + u·|dw before|.
void check_rmsnorm_backward(int64_t rows, int64_t n, int misalign, ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message() << "rows=" << rows << " n=" << n << " misalign=" << misalign
                                    << " threads=" << pool.num_threads());
  const float eps = 1e-6f;
  const auto size = static_cast<size_t>(rows * n);
  testing::Floats x(testing::random_floats(size, 31, 2.0f), misalign);
  testing::Floats dout(testing::random_floats(size, 33), misalign);
  std::vector<float> w_values = testing::random_floats(static_cast<size_t>(n), 32, 0.1f);
  for (auto& v : w_values) v += 1.0f;
  testing::Floats w(w_values, misalign);
  const auto dx_start = testing::random_floats(size, 34);
  const auto dw_start = testing::random_floats(static_cast<size_t>(n), 35);
  testing::Floats dx(dx_start, misalign), dw(dw_start, misalign);
  rmsnorm_backward(x.data, w.data, dout.data, rows, n, eps, dx.data, dw.data, pool);

  const auto xd = to_double(x.vec()), wd = to_double(w.vec()), dd = to_double(dout.vec());
  auto dx_expected = to_double(dx_start), dw_expected = to_double(dw_start);
  rmsnorm_backward_ref(xd.data(), wd.data(), dd.data(), rows, n, static_cast<double>(eps),
                       dx_expected.data(), dw_expected.data());
  std::vector<double> dw_magnitude(static_cast<size_t>(n), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double sum_squares = 0, gx = 0;
    for (int64_t i = 0; i < n; ++i) {
      const auto at = static_cast<size_t>(r * n + i);
      sum_squares += xd[at] * xd[at];
      gx += std::fabs(dd[at] * wd[static_cast<size_t>(i)] * xd[at]);
    }
    const double inv = 1 / std::sqrt(sum_squares / static_cast<double>(n) + eps);
    for (int64_t i = 0; i < n; ++i) {
      const auto at = static_cast<size_t>(r * n + i);
      const double magnitude = inv * std::fabs(dd[at] * wd[static_cast<size_t>(i)]) +
                               std::fabs(xd[at]) * inv * inv * inv * gx / static_cast<double>(n);
      const double bound =
          static_cast<double>(n + 12) * kU * magnitude + kU * std::fabs(dx_start[at]) + 1e-30;
      ASSERT_NEAR(dx.data[at], dx_expected[at], bound) << "dx " << at;
      dw_magnitude[static_cast<size_t>(i)] += std::fabs(dd[at] * xd[at]) * inv;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const auto at = static_cast<size_t>(i);
    const double bound =
        (static_cast<double>(rows) + static_cast<double>(n) / 2 + 8) * kU * dw_magnitude[at] +
        kU * std::fabs(dw_start[at]) + 1e-30;
    ASSERT_NEAR(dw.data[at], dw_expected[at], bound) << "dweight " << i;
  }
}

TEST(RmsnormBackward, HighwayMatchesReference) {
  ThreadPool one(1), two(2), three(3);
  testing::for_each_target([&] {
    for (int64_t n = 0; n <= testing::kMaxTestLength; ++n)
      for (int misalign : testing::kMisalignments) check_rmsnorm_backward(3, n, misalign, two);
    for (ThreadPool* pool : {&one, &two, &three}) {
      check_rmsnorm_backward(1, 768, 1, *pool);
      check_rmsnorm_backward(37, 131, 0, *pool);  // a column tail after the 64-column blocks
      check_rmsnorm_backward(20, 200, 3, *pool);
    }
  });
}

TEST(RmsnormBackward, ScalarPath) {
  testing::ForceGeneric generic;
  ThreadPool two(2);
  check_rmsnorm_backward(5, 33, 1, two);
}

TEST(RmsnormBackward, SameBitsForEveryThreadCount) {
  const int64_t rows = 45, n = 300;
  const auto x = testing::random_floats(static_cast<size_t>(rows * n), 41);
  const auto w = testing::random_floats(static_cast<size_t>(n), 42);
  const auto dout = testing::random_floats(x.size(), 43);
  std::vector<float> dx_one(x.size(), 0.5f), dw_one(w.size(), 0.25f);
  ThreadPool one(1);
  rmsnorm_backward(x.data(), w.data(), dout.data(), rows, n, 1e-5f, dx_one.data(), dw_one.data(),
                   one);
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    std::vector<float> dx(x.size(), 0.5f), dw(w.size(), 0.25f);
    rmsnorm_backward(x.data(), w.data(), dout.data(), rows, n, 1e-5f, dx.data(), dw.data(), pool);
    EXPECT_EQ(dx, dx_one) << threads << " threads";
    EXPECT_EQ(dw, dw_one) << threads << " threads";
  }
}

}  // namespace
}  // namespace tulu
