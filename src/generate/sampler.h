// Next-token selection in Hugging Face's order: repetition penalty (over all ids so far,
// prompt included), then temperature, top-k, top-p, min-p; greedy when temperature is 0.
// Seeded: the same seed, logits and history give the same token on every machine.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace tulu {

struct SamplingParams {
  double temperature = 1.0;         // 0 = greedy; else > 0
  int top_k = 0;                    // 0 = off; else ≥ 1
  double top_p = 1.0;               // (0, 1]; 1 = off
  double min_p = 0.0;               // [0, 1]; 0 = off
  double repetition_penalty = 1.0;  // > 0; 1 = off
  uint64_t seed = 0;
};

// Throws tulu::Error naming the option (as the CLI spells it) and its valid range.
void validate_sampling(const SamplingParams& params);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);  // validates
  // logits: [vocab], modified in place. history: every id so far (prompt + generated).
  int sample(std::span<float> logits, std::span<const int> history);
  const SamplingParams& params() const { return params_; }

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int> order_;  // scratch: candidate ids sorted by logit
};

}  // namespace tulu
