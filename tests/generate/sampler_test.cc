// Sampler behaviour that needs no reference implementation: validation, greedy = argmax,
// seeded reproducibility, and draws that follow the distribution (chi-square, fixed seeds).
#include "generate/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace tulu {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<float> normal_logits(int vocab, uint32_t seed, float scale = 2.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> logits(static_cast<size_t>(vocab));
  for (float& x : logits) x = normal(rng);
  return logits;
}

TEST(Sampler, InvalidValuesNameTheOptionAndRange) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct Bad {
    SamplingParams params;
    const char* option;
    const char* range;
  };
  std::vector<Bad> bad;
  auto add = [&](const char* option, const char* range, auto set) {
    SamplingParams p;
    set(p);
    bad.push_back({p, option, range});
  };
  add("--temperature", ">= 0", [](SamplingParams& p) { p.temperature = -0.1; });
  add("--temperature", ">= 0", [&](SamplingParams& p) { p.temperature = nan; });
  add("--temperature", ">= 0", [&](SamplingParams& p) { p.temperature = inf; });
  add("--top-k", ">= 0", [](SamplingParams& p) { p.top_k = -1; });
  add("--top-p", "(0, 1]", [](SamplingParams& p) { p.top_p = 0.0; });
  add("--top-p", "(0, 1]", [](SamplingParams& p) { p.top_p = 1.01; });
  add("--top-p", "(0, 1]", [&](SamplingParams& p) { p.top_p = nan; });
  add("--min-p", "[0, 1]", [](SamplingParams& p) { p.min_p = -0.01; });
  add("--min-p", "[0, 1]", [](SamplingParams& p) { p.min_p = 1.5; });
  add("--min-p", "[0, 1]", [&](SamplingParams& p) { p.min_p = nan; });
  add("--repetition-penalty", "> 0", [](SamplingParams& p) { p.repetition_penalty = 0.0; });
  add("--repetition-penalty", "> 0", [](SamplingParams& p) { p.repetition_penalty = -1.0; });
  add("--repetition-penalty", "> 0", [&](SamplingParams& p) { p.repetition_penalty = nan; });
  for (const Bad& b : bad) {
    const std::string msg = error_of([&] { Sampler sampler(b.params); });
    EXPECT_NE(msg.find(b.option), std::string::npos) << msg;
    EXPECT_NE(msg.find(b.range), std::string::npos) << msg;
  }
  // Boundary values that are valid.
  SamplingParams edge;
  edge.temperature = 0.0;
  edge.top_p = 1.0;
  edge.min_p = 1.0;
  edge.top_k = 0;
  EXPECT_EQ(error_of([&] { validate_sampling(edge); }), "");
}

TEST(Sampler, BadHistoryIdAndNaNLogitAreErrors) {
  Sampler sampler(SamplingParams{.temperature = 1.0, .repetition_penalty = 1.2});
  std::vector<float> logits = normal_logits(10, 1);
  const std::vector<int> history = {3, 10};
  const std::string msg = error_of([&] { sampler.sample(logits, history); });
  EXPECT_NE(msg.find("id 10"), std::string::npos) << msg;
  logits = normal_logits(10, 1);
  logits[4] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(error_of([&] { sampler.sample(logits, {}); }).find("NaN"), std::string::npos);
}

TEST(Sampler, GreedyIsArgmaxFirstIndexOnTies) {
  Sampler greedy(SamplingParams{.temperature = 0.0, .top_k = 3, .top_p = 0.1});
  for (uint32_t seed = 0; seed < 50; ++seed) {
    std::vector<float> logits = normal_logits(1000, seed);
    const auto expected = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(greedy.sample(logits, {}), expected);
  }
  std::vector<float> tied = {0.5f, 2.0f, -1.0f, 2.0f, 2.0f};
  EXPECT_EQ(greedy.sample(tied, {}), 1);
  // The repetition penalty applies before the argmax: 2.0 / 1.5 < 1.9.
  Sampler penalised(SamplingParams{.temperature = 0.0, .repetition_penalty = 1.5});
  std::vector<float> logits = {0.0f, 2.0f, 1.9f};
  const std::vector<int> history = {1, 1, 1};
  EXPECT_EQ(penalised.sample(logits, history), 2);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  auto draw_sequence = [](uint64_t seed) {
    Sampler sampler(SamplingParams{.temperature = 1.0, .top_k = 50, .top_p = 0.95, .seed = seed});
    std::vector<int> ids;
    for (uint32_t step = 0; step < 64; ++step) {
      std::vector<float> logits = normal_logits(32000, step, 1.0f);
      ids.push_back(sampler.sample(logits, ids));
    }
    return ids;
  };
  EXPECT_EQ(draw_sequence(7), draw_sequence(7));
  EXPECT_NE(draw_sequence(7), draw_sequence(8));
}

// Wilson–Hilferty approximation of the chi-square quantile with `df` degrees of freedom at
// the upper tail probability whose normal quantile is z.
double chi_square_quantile(int df, double z) {
  const double k = static_cast<double>(df);
  const double a = 2.0 / (9.0 * k);
  return k * std::pow(1.0 - a + z * std::sqrt(a), 3.0);
}

void expect_draws_follow_distribution(const SamplingParams& params, std::vector<float> base,
                                      std::vector<int> history) {
  Sampler sampler(params);
  std::vector<float> logits = base;
  const std::vector<TokenProb> dist = sampler.distribution(logits, history);
  ASSERT_FALSE(dist.empty());
  std::map<int, double> prob;
  for (const TokenProb& t : dist) prob[t.id] = t.prob;

  const int draws = 200000;
  std::map<int, int> counts;
  for (int i = 0; i < draws; ++i) {
    logits = base;
    const int id = sampler.sample(logits, history);
    ASSERT_TRUE(prob.count(id)) << "drew filtered token " << id;
    ++counts[id];
  }
  double chi2 = 0.0;
  for (const auto& [id, p] : prob) {
    const double expected = p * draws;
    const double observed = counts.count(id) ? counts[id] : 0;
    chi2 += (observed - expected) * (observed - expected) / expected;
  }
  const int df = static_cast<int>(prob.size()) - 1;
  if (df == 0) return;
  const double limit = chi_square_quantile(df, /*z for p = 1e-4*/ 3.719);
  std::printf("chi-square %.2f with %d dof (limit %.2f at p = 1e-4)\n", chi2, df, limit);
  EXPECT_LT(chi2, limit);
}

TEST(Sampler, DrawsFollowTheDistribution) {
  std::vector<float> logits = normal_logits(40, 3, 1.0f);
  expect_draws_follow_distribution({.temperature = 1.0, .seed = 1}, logits, {});
  expect_draws_follow_distribution({.temperature = 0.7, .top_k = 10, .seed = 2}, logits, {});
  expect_draws_follow_distribution({.temperature = 1.3, .top_p = 0.8, .seed = 3}, logits, {});
  expect_draws_follow_distribution(
      {.temperature = 1.0, .top_k = 20, .top_p = 0.9, .min_p = 0.1, .repetition_penalty = 1.3,
       .seed = 4},
      logits, {0, 1, 2, 3, 3, 5});
}

TEST(Sampler, TopKKeepsTiesWithTheKthValue) {
  Sampler sampler(SamplingParams{.temperature = 1.0, .top_k = 2});
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, 2.0f, 0.0f, 2.0f};
  const std::vector<TokenProb> dist = sampler.distribution(logits, {});
  ASSERT_EQ(dist.size(), 4u);  // 3.0 and the three 2.0s
  EXPECT_EQ(dist[0].id, 1);
  double sum = 0.0;
  for (const TokenProb& t : dist) sum += t.prob;
  EXPECT_NEAR(sum, 1.0, 1e-12);
}

TEST(Sampler, TopPAndMinPKeepAtLeastTheTopToken) {
  std::vector<float> logits = normal_logits(100, 9);
  Sampler top_p(SamplingParams{.temperature = 1.0, .top_p = 1e-9});
  EXPECT_EQ(top_p.distribution(logits, {}).size(), 1u);
  logits = normal_logits(100, 9);
  Sampler min_p(SamplingParams{.temperature = 1.0, .min_p = 1.0});
  EXPECT_EQ(min_p.distribution(logits, {}).size(), 1u);
}

}  // namespace
}  // namespace tulu
