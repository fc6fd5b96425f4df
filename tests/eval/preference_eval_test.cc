// Preference evaluation (eval/preference_eval.h):
//  * summarize_preferences on hand-made scores whose every field is computed by hand here:
//    strict accuracies (ties not counted, as TRL), ties, means, rewards, margins, DPO loss;
//    size / token-count / beta errors; the JSON fields and the table's numbers;
//  * score_preference_pairs on small random models equals scoring prompt + completion from
//    scratch with a fresh Session and a log-softmax written here; length / id / empty errors
//    name the pair's line.
// The comparison with PyTorch is tests/py/test_eval_prefs.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "eval/eval_progress.h"
#include "eval/preference_eval.h"
#include "llama/model.h"
#include "llama/session.h"
#include "../llama/checkpoint_test_util.h"

namespace tulu {
namespace {

// Expects a tulu::Error whose message contains every fragment.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message: " << message << "\nmissing: " << fragment;
    }
    return;
  }
  ADD_FAILURE() << "expected tulu::Error";
}

// Three pairs built so that every rule shows (β = 0.5):
//   pair 0: π_c −10 (5 tok) > π_r −12 (6 tok), per token −2 == −2 (a per-token tie);
//           ref −11 / −11 → rewards +0.5 / −0.5, margin 1, β·logits = 0.5·(2 − 0) = 1
//   pair 1: π_c −3 == π_r −3 (a log-prob tie), per token −1.5 / −1.5;
//           ref −2 / −3.5 → rewards −0.5 / +0.25, margin −0.75, β·logits = 0.5·(0 − 1.5)
//   pair 2: π_c −8 < π_r −5, per token −2 < −1;
//           ref −8 / −5 → rewards 0 / 0 (a reward tie), margin 0, β·logits = 0
std::vector<PairScores> hand_policy() {
  return {{-10.0, -12.0, 5, 6}, {-3.0, -3.0, 2, 2}, {-8.0, -5.0, 4, 5}};
}
std::vector<PairScores> hand_reference() {
  return {{-11.0, -11.0, 5, 6}, {-2.0, -3.5, 2, 2}, {-8.0, -5.0, 4, 5}};
}

TEST(SummarizePreferences, HandComputedWithReference) {
  const PreferenceReport r = summarize_preferences(hand_policy(), hand_reference(), 0.5);
  EXPECT_EQ(r.pairs, 3);
  EXPECT_TRUE(r.has_reference);
  EXPECT_EQ(r.beta, 0.5);
  EXPECT_DOUBLE_EQ(r.mean_logp_chosen, -21.0 / 3);
  EXPECT_DOUBLE_EQ(r.mean_logp_rejected, -20.0 / 3);
  EXPECT_DOUBLE_EQ(r.mean_token_logp_chosen, (-2.0 - 1.5 - 2.0) / 3);
  EXPECT_DOUBLE_EQ(r.mean_token_logp_rejected, (-2.0 - 1.5 - 1.0) / 3);
  EXPECT_DOUBLE_EQ(r.logp_accuracy, 1.0 / 3);    // only pair 0; the tie of pair 1 is no win
  EXPECT_DOUBLE_EQ(r.token_logp_accuracy, 0.0);  // pair 0 ties per token, pairs 1-2 lose
  EXPECT_EQ(r.logp_ties, 1);
  EXPECT_DOUBLE_EQ(r.reward_accuracy, 1.0 / 3);  // pair 2's equal rewards are no win
  EXPECT_DOUBLE_EQ(r.mean_reward_chosen, (0.5 - 0.5 + 0.0) / 3);
  EXPECT_DOUBLE_EQ(r.mean_reward_rejected, (-0.5 + 0.25 + 0.0) / 3);
  EXPECT_DOUBLE_EQ(r.mean_margin, (1.0 - 0.75 + 0.0) / 3);
  const double loss =
      (std::log(1 + std::exp(-1.0)) + std::log(1 + std::exp(0.75)) + std::log(2.0)) / 3;
  EXPECT_NEAR(r.dpo_loss, loss, 1e-15);
}

TEST(SummarizePreferences, WithoutReferenceLeavesRewardFieldsOut) {
  const PreferenceReport r = summarize_preferences(hand_policy(), {}, 0.1);
  EXPECT_FALSE(r.has_reference);
  EXPECT_DOUBLE_EQ(r.logp_accuracy, 1.0 / 3);
  EXPECT_EQ(r.logp_ties, 1);
  EXPECT_EQ(r.reward_accuracy, 0.0);
  EXPECT_EQ(r.dpo_loss, 0.0);
  const Json j = preference_report_json(r);
  EXPECT_FALSE(j.contains("reward_accuracy"));
  EXPECT_FALSE(j.contains("dpo_loss"));
  EXPECT_EQ(j.at("pairs").get<int64_t>(), 3);
  EXPECT_EQ(j.at("has_reference").get<bool>(), false);
  const std::string table = preference_report_table(r);
  EXPECT_EQ(table.find("reward_accuracy"), std::string::npos) << table;
  EXPECT_NE(table.find("no reference"), std::string::npos) << table;
}

TEST(SummarizePreferences, AllWinsAndLargeMarginsStayFinite) {
  // β·logits of ±2000: −log σ must neither overflow (loss ≈ 2000) nor underflow to NaN.
  const std::vector<PairScores> policy = {{-1.0, -20001.0, 3, 3}, {-20001.0, -1.0, 3, 3}};
  const std::vector<PairScores> reference = {{-1.0, -1.0, 3, 3}, {-1.0, -1.0, 3, 3}};
  const PreferenceReport r = summarize_preferences(policy, reference, 0.1);
  EXPECT_DOUBLE_EQ(r.reward_accuracy, 0.5);
  EXPECT_NEAR(r.dpo_loss, (0.0 + 2000.0) / 2, 1e-9);
  EXPECT_DOUBLE_EQ(r.mean_margin, 0.0);
}

TEST(SummarizePreferences, JsonAndTableCarryEveryField) {
  const PreferenceReport r = summarize_preferences(hand_policy(), hand_reference(), 0.5);
  const Json j = preference_report_json(r);
  const std::vector<std::pair<std::string, double>> fields = {
      {"beta", r.beta},
      {"mean_logp_chosen", r.mean_logp_chosen},
      {"mean_logp_rejected", r.mean_logp_rejected},
      {"mean_token_logp_chosen", r.mean_token_logp_chosen},
      {"mean_token_logp_rejected", r.mean_token_logp_rejected},
      {"logp_accuracy", r.logp_accuracy},
      {"token_logp_accuracy", r.token_logp_accuracy},
      {"reward_accuracy", r.reward_accuracy},
      {"mean_margin", r.mean_margin},
      {"mean_reward_chosen", r.mean_reward_chosen},
      {"mean_reward_rejected", r.mean_reward_rejected},
      {"dpo_loss", r.dpo_loss}};
  const std::string table = preference_report_table(r);
  for (const auto& [name, value] : fields) {
    ASSERT_TRUE(j.contains(name)) << name;
    EXPECT_EQ(j.at(name).get<double>(), value) << name;
    if (name == "beta") continue;
    char formatted[64];
    std::snprintf(formatted, sizeof formatted, "%.6f", value);
    const size_t row = table.find("\n" + name + " ");
    ASSERT_NE(row, std::string::npos) << name << "\n" << table;
    const size_t end = table.find('\n', row + 1);
    EXPECT_NE(table.substr(row, end - row).find(formatted), std::string::npos)
        << name << " " << formatted << "\n"
        << table;
  }
  EXPECT_EQ(j.at("logp_ties").get<int64_t>(), 1);
  EXPECT_NE(table.find("(1 of 3 pairs"), std::string::npos) << table;
}

TEST(SummarizePreferences, MismatchesAndBadInputsAreErrors) {
  auto reference = hand_reference();
  reference.pop_back();
  expect_error([&] { summarize_preferences(hand_policy(), reference, 0.1); },
               {"reference scores for 2 pairs", "policy scores for 3"});
  reference = hand_reference();
  reference[1].rejected_tokens = 3;
  expect_error([&] { summarize_preferences(hand_policy(), reference, 0.1); },
               {"pair 1", "2/3", "2/2"});
  expect_error([&] { summarize_preferences(hand_policy(), {}, 0.0); }, {"beta", "> 0"});
  expect_error([&] { summarize_preferences(hand_policy(), {}, std::nan("")); }, {"beta"});
  expect_error([&] { summarize_preferences({}, {}, 0.1); }, {"no preference pairs"});
  auto policy = hand_policy();
  policy[2].chosen_tokens = 0;
  expect_error([&] { summarize_preferences(policy, {}, 0.1); }, {"pair 2", "token counts"});
}

TEST(EvalProgress, RendersRateAndEta) {
  const EvalProgress progress("policy", "pairs", /*enabled=*/false, nullptr,
                              /*interactive=*/false);
  EXPECT_EQ(progress.render(3, 10, 1.5),
            "policy: 3/10 pairs | 2.00 pairs/s | elapsed 0:02 | ETA 0:04");
  EXPECT_EQ(progress.render(0, 10, 0.0),
            "policy: 0/10 pairs | 0.00 pairs/s | elapsed 0:00 | ETA ?");
}

// --- score_preference_pairs on random models ---------------------------------------------

// The tiny shape with a 97-token vocabulary and 48 positions.
LlamaConfig tiny_config(bool tie) {
  LlamaConfig c = testing_util::tiny_llama_config();
  c.vocab_size = 97;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.max_position_embeddings = 48;
  c.tie_word_embeddings = tie;
  return c;
}

// Seeded F32 weights with tests/reference/hf_checkpoint.py's scales (O(1) logits).
std::unique_ptr<LlamaModel> random_model(const LlamaConfig& config, uint32_t seed) {
  return testing_util::random_llama_model(config, seed);
}

std::vector<int> random_ids(std::mt19937& gen, int length, int vocab) {
  std::uniform_int_distribution<int> id(0, vocab - 1);
  std::vector<int> ids(static_cast<size_t>(length));
  for (int& v : ids) v = id(gen);
  return ids;
}

// Σ log p(completion) from a fresh Session over prompt + completion, every row's logits, and a
// log-softmax in long double: the definition, with none of the prompt reuse under test.
double from_scratch(const LlamaModel& model, const std::vector<int>& prompt,
                    const std::vector<int>& completion, ThreadPool& pool) {
  std::vector<int> all = prompt;
  all.insert(all.end(), completion.begin(), completion.end());
  Session session(model, static_cast<int>(all.size()), pool);
  const std::span<const float> logits = session.eval(all, /*all_logits=*/true);
  const auto vocab = static_cast<size_t>(model.config().vocab_size);
  long double total = 0;
  for (size_t j = 0; j < completion.size(); ++j) {
    const float* row = logits.data() + (prompt.size() - 1 + j) * vocab;
    long double sum = 0;
    for (size_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<long double>(row[v]));
    total += static_cast<long double>(row[completion[j]]) - std::log(sum);
  }
  return static_cast<double>(total);
}

TEST(ScorePreferencePairs, EqualsScoringEachSideFromScratch) {
  for (const bool tie : {false, true}) {
    const LlamaConfig config = tiny_config(tie);
    const auto model = random_model(config, tie ? 11u : 7u);
    std::mt19937 gen(3);
    std::vector<PreferencePair> pairs;
    // Lengths cover one-token completions (only the prompt's last row is used), a one-token
    // prompt (BOS only), unequal sides and the whole context (prompt + longer side = 48).
    const int shapes[][3] = {{5, 1, 1}, {1, 4, 7}, {9, 12, 3}, {20, 28, 6}, {3, 2, 2}, {30, 1, 18}};
    int64_t line = 1;
    for (const auto& shape : shapes) {
      PreferencePair pair;
      pair.prompt_ids = random_ids(gen, shape[0], config.vocab_size);
      pair.chosen_ids = random_ids(gen, shape[1], config.vocab_size);
      pair.rejected_ids = random_ids(gen, shape[2], config.vocab_size);
      pair.line = line;
      line += 2;
      pairs.push_back(pair);
    }
    pairs.push_back(pairs[2]);  // the same pair twice: identical scores (the session is reset)
    ThreadPool pool(2);
    std::vector<int64_t> progress;
    const std::vector<PairScores> scores =
        score_preference_pairs(*model, pairs, pool, [&](int64_t done, int64_t total) {
          EXPECT_EQ(total, static_cast<int64_t>(pairs.size()));
          progress.push_back(done);
        });
    ASSERT_EQ(scores.size(), pairs.size());
    EXPECT_EQ(progress, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
    for (size_t i = 0; i < pairs.size(); ++i) {
      const double chosen = from_scratch(*model, pairs[i].prompt_ids, pairs[i].chosen_ids, pool);
      const double rejected =
          from_scratch(*model, pairs[i].prompt_ids, pairs[i].rejected_ids, pool);
      // Batched vs chunked fp32 summation orders: ≈ 1e-6 per logit (session_test.cc), summed
      // over ≤ 28 tokens of |log p| ≈ 5.
      EXPECT_NEAR(scores[i].chosen_logp, chosen, 1e-4 * std::max(1.0, std::fabs(chosen)))
          << "pair " << i << " tie " << tie;
      EXPECT_NEAR(scores[i].rejected_logp, rejected, 1e-4 * std::max(1.0, std::fabs(rejected)))
          << "pair " << i << " tie " << tie;
      EXPECT_LT(scores[i].chosen_logp, 0.0);
      EXPECT_EQ(scores[i].chosen_tokens, static_cast<int64_t>(pairs[i].chosen_ids.size()));
      EXPECT_EQ(scores[i].rejected_tokens, static_cast<int64_t>(pairs[i].rejected_ids.size()));
    }
    EXPECT_EQ(scores[6].chosen_logp, scores[2].chosen_logp);
    EXPECT_EQ(scores[6].rejected_logp, scores[2].rejected_logp);
  }
}

TEST(ScorePreferencePairs, CompletionsLongerThanABatchAreScoredInChunks) {
  // Completions of 2 × max_batch + 1 tokens: three evaluation chunks per side, and a side that
  // ends exactly at a chunk boundary (max_batch + 1 tokens = max_batch inputs).
  LlamaConfig config = tiny_config(false);
  config.max_position_embeddings = 2 * Session::kDefaultMaxBatch + 8;
  const auto model = random_model(config, 13);
  std::mt19937 gen(5);
  PreferencePair pair;
  pair.prompt_ids = random_ids(gen, 6, config.vocab_size);
  pair.chosen_ids = random_ids(gen, 2 * Session::kDefaultMaxBatch + 1, config.vocab_size);
  pair.rejected_ids = random_ids(gen, Session::kDefaultMaxBatch + 1, config.vocab_size);
  ThreadPool pool(2);
  const std::vector<PairScores> scores = score_preference_pairs(*model, {pair}, pool, {});
  const double chosen = from_scratch(*model, pair.prompt_ids, pair.chosen_ids, pool);
  const double rejected = from_scratch(*model, pair.prompt_ids, pair.rejected_ids, pool);
  EXPECT_NEAR(scores[0].chosen_logp, chosen, 1e-4 * std::fabs(chosen));
  EXPECT_NEAR(scores[0].rejected_logp, rejected, 1e-4 * std::fabs(rejected));
}

TEST(ScorePreferencePairs, BadPairsAreErrorsNamingTheLine) {
  const LlamaConfig config = tiny_config(false);
  const auto model = random_model(config, 5);
  ThreadPool pool(1);
  PreferencePair good{{1, 2, 3}, {4, 5}, {6}, 3};
  auto score = [&](const PreferencePair& bad) {
    score_preference_pairs(*model, {good, bad}, pool, {});
  };
  PreferencePair too_long{std::vector<int>(40, 1), std::vector<int>(9, 2), {3}, 17};
  expect_error([&] { score(too_long); }, {"line 17", "prompt 40", "longer completion 9", "49",
                                          "max_position_embeddings (48"});
  // The final completion token is only a target, never evaluated as an input.
  PreferencePair bad_target{{1, 2}, {4, 97}, {6}, 21};
  expect_error([&] { score(bad_target); }, {"line 21", "chosen_ids[1] = 97", "[0, 97)"});
  PreferencePair negative{{1, -1}, {4}, {6}, 22};
  expect_error([&] { score(negative); }, {"line 22", "prompt_ids[1] = -1"});
  PreferencePair empty_side{{1, 2}, {4}, {}, 23};
  expect_error([&] { score(empty_side); }, {"line 23", "empty rejected completion"});
  PreferencePair empty_prompt{{}, {4}, {5}, 24};
  expect_error([&] { score(empty_prompt); }, {"line 24", "empty prompt"});
  EXPECT_TRUE(score_preference_pairs(*model, {}, pool, {}).empty());
}

}  // namespace
}  // namespace tulu
