// rmsnorm: every Highway target against the double reference over all tail lengths and
// misalignments (x, weight, out), several rows, in place too.
#include <cmath>

#include "kernel_test_util.h"
#include "kernels/rmsnorm.h"
#include "kernels/rmsnorm_ref.h"

namespace tulu {
namespace {

using testing::Floats;

// The fp32 sum of squares carries at most (n + 2)·u relative error (all terms positive);
// the square root halves it; then three roundings (divide, 1/sqrt, two products).
double rmsnorm_tolerance(int n, double value) {
  return ((n + 2) * 0.5 + 6) * 0x1p-24 * std::fabs(value) + 1e-30;
}

TEST(Rmsnorm, MatchesDoubleReference) {
  testing::for_each_target([] {
    constexpr int kRows = 3;
    for (int n = 0; n <= testing::kMaxTestLength; ++n) {
      for (int misalign : testing::kMisalignments) {
        for (float eps : {1e-5f, 1e-6f}) {
          SCOPED_TRACE(::testing::Message()
                       << "n=" << n << " misalign=" << misalign << " eps=" << eps);
          const auto size = static_cast<size_t>(kRows * n);
          Floats x(testing::random_floats(size, 31, 2.0f), misalign), out(size, misalign);
          std::vector<float> weight_values =
              testing::random_floats(static_cast<size_t>(n), 32, 0.1f);
          for (auto& w : weight_values) w += 1.0f;
          Floats weight(weight_values, misalign);
          rmsnorm(x.data, weight.data, out.data, kRows, n, eps);

          std::vector<double> xd(x.data, x.data + size), wd(weight.data, weight.data + n),
              expected(size);
          rmsnorm_ref<double>(xd.data(), wd.data(), expected.data(), kRows, n,
                              static_cast<double>(eps));
          for (size_t i = 0; i < size; ++i)
            ASSERT_NEAR(out.data[i], expected[i], rmsnorm_tolerance(n, expected[i])) << i;

          rmsnorm(x.data, weight.data, x.data, kRows, n, eps);  // in place gives the same values
          for (size_t i = 0; i < size; ++i)
            ASSERT_EQ(x.data[i], out.data[i]) << "in place, i=" << i;
        }
      }
    }
  });
}

TEST(Rmsnorm, EpsilonMattersForTinyInputs) {
  // All-zero rows give 0 (not NaN), and eps decides the scale of near-zero rows.
  testing::for_each_target([] {
    std::vector<float> zeros(20, 0.0f), weight(20, 1.0f), out(20, -1.0f);
    rmsnorm(zeros.data(), weight.data(), out.data(), 1, 20, 1e-6f);
    for (float v : out) EXPECT_EQ(v, 0.0f);
    std::vector<float> tiny(20, 1e-3f);
    rmsnorm(tiny.data(), weight.data(), out.data(), 1, 20, 1e-6f);
    EXPECT_NEAR(out[0], 1e-3 / std::sqrt(1e-6 + 1e-6), 1e-6);
  });
}

}  // namespace
}  // namespace tulu
