// RoPE: the table against a double-precision computation, linear scaling as division of
// positions, and the Highway rotation against the scalar reference (the same products and
// sums; equal up to fused multiply-add contraction).
#include <cmath>

#include "core/error.h"
#include "kernel_test_util.h"
#include "kernels/rope.h"
#include "kernels/rope_ref.h"

namespace tulu {
namespace {

TEST(Rope, TableMatchesDoublePrecision) {
  for (int head_dim : {2, 8, 64, 128}) {
    for (double theta : {10000.0, 500000.0}) {
      const int positions = 300;
      RopeTable table = make_rope_table(head_dim, theta, 1.0, positions);
      const int half = head_dim / 2;
      for (int i = 0; i < half; ++i) {
        const double exact = 1.0 / std::pow(theta, 2.0 * i / head_dim);
        ASSERT_NEAR(table.inv_freq[static_cast<size_t>(i)], exact, 4 * 0x1p-24 * exact)
            << "i=" << i;
      }
      for (int p = 0; p < positions; ++p) {
        for (int i = 0; i < half; ++i) {
          const double angle = p / std::pow(theta, 2.0 * i / head_dim);
          // The float32 angle is off by ≤ (4 + 1)·u relative, i.e. by ≤ 5·u·angle absolute.
          const double tolerance = 5 * 0x1p-24 * angle + 0x1p-24;
          const size_t at = static_cast<size_t>(p * half + i);
          ASSERT_NEAR(table.cos[at], std::cos(angle), tolerance) << "p=" << p << " i=" << i;
          ASSERT_NEAR(table.sin[at], std::sin(angle), tolerance) << "p=" << p << " i=" << i;
        }
      }
    }
  }
}

TEST(Rope, LinearScalingDividesPositions) {
  // Position 2p with factor 2 is exactly position p unscaled (2p / 2 = p in float32).
  RopeTable plain = make_rope_table(16, 10000.0, 1.0, 50);
  RopeTable scaled = make_rope_table(16, 10000.0, 2.0, 100);
  for (int p = 0; p < 50; ++p) {
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(scaled.cos[static_cast<size_t>(2 * p * 8 + i)],
                plain.cos[static_cast<size_t>(p * 8 + i)]);
      EXPECT_EQ(scaled.sin[static_cast<size_t>(2 * p * 8 + i)],
                plain.sin[static_cast<size_t>(p * 8 + i)]);
    }
  }
}

TEST(Rope, BadHeadDimIsAnError) {
  EXPECT_THROW(make_rope_table(7, 10000.0, 1.0, 4), Error);
  EXPECT_THROW(make_rope_table(0, 10000.0, 1.0, 4), Error);
}

TEST(Rope, RotationMatchesReference) {
  testing::for_each_target([] {
    // head_dim = 2·half for half over every tail length.
    for (int half = 1; half <= testing::kMaxTestLength; ++half) {
      const int head_dim = 2 * half, heads = 3;
      RopeTable table = make_rope_table(head_dim, 10000.0, 1.0, 40);
      for (int misalign : testing::kMisalignments) {
        const int64_t rows = 4, stride = heads * head_dim + 5;  // padded rows, as in a wider buffer
        const int first_position = 30;
        testing::Floats x(testing::random_floats(static_cast<size_t>(rows * stride), 41), misalign);
        std::vector<float> expected = x.vec();
        const std::vector<float> before = expected;
        rope_ref(expected.data(), rows, stride, heads, first_position, table);
        rope_apply(x.data, rows, stride, heads, first_position, table);
        // Equal up to fused multiply-add: GCC contracts a·b − c·d into one FMA where the
        // target has FMA (C++ defaults to -ffp-contract=fast), saving one rounding:
        // |Δ| ≤ 2u·(|a·b| + |c·d|) per output (one product rounding and the result's).
        const std::vector<float>& input = before;
        for (int64_t r = 0; r < rows; ++r) {
          for (int h = 0; h < heads; ++h) {
            for (int i = 0; i < half; ++i) {
              const size_t lo = static_cast<size_t>(r * stride + h * head_dim + i),
                           hi = lo + static_cast<size_t>(half);
              const size_t t = static_cast<size_t>((first_position + r) * half + i);
              const double c = table.cos[t], s = table.sin[t];
              const double bound_lo =
                  2 * 0x1p-24 * (std::fabs(input[lo] * c) + std::fabs(input[hi] * s));
              const double bound_hi =
                  2 * 0x1p-24 * (std::fabs(input[hi] * c) + std::fabs(input[lo] * s));
              ASSERT_NEAR(x.data[lo], expected[lo], bound_lo)
                  << "half=" << half << " misalign=" << misalign;
              ASSERT_NEAR(x.data[hi], expected[hi], bound_hi)
                  << "half=" << half << " misalign=" << misalign;
            }
          }
        }
      }
    }
  });
}

TEST(Rope, PositionZeroIsIdentity) {
  RopeTable table = make_rope_table(8, 10000.0, 1.0, 1);
  std::vector<float> x = testing::random_floats(16, 42), before = x;
  testing::for_each_target([&] {
    rope_apply(x.data(), 1, 16, 2, 0, table);
    EXPECT_EQ(x, before);
  });
}

}  // namespace
}  // namespace tulu
