// The generation loop (see generator.h for the contract).
#include "generate/generator.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"
#include "generate/stop_strings.h"

namespace tulu {

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::Eos:
      return "eos";
    case FinishReason::StopString:
      return "stop";
    case FinishReason::Length:
      return "length";
    case FinishReason::ContextFull:
      return "context_full";
    case FinishReason::Cancelled:
      return "cancelled";
  }
  return "unknown";
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Evaluates the part of the prompt that the session has not cached yet and returns the
// logits of the last prompt token. Sets result.cached_tokens.
std::span<const float> eval_prompt(Session& session, std::span<const int> prompt,
                                   GenerateResult& result) {
  const std::span<const int> cached = session.tokens();
  const size_t limit = std::min(cached.size(), prompt.size());
  size_t common = 0;
  while (common < limit && cached[common] == prompt[common]) ++common;
  // The last prompt token is always evaluated: its logits choose the first new token.
  common = std::min(common, prompt.size() - 1);
  session.rewind(static_cast<int>(common));
  result.cached_tokens = static_cast<int>(common);
  return session.eval(prompt.subspan(common), /*all_logits=*/false);
}

}  // namespace

GenerateResult generate(Session& session, const Tokenizer& tokenizer,
                        std::span<const int> prompt_ids, const GenerateOptions& options,
                        const std::function<bool(std::string_view)>& on_text) {
  TULU_CHECK(!prompt_ids.empty(), "generate: the prompt has no tokens");
  TULU_CHECK(options.max_new_tokens >= 0, "-n/--max-new-tokens must be >= 0, got ",
             options.max_new_tokens);
  const int prompt_length = static_cast<int>(prompt_ids.size());
  TULU_CHECK(prompt_length <= session.capacity(), "the prompt has ", prompt_length,
             " tokens but the context holds only ", session.capacity(),
             " (raise --ctx-size up to the model's max_position_embeddings, or shorten the prompt)");
  Sampler sampler(options.sampling);  // validates the sampling values
  StopStringMatcher stops(options.stop_strings);

  GenerateResult result;
  result.prompt_tokens = prompt_length;
  const Clock::time_point prompt_start = Clock::now();
  std::span<const float> next_logits = eval_prompt(session, prompt_ids, result);
  result.prompt_seconds = seconds_since(prompt_start);
  const Clock::time_point generate_start = Clock::now();

  std::vector<int> history(prompt_ids.begin(), prompt_ids.end());
  std::vector<float> logits(next_logits.size());
  IncrementalDecoder decoder(tokenizer, /*skip_special=*/true);
  bool cancelled = false;
  auto emit = [&](const std::string& text) {
    if (text.empty() || cancelled) return;
    result.text += text;
    if (!on_text(text)) cancelled = true;
  };

  result.finish_reason = FinishReason::Length;
  for (int step = 0; step < options.max_new_tokens; ++step) {
    std::copy(next_logits.begin(), next_logits.end(), logits.begin());
    const int id = sampler.sample(logits, history);
    if (std::find(options.eos_ids.begin(), options.eos_ids.end(), id) != options.eos_ids.end()) {
      result.finish_reason = FinishReason::Eos;
      break;
    }
    result.ids.push_back(id);
    history.push_back(id);
    emit(stops.push(decoder.push(id)));
    if (cancelled) {
      result.finish_reason = FinishReason::Cancelled;
      break;
    }
    if (stops.stopped()) {
      result.finish_reason = FinishReason::StopString;
      break;
    }
    if (step + 1 == options.max_new_tokens) break;  // Length
    if (session.pos() >= session.capacity()) {
      result.finish_reason = FinishReason::ContextFull;
      break;
    }
    next_logits = session.eval(std::span<const int>(&id, 1), /*all_logits=*/false);
  }

  if (result.finish_reason != FinishReason::Cancelled &&
      result.finish_reason != FinishReason::StopString) {
    // Bytes of an unfinished character (rendered as U+FFFD, as HF decode does) and text
    // held back as a possible stop string start are final now.
    emit(stops.push(decoder.flush()));
    if (stops.stopped()) result.finish_reason = FinishReason::StopString;
    emit(stops.flush());
    if (cancelled) result.finish_reason = FinishReason::Cancelled;
  }
  result.generate_seconds = seconds_since(generate_start);
  return result;
}

}  // namespace tulu
