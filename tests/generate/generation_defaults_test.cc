// Generation defaults from generation_config.json (Hugging Face generate()'s rules) and the
// user's overrides. (EOS ids from generation_config.json overriding config.json's are
// checked end to end in tests/py/test_generate_parity.py.)
#include "generate/generation_defaults.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace tulu {
namespace {

TEST(GenerationDefaults, GreedyUnlessTheModelAsksForSampling) {
  GenerationOverrides none;
  none.seed = 1;
  const GenerateOptions greedy = resolve_generate_options(GenerationConfig{}, none, {2});
  EXPECT_EQ(greedy.sampling.temperature, 0.0);
  EXPECT_EQ(greedy.max_new_tokens, kDefaultMaxNewTokens);
  EXPECT_EQ(greedy.eos_ids, std::vector<int>{2});

  GenerationConfig sampling;
  sampling.do_sample = true;
  sampling.top_p = 0.9;
  sampling.repetition_penalty = 1.2;
  sampling.max_new_tokens = 77;
  const GenerateOptions sampled = resolve_generate_options(sampling, none, {2});
  EXPECT_EQ(sampled.sampling.temperature, 1.0);  // HF's default temperature
  EXPECT_EQ(sampled.sampling.top_k, 50);         // HF's default top_k
  EXPECT_EQ(sampled.sampling.top_p, 0.9);
  EXPECT_EQ(sampled.sampling.repetition_penalty, 1.2);
  EXPECT_EQ(sampled.max_new_tokens, 77);

  GenerationConfig no_sample = sampling;
  no_sample.do_sample = false;  // its temperature / top_p are then ignored, as by HF
  no_sample.temperature = 0.6;
  const GenerateOptions still_greedy = resolve_generate_options(no_sample, none, {2});
  EXPECT_EQ(still_greedy.sampling.temperature, 0.0);
  EXPECT_EQ(still_greedy.sampling.repetition_penalty, 1.2);  // applies to greedy too
}

TEST(GenerationDefaults, OverridesWinAndAreValidated) {
  GenerationConfig sampling;
  sampling.do_sample = true;
  sampling.temperature = 0.6;
  GenerationOverrides o;
  o.temperature = 0.0;
  o.top_k = 5;
  o.max_new_tokens = 3;
  o.seed = 42;
  o.stop_strings = {"###"};
  const GenerateOptions options = resolve_generate_options(sampling, o, {2, 7});
  EXPECT_EQ(options.sampling.temperature, 0.0);
  EXPECT_EQ(options.sampling.top_k, 5);
  EXPECT_EQ(options.sampling.seed, 42u);
  EXPECT_EQ(options.max_new_tokens, 3);
  EXPECT_EQ(options.stop_strings, std::vector<std::string>{"###"});
  EXPECT_EQ(ignored_in_greedy(o, options.sampling), (std::vector<std::string>{"--top-k", "--seed"}));

  GenerationOverrides bad;
  bad.min_p = 3.0;
  EXPECT_THROW(resolve_generate_options(sampling, bad, {2}), Error);
  GenerationOverrides negative;
  negative.max_new_tokens = -5;
  EXPECT_THROW(resolve_generate_options(sampling, negative, {2}), Error);
}

}  // namespace
}  // namespace tulu
