// One generation sequence advanced a token at a time by the scheduler (serve/scheduler.h):
// the same rules as generate() in generate/generator.h — sampling in Hugging Face's order
// over prompt + generated ids, EOS excluded from the output, stop strings held back until
// known, max_new_tokens, the context's end — but driven from outside, so that many
// sequences can share one batched forward step. Also OpenAI's presence / frequency
// penalties (over generated ids only) and log-probabilities. Not thread-safe.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "generate/generator.h"
#include "generate/sampler.h"
#include "generate/stop_strings.h"
#include "tokenizer/tokenizer.h"

namespace tulu {

struct SequenceParams {
  std::vector<int> prompt_ids;  // with BOS; non-empty
  GenerateOptions options;      // max_new_tokens ≥ 1, stop strings, EOS ids, sampling
  // OpenAI's penalties, applied to the logits before the sampler:
  // logit[j] -= count[j] · frequency_penalty + (count[j] > 0) · presence_penalty, where
  // count[j] is how often j was generated so far (the prompt does not count). [-2, 2].
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  // < 0: no log-probabilities; else the chosen token's log-probability and this many most
  // probable alternatives (log-softmax of the model's logits after the penalties).
  int top_logprobs = -1;
};

// One sampled token (EOS never appears: it ends the sequence without a token).
struct SampledToken {
  int id = 0;
  float logprob = 0.0f;                    // when top_logprobs ≥ 0
  std::vector<std::pair<int, float>> top;  // most probable first
};

// What one step released.
struct StepOutput {
  std::optional<SampledToken> token;  // absent when the step ended at EOS
  std::string text;                   // text that became final (may be empty)
};

class Sequence {
 public:
  // Validates the params (tulu::Error naming the field).
  Sequence(const Tokenizer& tokenizer, SequenceParams params);

  const SequenceParams& params() const { return params_; }
  // Consumes the logits [vocab] of the last evaluated position: samples a token and
  // releases its text. cache_pos/capacity: the session's cached positions and size, to
  // stop when the chosen token could not be evaluated. After it, finished() or
  // next_input() (the id the session must evaluate next).
  StepOutput step(std::span<const float> logits, int cache_pos, int capacity);
  // Ends the sequence as cancelled (no more text).
  void cancel();

  bool finished() const { return finished_; }
  FinishReason finish_reason() const { return finish_reason_; }
  int next_input() const { return generated_.back(); }
  const std::vector<int>& generated() const { return generated_; }
  const std::string& text() const { return text_; }

 private:
  // Ends with `reason`, releasing held-back text into `out` (unless stopped/cancelled).
  void finish(FinishReason reason, StepOutput& out);

  const Tokenizer& tokenizer_;
  SequenceParams params_;
  Sampler sampler_;
  StopStringMatcher stops_;
  IncrementalDecoder decoder_;
  std::vector<int> history_;    // prompt + generated
  std::vector<int> generated_;  // EOS excluded
  std::vector<int> counts_;     // [vocab] generated occurrences (penalties), lazily sized
  std::vector<float> logits_;   // scratch [vocab]
  std::string text_;
  bool finished_ = false;
  FinishReason finish_reason_ = FinishReason::Length;
};

// OpenAI's finish_reason: "stop" (EOS or a stop string), "length" (max tokens, context).
std::string openai_finish_reason(FinishReason reason);
// text-generation-inference's: "eos_token", "stop_sequence", "length".
std::string tgi_finish_reason(FinishReason reason);

}  // namespace tulu
