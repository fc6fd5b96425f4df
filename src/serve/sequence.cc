// Step-wise generation (see sequence.h). The order of operations is generate()'s
// (generate/generator.cc), so that greedy output through the server equals `tulu generate`.
#include "serve/sequence.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"

namespace tulu {

namespace {

constexpr int kMaxTopLogprobs = 20;  // OpenAI's limit

const SequenceParams& validated(const SequenceParams& p) {
  TULU_CHECK(!p.prompt_ids.empty(), "the prompt has no tokens");
  TULU_CHECK(p.options.max_new_tokens >= 1, "max_tokens must be >= 1, got ",
             p.options.max_new_tokens);
  TULU_CHECK(p.presence_penalty >= -2.0 && p.presence_penalty <= 2.0,
             "presence_penalty must be in [-2, 2], got ", p.presence_penalty);
  TULU_CHECK(p.frequency_penalty >= -2.0 && p.frequency_penalty <= 2.0,
             "frequency_penalty must be in [-2, 2], got ", p.frequency_penalty);
  TULU_CHECK(p.top_logprobs <= kMaxTopLogprobs, "top_logprobs must be in [0, ", kMaxTopLogprobs,
             "], got ", p.top_logprobs);
  return p;
}

// log-softmax of `logits` at `id`, and the `k` most probable ids with theirs.
void fill_logprobs(std::span<const float> logits, int k, SampledToken& token) {
  const float max_logit = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (const float v : logits) sum += std::exp(static_cast<double>(v - max_logit));
  const double log_sum = std::log(sum) + static_cast<double>(max_logit);
  auto logprob = [&](int id) {
    return static_cast<float>(static_cast<double>(logits[static_cast<size_t>(id)]) - log_sum);
  };
  token.logprob = logprob(token.id);
  if (k <= 0) return;
  std::vector<int> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  const auto top = static_cast<size_t>(std::min<int64_t>(k, static_cast<int64_t>(order.size())));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
                    [&](int a, int b) {
                      const float la = logits[static_cast<size_t>(a)];
                      const float lb = logits[static_cast<size_t>(b)];
                      return la != lb ? la > lb : a < b;
                    });
  for (size_t i = 0; i < top; ++i) token.top.emplace_back(order[i], logprob(order[i]));
}

}  // namespace

Sequence::Sequence(const Tokenizer& tokenizer, SequenceParams params)
    : tokenizer_(tokenizer),
      params_(std::move(params)),
      sampler_(validated(params_).options.sampling),
      stops_(params_.options.stop_strings),
      decoder_(tokenizer, /*skip_special=*/true),
      history_(params_.prompt_ids) {}

StepOutput Sequence::step(std::span<const float> logits, int cache_pos, int capacity) {
  StepOutput out;
  if (finished_) return out;
  logits_.assign(logits.begin(), logits.end());
  if (params_.presence_penalty != 0.0 || params_.frequency_penalty != 0.0) {
    counts_.resize(logits_.size(), 0);
    for (const int id : generated_) {
      if (id >= 0 && static_cast<size_t>(id) < counts_.size()) ++counts_[static_cast<size_t>(id)];
    }
    for (const int id : generated_) {
      const auto i = static_cast<size_t>(id);
      if (i >= counts_.size() || counts_[i] == 0) continue;
      logits_[i] -=
          static_cast<float>(counts_[i] * params_.frequency_penalty + params_.presence_penalty);
      counts_[i] = 0;  // each distinct id once; also resets the counts for the next step
    }
  }
  SampledToken token;
  std::vector<float> for_logprobs;
  if (params_.top_logprobs >= 0) for_logprobs = logits_;
  token.id = sampler_.sample(logits_, history_);
  const auto& eos = params_.options.eos_ids;
  if (std::find(eos.begin(), eos.end(), token.id) != eos.end()) {
    finish(FinishReason::Eos, out);
    return out;
  }
  if (params_.top_logprobs >= 0) fill_logprobs(for_logprobs, params_.top_logprobs, token);
  generated_.push_back(token.id);
  history_.push_back(token.id);
  out.token = std::move(token);
  out.text = stops_.push(decoder_.push(out.token->id));
  text_ += out.text;
  if (stops_.stopped()) {
    finished_ = true;
    finish_reason_ = FinishReason::StopString;
  } else if (static_cast<int>(generated_.size()) >= params_.options.max_new_tokens) {
    finish(FinishReason::Length, out);
  } else if (cache_pos >= capacity) {
    finish(FinishReason::ContextFull, out);
  }
  return out;
}

void Sequence::finish(FinishReason reason, StepOutput& out) {
  finished_ = true;
  finish_reason_ = reason;
  // Bytes of an unfinished character and text held back as a possible stop string start
  // are final now (as in generate()).
  std::string tail = stops_.push(decoder_.flush());
  if (stops_.stopped()) finish_reason_ = FinishReason::StopString;
  tail += stops_.flush();
  text_ += tail;
  out.text += tail;
}

void Sequence::cancel() {
  finished_ = true;
  finish_reason_ = FinishReason::Cancelled;
}

std::string openai_finish_reason(FinishReason reason) {
  return reason == FinishReason::Length || reason == FinishReason::ContextFull ? "length" : "stop";
}

std::string tgi_finish_reason(FinishReason reason) {
  switch (reason) {
    case FinishReason::Eos:
      return "eos_token";
    case FinishReason::StopString:
      return "stop_sequence";
    default:
      return "length";
  }
}

}  // namespace tulu
