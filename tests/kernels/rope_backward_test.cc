// rope_apply_inverse (rope_backward.h): the double reference is the gradient of rope_ref
// (central differences), undoes it up to the fp32 rounding of cos/sin, and the Highway path
// matches it on every target over head dims, strides, positions and row counts.
#include <cmath>
#include <vector>

#include "core/error.h"
#include "gradient_check_util.h"
#include "kernel_test_util.h"
#include "kernels/rope_backward.h"
#include "kernels/rope_backward_ref.h"
#include "kernels/rope_ref.h"

namespace tulu {
namespace {

using testing::to_double;

TEST(RopeBackward, ReferenceIsTheGradientOfRope) {
  for (int head_dim : {2, 6, 64}) {
    SCOPED_TRACE(::testing::Message() << "head_dim=" << head_dim);
    const RopeTable table = make_rope_table(head_dim, 10000.0, 1.0, 40);
    const int heads = 3, first_position = 17;
    const int64_t rows = 4, stride = heads * head_dim + 5;
    auto x = to_double(testing::random_floats(static_cast<size_t>(rows * stride), 1));
    const auto dy = to_double(testing::random_floats(x.size(), 2));
    auto loss = [&] {
      std::vector<double> y = x;
      rope_ref(y.data(), rows, stride, heads, first_position, table);
      // Only the rotated elements count (the padding of each row is left alone).
      double sum = 0;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < heads * head_dim; ++i)
          sum += dy[static_cast<size_t>(r * stride + i)] * y[static_cast<size_t>(r * stride + i)];
      return sum;
    };
    std::vector<double> dx = dy;
    rope_inverse_ref(dx.data(), rows, stride, heads, first_position, table);
    for (int64_t r = 0; r < rows; ++r)  // padding: not part of the loss, gradient 0
      for (int64_t i = heads * head_dim; i < stride; ++i)
        dx[static_cast<size_t>(r * stride + i)] = 0;
    testing::expect_gradients_match(testing::numeric_gradient(x, loss), dx, "dx");

    // The inverse undoes the rotation up to c² + s² ≠ 1 in fp32 (a few units of 2⁻²⁴).
    std::vector<double> round_trip = x;
    rope_ref(round_trip.data(), rows, stride, heads, first_position, table);
    rope_inverse_ref(round_trip.data(), rows, stride, heads, first_position, table);
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_NEAR(round_trip[i], x[i], 4e-7 * (1 + std::fabs(x[i]))) << i;
  }
}

TEST(RopeBackward, HighwayMatchesReference) {
  testing::for_each_target([] {
    for (int head_dim : {2, 6, 8, 34, 64, 66}) {
      const RopeTable table = make_rope_table(head_dim, 500000.0, 2.0, 70);
      for (int heads : {1, 3}) {
        for (int misalign : testing::kMisalignments) {
          SCOPED_TRACE(::testing::Message() << "head_dim=" << head_dim << " heads=" << heads
                                            << " misalign=" << misalign);
          const int64_t rows = 5, stride = heads * head_dim + 2;
          const int first_position = 63;
          testing::Floats x(testing::random_floats(static_cast<size_t>(rows * stride), 7),
                            misalign);
          std::vector<double> expected(x.data, x.data + x.size);
          std::vector<float> before = x.vec();
          rope_apply_inverse(x.data, rows, stride, heads, first_position, table);
          rope_inverse_ref(expected.data(), rows, stride, heads, first_position, table);
          for (size_t i = 0; i < x.size; ++i) {
            // Two rounded products and a rounded sum: ≤ 2u·(|lo| + |hi|) per output.
            const size_t in_row = i % static_cast<size_t>(stride);
            double bound = 0;
            if (in_row < static_cast<size_t>(heads * head_dim)) {
              const auto hd = static_cast<size_t>(head_dim), half = hd / 2;
              const size_t j = in_row % hd;                              // index inside its head
              const size_t lo = (i - in_row) + (in_row - j) + j % half;  // its pair's lo
              bound = 2 * 0x1p-24 * (std::fabs(before[lo]) + std::fabs(before[lo + half]));
            }
            ASSERT_NEAR(x.data[i], expected[i], bound + 1e-30) << i;
          }
        }
      }
    }
  });
}

TEST(RopeBackward, ScalarPathIsTheReference) {
  testing::ForceGeneric generic;
  const RopeTable table = make_rope_table(10, 10000.0, 1.0, 8);
  auto x = testing::random_floats(3 * 20, 9);
  auto expected = x;
  rope_apply_inverse(x.data(), 3, 20, 2, 4, table);
  rope_inverse_ref(expected.data(), 3, 20, 2, 4, table);
  EXPECT_EQ(x, expected);
}

TEST(RopeBackward, PositionsBeyondTheTableAreAnError) {
  const RopeTable table = make_rope_table(8, 10000.0, 1.0, 10);
  std::vector<float> x(4 * 8, 1.0f);
  EXPECT_THROW(rope_apply_inverse(x.data(), 4, 8, 1, 7, table), Error);   // rows 7..10
  EXPECT_THROW(rope_apply_inverse(x.data(), 1, 8, 1, -1, table), Error);  // negative
  EXPECT_NO_THROW(rope_apply_inverse(x.data(), 4, 8, 1, 6, table));       // rows 6..9
}

}  // namespace
}  // namespace tulu
