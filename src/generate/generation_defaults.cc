// Generation defaults from generation_config.json plus user overrides (see the header).
#include "generate/generation_defaults.h"

#include <random>

#include "core/error.h"

namespace tulu {

std::vector<int> resolve_eos_ids(const LlamaModel& model, const Tokenizer& tokenizer) {
  if (!model.generation_config().eos_token_ids.empty()) {
    return model.generation_config().eos_token_ids;
  }
  if (!model.config().eos_token_ids.empty()) return model.config().eos_token_ids;
  return {tokenizer.eos_id()};
}

GenerateOptions resolve_generate_options(const GenerationConfig& generation_config,
                                         const GenerationOverrides& overrides,
                                         std::vector<int> eos_ids) {
  GenerateOptions options;
  SamplingParams& s = options.sampling;
  if (generation_config.do_sample.value_or(false)) {
    s.temperature = generation_config.temperature.value_or(1.0);
    s.top_k = generation_config.top_k.value_or(50);
    s.top_p = generation_config.top_p.value_or(1.0);
  } else {
    s.temperature = 0.0;
  }
  s.repetition_penalty = generation_config.repetition_penalty.value_or(1.0);
  options.max_new_tokens = generation_config.max_new_tokens.value_or(kDefaultMaxNewTokens);

  if (overrides.temperature) s.temperature = *overrides.temperature;
  if (overrides.top_k) s.top_k = *overrides.top_k;
  if (overrides.top_p) s.top_p = *overrides.top_p;
  if (overrides.min_p) s.min_p = *overrides.min_p;
  if (overrides.repetition_penalty) s.repetition_penalty = *overrides.repetition_penalty;
  if (overrides.max_new_tokens) options.max_new_tokens = *overrides.max_new_tokens;
  s.seed = overrides.seed ? *overrides.seed : std::random_device{}();
  options.stop_strings = overrides.stop_strings;
  options.eos_ids = std::move(eos_ids);

  validate_sampling(s);
  TULU_CHECK(options.max_new_tokens >= 0, "-n/--max-new-tokens must be >= 0, got ",
             options.max_new_tokens);
  for (const std::string& stop : options.stop_strings) {
    TULU_CHECK(!stop.empty(), "--stop: a stop string must not be empty");
  }
  return options;
}

std::vector<std::string> ignored_in_greedy(const GenerationOverrides& overrides,
                                           const SamplingParams& resolved) {
  std::vector<std::string> ignored;
  if (resolved.temperature != 0.0) return ignored;
  if (overrides.top_k) ignored.push_back("--top-k");
  if (overrides.top_p) ignored.push_back("--top-p");
  if (overrides.min_p) ignored.push_back("--min-p");
  if (overrides.seed) ignored.push_back("--seed");
  return ignored;
}

}  // namespace tulu
