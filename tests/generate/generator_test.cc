// The generation loop on a small random model built in memory with the real Llama 2
// tokenizer: every stopping rule, streaming, cancellation, prefix reuse and the errors.
// Each expectation is derived from an unrestricted greedy run of the same model (greedy is
// deterministic), e.g. the EOS test declares a token of that run to be EOS.
// Parity of the generated ids with PyTorch is tests/py/test_generate_parity.py.
#include "generate/generator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "llama/model.h"
#include "llama/session.h"
#include "tokenizer/tokenizer.h"
#include "../llama/checkpoint_test_util.h"

namespace tulu {
namespace {

// The tiny shape with the Llama 2 tokenizer's BOS and EOS ids.
std::unique_ptr<LlamaModel> random_model(uint32_t seed) {
  LlamaConfig c = testing_util::tiny_llama_config();
  c.bos_token_ids = {1};
  c.eos_token_ids = {2};
  return testing_util::random_llama_model(c, seed);
}

class GeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = Tokenizer::load_dir(TULU_SOURCE_DIR "/data/llama2-tokenizer");
    model_ = random_model(11);
    prompt_ = tokenizer_->encode("The quick brown fox", /*add_bos=*/true);
  }

  GenerateResult run(Session& session, const GenerateOptions& options,
                     std::vector<std::string>* pieces = nullptr) {
    return generate(session, *tokenizer_, prompt_, options, [&](std::string_view text) {
      if (pieces != nullptr) pieces->emplace_back(text);
      return true;
    });
  }

  // Greedy, n tokens, no EOS and no stop strings: the run every other test is derived from.
  GenerateResult free_run(int n) {
    Session session(*model_, 0, pool_);
    GenerateOptions options;
    options.max_new_tokens = n;
    options.sampling.temperature = 0.0;
    return run(session, options);
  }

  ThreadPool pool_{1};
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<LlamaModel> model_;
  std::vector<int> prompt_;
};

TEST_F(GeneratorTest, MaxNewTokensAndStreamedTextEqualsDecode) {
  Session session(*model_, 0, pool_);
  GenerateOptions options;
  options.max_new_tokens = 24;
  options.sampling.temperature = 0.0;
  std::vector<std::string> pieces;
  const GenerateResult result = run(session, options, &pieces);
  EXPECT_EQ(result.finish_reason, FinishReason::Length);
  ASSERT_EQ(result.ids.size(), 24u);
  std::string joined;
  for (const std::string& piece : pieces) joined += piece;
  EXPECT_EQ(joined, result.text);
  EXPECT_EQ(result.text, tokenizer_->decode(result.ids, /*skip_special=*/true));
  EXPECT_EQ(result.prompt_tokens, static_cast<int>(prompt_.size()));
  // The last generated token is not evaluated.
  EXPECT_EQ(session.pos(), static_cast<int>(prompt_.size() + result.ids.size() - 1));
}

TEST_F(GeneratorTest, StopsAtAnyEosIdWithoutEmittingIt) {
  const GenerateResult free = free_run(20);
  ASSERT_EQ(free.ids.size(), 20u);
  const int eos = free.ids[7];
  const auto first = std::find(free.ids.begin(), free.ids.end(), eos) - free.ids.begin();
  Session session(*model_, 0, pool_);
  GenerateOptions options;
  options.max_new_tokens = 20;
  options.sampling.temperature = 0.0;
  options.eos_ids = {31999, eos};
  const GenerateResult result = run(session, options);
  EXPECT_EQ(result.finish_reason, FinishReason::Eos);
  EXPECT_EQ(result.ids, std::vector<int>(free.ids.begin(), free.ids.begin() + first));
}

TEST_F(GeneratorTest, StopStringIsCutAndItsStartHeldBack) {
  const GenerateResult free = free_run(32);
  // A stop string taken from the middle of the text, spanning a token boundary when
  // possible: the output must be the text before its first occurrence.
  const std::string& text = free.text;
  ASSERT_GT(text.size(), 12u);
  const std::string stop = text.substr(text.size() / 2, 5);
  Session session(*model_, 0, pool_);
  GenerateOptions options;
  options.max_new_tokens = 32;
  options.sampling.temperature = 0.0;
  options.stop_strings = {stop};
  std::vector<std::string> pieces;
  const GenerateResult result = run(session, options, &pieces);
  EXPECT_EQ(result.finish_reason, FinishReason::StopString);
  EXPECT_EQ(result.text, text.substr(0, text.find(stop)));
  std::string joined;
  for (const std::string& piece : pieces) joined += piece;
  EXPECT_EQ(joined, result.text);
  EXPECT_LT(result.ids.size(), free.ids.size());
}

TEST_F(GeneratorTest, ContextFullStopsAfterTheLastToken) {
  const GenerateResult free = free_run(16);
  const int capacity = static_cast<int>(prompt_.size()) + 3;
  Session session(*model_, capacity, pool_);
  GenerateOptions options;
  options.max_new_tokens = 16;
  options.sampling.temperature = 0.0;
  const GenerateResult result = run(session, options);
  EXPECT_EQ(result.finish_reason, FinishReason::ContextFull);
  // Three generated tokens fill the cache; a fourth is sampled from the last logits.
  EXPECT_EQ(result.ids, std::vector<int>(free.ids.begin(), free.ids.begin() + 4));
}

TEST_F(GeneratorTest, CancelledByTheCallback) {
  Session session(*model_, 0, pool_);
  GenerateOptions options;
  options.max_new_tokens = 16;
  options.sampling.temperature = 0.0;
  int calls = 0;
  const GenerateResult result =
      generate(session, *tokenizer_, prompt_, options, [&](std::string_view) { return ++calls < 2; });
  EXPECT_EQ(result.finish_reason, FinishReason::Cancelled);
  EXPECT_EQ(calls, 2);
  EXPECT_LT(result.ids.size(), 16u);
}

TEST_F(GeneratorTest, CachedPrefixIsReusedWithTheSameResult) {
  const GenerateResult fresh = free_run(12);
  Session session(*model_, 0, pool_);
  GenerateOptions options;
  options.max_new_tokens = 12;
  options.sampling.temperature = 0.0;
  const GenerateResult first = run(session, options);
  EXPECT_EQ(first.cached_tokens, 0);
  // Same prompt again: everything but the last prompt token comes from the cache.
  const GenerateResult again = run(session, options);
  EXPECT_EQ(again.cached_tokens, static_cast<int>(prompt_.size()) - 1);
  EXPECT_EQ(again.ids, fresh.ids);
  // A longer prompt that continues the cached prompt + generated text reuses all of it.
  std::vector<int> longer = prompt_;
  longer.insert(longer.end(), fresh.ids.begin(), fresh.ids.end() - 1);
  const std::vector<int> cached(session.tokens().begin(), session.tokens().end());
  ASSERT_EQ(cached, longer);
  longer.push_back(fresh.ids.back());
  const GenerateResult continued =
      generate(session, *tokenizer_, longer, options, [](std::string_view) { return true; });
  EXPECT_EQ(continued.cached_tokens, static_cast<int>(longer.size()) - 1);
  Session cold(*model_, 0, pool_);
  const GenerateResult reference =
      generate(cold, *tokenizer_, longer, options, [](std::string_view) { return true; });
  EXPECT_EQ(continued.ids, reference.ids);
}

TEST_F(GeneratorTest, SeededSamplingIsReproducible) {
  auto sample_run = [&](uint64_t seed) {
    Session session(*model_, 0, pool_);
    GenerateOptions options;
    options.max_new_tokens = 24;
    options.sampling = {.temperature = 1.0, .top_k = 40, .top_p = 0.95, .seed = seed};
    return run(session, options).ids;
  };
  EXPECT_EQ(sample_run(3), sample_run(3));
  EXPECT_NE(sample_run(3), sample_run(4));
}

TEST_F(GeneratorTest, BadInputsAreErrors) {
  Session session(*model_, 4, pool_);
  GenerateOptions options;
  auto error_of = [&](const std::vector<int>& prompt, const GenerateOptions& o) -> std::string {
    try {
      generate(session, *tokenizer_, prompt, o, [](std::string_view) { return true; });
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string too_long = error_of(prompt_, options);  // 5+ tokens, capacity 4
  EXPECT_NE(too_long.find(std::to_string(prompt_.size())), std::string::npos) << too_long;
  EXPECT_NE(too_long.find("4"), std::string::npos) << too_long;
  EXPECT_NE(error_of({}, options).find("no tokens"), std::string::npos);
  GenerateOptions negative = options;
  negative.max_new_tokens = -1;
  EXPECT_NE(error_of({1}, negative).find("--max-new-tokens"), std::string::npos);
  GenerateOptions bad_top_p = options;
  bad_top_p.sampling.top_p = 0.0;
  EXPECT_NE(error_of({1}, bad_top_p).find("--top-p"), std::string::npos);
  GenerateOptions empty_stop = options;
  empty_stop.stop_strings = {""};
  EXPECT_NE(error_of({1}, empty_stop).find("--stop"), std::string::npos);
}

}  // namespace
}  // namespace tulu
