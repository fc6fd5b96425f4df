// Shared helpers for the backward-kernel tests: central finite differences in double and a
// comparison that reports the worst coordinate.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tulu::testing {

// Step for central differences in double: truncation error ~h²·|f'''| ≈ 1e-10, rounding
// error ~1e-16·|L| / h ≈ 1e-11·|L|; both far below the 1e-7 relative bound used.
constexpr double kFiniteDifferenceStep = 1e-5;
// Allowed |numeric − analytic| relative to the largest analytic gradient component.
constexpr double kGradientRelativeBound = 1e-7;

// dL/dx_i ≈ (L(x + h·e_i) − L(x − h·e_i)) / 2h for every i; x is restored afterwards.
inline std::vector<double> numeric_gradient(std::vector<double>& x,
                                            const std::function<double()>& loss,
                                            double h = kFiniteDifferenceStep) {
  std::vector<double> gradient(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double plus = loss();
    x[i] = saved - h;
    const double minus = loss();
    x[i] = saved;
    gradient[i] = (plus - minus) / (2 * h);
  }
  return gradient;
}

// Σ a[i]·b[i] in double.
inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += a[i] * b[i];
  return sum;
}

// Every |numeric[i] − analytic[i]| ≤ bound · max_j |analytic[j]|; the worst index is named.
inline void expect_gradients_match(const std::vector<double>& numeric,
                                   const std::vector<double>& analytic, const std::string& name,
                                   double bound = kGradientRelativeBound) {
  ASSERT_EQ(numeric.size(), analytic.size()) << name;
  double scale = 0, worst = 0;
  size_t worst_at = 0;
  for (double g : analytic) scale = std::max(scale, std::fabs(g));
  for (size_t i = 0; i < numeric.size(); ++i) {
    const double error = std::fabs(numeric[i] - analytic[i]);
    if (error > worst) worst = error, worst_at = i;
  }
  EXPECT_GT(scale, 0.0) << name << ": an all-zero gradient checks nothing";
  EXPECT_LE(worst, bound * scale) << name << ": worst at index " << worst_at << " numeric "
                                  << numeric[worst_at] << " analytic " << analytic[worst_at]
                                  << " (largest |gradient| " << scale << ")";
}

inline std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

}  // namespace tulu::testing
