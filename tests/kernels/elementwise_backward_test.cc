// elementwise_backward.h: silu_mul_to gives silu_mul's bits; silu_mul_backward's double
// reference against central differences of silu_mul_ref (saturated gates included), the
// Highway path against it on every target and tail; embedding_backward with repeated ids.
#include <cmath>
#include <vector>

#include "gradient_check_util.h"
#include "kernel_test_util.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_backward.h"
#include "kernels/elementwise_backward_ref.h"
#include "kernels/elementwise_ref.h"

namespace tulu {
namespace {

using testing::to_double;

constexpr double kU = 0x1p-24;

// Gates over the whole useful range: normal values plus saturated ones.
std::vector<float> gate_values(size_t n, uint32_t seed) {
  auto g = testing::random_floats(n, seed, 3.0f);
  const float extremes[] = {-30.0f, -12.0f, 12.0f, 30.0f, 0.0f};
  for (size_t i = 0; i < n; i += 7) g[i] = extremes[(i / 7) % 5];
  return g;
}

TEST(ElementwiseBackward, SiluMulToEqualsSiluMul) {
  auto check = [] {
    for (int n = 0; n <= testing::kMaxTestLength; ++n) {
      for (int misalign : testing::kMisalignments) {
        testing::Floats gate(gate_values(static_cast<size_t>(n), 1), misalign);
        testing::Floats up(testing::random_floats(static_cast<size_t>(n), 2), misalign);
        testing::Floats out(static_cast<size_t>(n), misalign);
        const auto gate_before = gate.vec();
        silu_mul_to(gate.data, up.data, out.data, static_cast<size_t>(n));
        EXPECT_EQ(gate.vec(), gate_before) << "gate must not change";
        silu_mul(gate.data, up.data, static_cast<size_t>(n));
        EXPECT_EQ(out.vec(), gate.vec()) << "n=" << n << " misalign=" << misalign;
      }
    }
  };
  testing::for_each_target(check);
  testing::ForceGeneric generic;
  check();
}

TEST(ElementwiseBackward, SiluMulReferenceMatchesFiniteDifferences) {
  const size_t n = 40;
  auto gate = to_double(gate_values(n, 3));
  auto up = to_double(testing::random_floats(n, 4));
  const auto dh = to_double(testing::random_floats(n, 5));
  auto loss = [&] {
    std::vector<double> h = gate;
    silu_mul_ref(h.data(), up.data(), n);
    return testing::dot(dh, h);
  };
  std::vector<double> dgate(n), dup(n);
  silu_mul_backward_ref(gate.data(), up.data(), dh.data(), dgate.data(), dup.data(), n);
  testing::expect_gradients_match(testing::numeric_gradient(gate, loss), dgate, "dgate");
  testing::expect_gradients_match(testing::numeric_gradient(up, loss), dup, "dup");
}

// exp within a few ulp, σ and 1 − σ from it (1 − σ loses relative accuracy as σ → 1, but it
// is multiplied by g, so the absolute error of σ'(g) stays ≲ (|g| + 1)·8u):
//   |Δdup| ≤ 8u·|dh·g|,  |Δdgate| ≤ 8u·(|g| + 2)·|dh·u|.
void check_silu_backward(size_t n, int misalign) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " misalign=" << misalign);
  testing::Floats gate(gate_values(n, 6), misalign), up(testing::random_floats(n, 7), misalign),
      dh(testing::random_floats(n, 8), misalign), dgate(n, misalign), dup(n, misalign);
  silu_mul_backward(gate.data, up.data, dh.data, dgate.data, dup.data, n);
  const auto g = to_double(gate.vec()), u = to_double(up.vec()), d = to_double(dh.vec());
  std::vector<double> dgate_expected(n), dup_expected(n);
  silu_mul_backward_ref(g.data(), u.data(), d.data(), dgate_expected.data(), dup_expected.data(),
                        n);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_NEAR(dup.data[i], dup_expected[i], 8 * kU * std::fabs(d[i] * g[i]) + 1e-30) << i;
    ASSERT_NEAR(dgate.data[i], dgate_expected[i],
                8 * kU * (std::fabs(g[i]) + 2) * std::fabs(d[i] * u[i]) + 1e-30)
        << i;
  }
}

TEST(ElementwiseBackward, SiluMulBackwardMatchesReference) {
  testing::for_each_target([] {
    for (int n = 0; n <= testing::kMaxTestLength; ++n)
      for (int misalign : testing::kMisalignments)
        check_silu_backward(static_cast<size_t>(n), misalign);
    check_silu_backward(3072 + 5, 1);
  });
  testing::ForceGeneric generic;
  check_silu_backward(50, 1);
}

TEST(ElementwiseBackward, PooledVersionsGiveTheSameBits) {
  for (size_t n : {size_t{0}, size_t{5}, size_t{64 * 3 + 5}, size_t{64 * 64 * 3 + 17}}) {
    const auto gate = gate_values(n, 11), up = testing::random_floats(n, 12),
               dh = testing::random_floats(n, 13);
    std::vector<float> out(n), dgate(n), dup(n);
    silu_mul_to(gate.data(), up.data(), out.data(), n);
    silu_mul_backward(gate.data(), up.data(), dh.data(), dgate.data(), dup.data(), n);
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      std::vector<float> pooled_out(n), pooled_dgate(n), pooled_dup(n);
      silu_mul_to(gate.data(), up.data(), pooled_out.data(), n, pool);
      silu_mul_backward(gate.data(), up.data(), dh.data(), pooled_dgate.data(), pooled_dup.data(),
                        n, pool);
      EXPECT_EQ(pooled_out, out) << "n=" << n << " threads=" << threads;
      EXPECT_EQ(pooled_dgate, dgate) << "n=" << n << " threads=" << threads;
      EXPECT_EQ(pooled_dup, dup) << "n=" << n << " threads=" << threads;
    }
  }
}

TEST(ElementwiseBackward, EmbeddingBackwardAddsRowsPerToken) {
  const int64_t vocab = 9, hidden = 37;
  const std::vector<int> ids = {3, 0, 3, 8, 3, 5};  // repeated ids accumulate
  const auto dout = testing::random_floats(ids.size() * static_cast<size_t>(hidden), 9);
  const auto start = testing::random_floats(static_cast<size_t>(vocab * hidden), 10);
  auto run = [&] {
    std::vector<float> table = start;
    embedding_backward(ids, dout.data(), hidden, table.data());
    return table;
  };
  // The reference in float adds in the same order, element by element: exactly equal.
  std::vector<float> expected = start;
  embedding_backward_ref<float>(ids, dout.data(), hidden, expected.data());
  testing::for_each_target([&] { EXPECT_EQ(run(), expected); });
  {
    testing::ForceGeneric generic;
    EXPECT_EQ(run(), expected);
  }
  // Rows of unused ids are untouched; a used row changed.
  for (int64_t i = 0; i < hidden; ++i) {
    EXPECT_EQ(expected[static_cast<size_t>(1 * hidden + i)],
              start[static_cast<size_t>(hidden + i)]);
  }
  EXPECT_NE(expected[static_cast<size_t>(3 * hidden)], start[static_cast<size_t>(3 * hidden)]);
  std::vector<double> table_d = to_double(start);
  embedding_backward_ref<double>(ids, to_double(dout).data(), hidden, table_d.data());
  double sum3 = start[static_cast<size_t>(3 * hidden)];
  for (size_t t : {size_t{0}, size_t{2}, size_t{4}}) sum3 += dout[t * static_cast<size_t>(hidden)];
  EXPECT_NEAR(table_d[static_cast<size_t>(3 * hidden)], sum3, 1e-12);
}

}  // namespace
}  // namespace tulu
