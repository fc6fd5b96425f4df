// Next-token selection in Hugging Face's order: repetition penalty (over all ids so far,
// prompt included), then temperature, top-k, top-p, min-p; greedy when temperature is 0.
// Seeded: the same seed, logits and history give the same token on every machine.
//
// Semantics are transformers' logits processors (generation/logits_process.py), with the
// conditions under which generate() installs them:
//  * repetition penalty (≠ 1): each distinct id of the history once,
//    score < 0 ? score * penalty : score / penalty (float32 arithmetic, as torch);
//  * temperature (≠ 1): score / temperature (float32);
//  * top-k (≠ 0): drop scores strictly below the k-th largest (ties with it are kept);
//  * top-p (< 1): in ascending order drop tokens whose cumulative probability is
//    ≤ 1 − top_p; the most probable token is always kept;
//  * min-p (> 0): drop tokens with probability < min_p × the largest probability;
//  * the token is drawn from the softmax of what is left (computed in double).
// Greedy (temperature 0) = HF's do_sample=False: the repetition penalty, then argmax (the
// first index on ties, as torch.argmax); the other filters have no effect.
// Ties in ordering (top-p) follow a stable ascending sort, as torch's CPU sort: of equal
// scores the higher id counts as the more probable.
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

// One token of the distribution a draw is made from.
struct TokenProb {
  int id = 0;
  double prob = 0.0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);  // validates
  // logits: [vocab], modified in place. history: every id so far (prompt + generated).
  // Throws tulu::Error when a history id is outside [0, vocab) or a logit is NaN.
  int sample(std::span<float> logits, std::span<const int> history);
  const SamplingParams& params() const { return params_; }

  // The distribution sample() would draw from for these logits and history, without
  // drawing: the tokens that survive the filters with their probabilities (sum 1), most
  // probable first (ties: higher id first). Greedy gives its one token with probability 1.
  // Logits are modified in place as by sample(). For tests and diagnostics.
  std::vector<TokenProb> distribution(std::span<float> logits, std::span<const int> history);

 private:
  // Applies the processors. Leaves the surviving ids in order_[0, count) (in no
  // particular order unless a filter sorted them) and their unnormalised weights
  // exp(score − max score) in weights_[id]; returns count and sets total_weight_.
  size_t filter(std::span<float> logits, std::span<const int> history);
  void apply_repetition_penalty(std::span<float> logits, std::span<const int> history);
  // Top-p over order_[0, count) (see the header comment); order_[0, sorted_count) is
  // already sorted most probable first. Returns the new count (the kept ids first).
  size_t apply_top_p(std::span<const float> logits, size_t count, size_t sorted_count);

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int> order_;       // scratch [vocab]: candidate ids
  std::vector<double> weights_;  // scratch [vocab]: exp(score − max) by id
  std::vector<uint8_t> seen_;    // scratch [vocab]: history ids already penalised
  double total_weight_ = 0.0;    // sum of weights_ over order_[0, count)
};

}  // namespace tulu
