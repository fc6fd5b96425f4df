// cross_entropy: the double reference's gradient against central differences of its loss;
// its loss against the textbook formula; the Highway path against the double reference on
// every target (vocab sizes covering every tail up to 32000, ignored rows, exact ties for
// the argmax, large logits), 1–3 threads with a thread-count-free loss sum; bad targets.
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "gradient_check_util.h"
#include "kernel_test_util.h"
#include "kernels/cross_entropy.h"
#include "kernels/cross_entropy_ref.h"

namespace tulu {
namespace {

using testing::to_double;

constexpr double kU = 0x1p-24;

TEST(CrossEntropy, ReferenceLossAndGradient) {
  const int64_t rows = 4, vocab = 11;
  const std::vector<int> targets = {3, kIgnoreIndex, 0, 10};
  const double scale = 0.37;
  auto logits = to_double(testing::random_floats(static_cast<size_t>(rows * vocab), 1, 2.0f));
  auto loss = [&] {
    std::vector<double> copy = logits;
    return scale *
           cross_entropy_ref(copy.data(), targets.data(), rows, vocab, scale, false).loss_sum;
  };
  // Textbook: Σ_kept log Σ_i exp(z_i) − z_target.
  double textbook = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[static_cast<size_t>(r)] == kIgnoreIndex) continue;
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(logits[static_cast<size_t>(r * vocab + i)]);
    textbook +=
        std::log(sum) - logits[static_cast<size_t>(r * vocab + targets[static_cast<size_t>(r)])];
  }
  EXPECT_NEAR(loss(), scale * textbook, 1e-13);

  std::vector<double> gradient = logits;
  const CrossEntropyStats stats =
      cross_entropy_ref(gradient.data(), targets.data(), rows, vocab, scale, true);
  EXPECT_EQ(stats.tokens, 3);
  testing::expect_gradients_match(testing::numeric_gradient(logits, loss), gradient, "dlogits");
  for (int64_t i = 0; i < vocab; ++i) EXPECT_EQ(gradient[static_cast<size_t>(vocab + i)], 0.0);
}

// Fast path vs double reference. The fp32 exponent argument z − m is rounded (u·|z − m|),
// exp is within a few ulp, the fp32 block sums ≲ 40u; so the probabilities are within
// (|z − m| + 48)·u relative (plus the final rounding, 2u·|gradient|), and the loss within 48u +
// u·|m| + u·|z_target| absolute per row.
void check_cross_entropy(int64_t rows, int64_t vocab, float logit_scale, ThreadPool& pool) {
  SCOPED_TRACE(::testing::Message() << "rows=" << rows << " vocab=" << vocab << " logit_scale="
                                    << logit_scale << " threads=" << pool.num_threads());
  const auto logits = testing::random_floats(static_cast<size_t>(rows * vocab), 5, logit_scale);
  std::vector<int> targets(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    targets[static_cast<size_t>(r)] =
        r % 4 == 1 ? kIgnoreIndex : static_cast<int>((r * 7919 + 3) % vocab);
  }
  if (rows > 2) {  // one row whose target is its argmax: `correct` must count it
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; ++i)
      if (logits[static_cast<size_t>(2 * vocab + i)] >
          logits[static_cast<size_t>(2 * vocab + best)])
        best = i;
    targets[2] = static_cast<int>(best);
  }
  const float scale = 1.0f / 3.0f;
  std::vector<double> expected = to_double(logits);
  const CrossEntropyStats expected_stats =
      cross_entropy_ref(expected.data(), targets.data(), rows, vocab, 1.0 / 3.0, true);

  std::vector<float> no_grad = logits;
  const CrossEntropyStats loss_only =
      cross_entropy(no_grad.data(), targets.data(), rows, vocab, scale, false, pool);
  EXPECT_EQ(no_grad, logits) << "compute_grad=false must leave the logits alone";

  std::vector<float> grad = logits;
  const CrossEntropyStats stats =
      cross_entropy(grad.data(), targets.data(), rows, vocab, scale, true, pool);
  EXPECT_EQ(stats.loss_sum, loss_only.loss_sum);
  EXPECT_EQ(stats.tokens, expected_stats.tokens);
  EXPECT_EQ(stats.correct, expected_stats.correct);
  if (rows > 2) {
    EXPECT_GE(stats.correct, 1);
  }

  double loss_bound = 1e-30;
  for (int64_t r = 0; r < rows; ++r) {
    const int target = targets[static_cast<size_t>(r)];
    const float* row = logits.data() + r * vocab;
    if (target == kIgnoreIndex) {
      for (int64_t i = 0; i < vocab; ++i) ASSERT_EQ(grad[static_cast<size_t>(r * vocab + i)], 0.0f);
      continue;
    }
    float m = row[0];
    for (int64_t i = 1; i < vocab; ++i) m = std::max(m, row[i]);
    loss_bound += kU * (48 + std::fabs(m) + std::fabs(row[target]));
    for (int64_t i = 0; i < vocab; ++i) {
      const auto at = static_cast<size_t>(r * vocab + i);
      const double p = expected[at] + (i == target ? 1.0 / 3.0 : 0.0);  // scale · probability
      // (+1e-37: probabilities below fp32's normal range are denormal or flushed to 0.)
      const double bound =
          (std::fabs(row[i] - m) + 48) * kU * p + 2 * kU * std::fabs(expected[at]) + 1e-37;
      ASSERT_NEAR(grad[at], expected[at], bound) << "row " << r << " column " << i;
    }
  }
  EXPECT_NEAR(stats.loss_sum, expected_stats.loss_sum, loss_bound);
}

TEST(CrossEntropy, HighwayMatchesReference) {
  ThreadPool one(1), two(2), three(3);
  testing::for_each_target([&] {
    for (int64_t vocab = 1; vocab <= testing::kMaxTestLength; ++vocab)
      check_cross_entropy(6, vocab, 3.0f, two);
    for (ThreadPool* pool : {&one, &two, &three}) {
      check_cross_entropy(9, 257, 1.0f, *pool);    // a partial 256-element block
      check_cross_entropy(5, 1000, 30.0f, *pool);  // peaked distributions
    }
    check_cross_entropy(3, 32000, 4.0f, three);
  });
  testing::ForceGeneric generic;
  check_cross_entropy(7, 100, 2.0f, two);
}

TEST(CrossEntropy, LossSumSameForEveryThreadCount) {
  const int64_t rows = 37, vocab = 500;
  const auto logits = testing::random_floats(static_cast<size_t>(rows * vocab), 11, 2.0f);
  std::vector<int> targets(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r)
    targets[static_cast<size_t>(r)] = static_cast<int>(r * 13 % vocab);
  ThreadPool one(1);
  std::vector<float> reference_grad = logits;
  const double reference =
      cross_entropy(reference_grad.data(), targets.data(), rows, vocab, 0.1f, true, one).loss_sum;
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    std::vector<float> grad = logits;
    EXPECT_EQ(cross_entropy(grad.data(), targets.data(), rows, vocab, 0.1f, true, pool).loss_sum,
              reference);
    EXPECT_EQ(grad, reference_grad);
  }
}

TEST(CrossEntropy, TiesLargeLogitsAndAllIgnored) {
  ThreadPool two(2);
  testing::for_each_target([&] {
    // All-equal rows: argmax is the first index; loss is log(vocab).
    std::vector<float> ties(2 * 40, 5.0f);
    const std::vector<int> tie_targets = {0, 1};
    const CrossEntropyStats stats =
        cross_entropy(ties.data(), tie_targets.data(), 2, 40, 1.0f, true, two);
    EXPECT_EQ(stats.correct, 1);
    EXPECT_NEAR(stats.loss_sum, 2 * std::log(40.0), 1e-5);
    EXPECT_NEAR(ties[0], 1.0 / 40 - 1, 1e-6);
    EXPECT_NEAR(ties[1], 1.0 / 40, 1e-7);
    // Logits far beyond exp's range stay finite through the max subtraction.
    std::vector<float> big = {1e4f, -1e4f, 3e4f, 2e4f};
    const std::vector<int> big_target = {3};
    const CrossEntropyStats big_stats =
        cross_entropy(big.data(), big_target.data(), 1, 4, 1.0f, true, two);
    EXPECT_NEAR(big_stats.loss_sum, 1e4, 1e-2);
    EXPECT_NEAR(big[2], 1.0, 1e-6);
    EXPECT_NEAR(big[3], -1.0, 1e-6);
    // Nothing kept: zero loss, zero tokens, zero gradient.
    std::vector<float> ignored = testing::random_floats(3 * 5, 3);
    const std::vector<int> none = {kIgnoreIndex, kIgnoreIndex, kIgnoreIndex};
    const CrossEntropyStats empty =
        cross_entropy(ignored.data(), none.data(), 3, 5, 1.0f, true, two);
    EXPECT_EQ(empty.tokens, 0);
    EXPECT_EQ(empty.loss_sum, 0.0);
    for (float v : ignored) EXPECT_EQ(v, 0.0f);
  });
}

TEST(CrossEntropy, BadTargetsNameTheRow) {
  ThreadPool two(2);
  for (int bad : {7, 100, -1, -101}) {
    std::vector<float> logits = testing::random_floats(4 * 7, 4);
    const auto before = logits;
    const std::vector<int> targets = {0, kIgnoreIndex, 6, bad};
    try {
      cross_entropy(logits.data(), targets.data(), 4, 7, 1.0f, true, two);
      ADD_FAILURE() << "target " << bad << " accepted";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("row 3"), std::string::npos) << message;
      EXPECT_NE(message.find("target " + std::to_string(bad)), std::string::npos) << message;
    }
    EXPECT_EQ(logits, before) << "nothing is written before the targets are checked";
  }
}

}  // namespace
}  // namespace tulu
