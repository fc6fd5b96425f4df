// The generation loop: prompt processed as one batch, then one token at a time through the
// KV cache, streaming text through an incremental decoder, stopping at an EOS id, a stop
// string (not included in the output, and text that may be the start of a stop string is
// held back until it is known not to be), max_new_tokens, or the context's end.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "generate/sampler.h"
#include "llama/session.h"
#include "tokenizer/tokenizer.h"

namespace tulu {

struct GenerateOptions {
  int max_new_tokens = 256;
  std::vector<std::string> stop_strings;
  std::vector<int> eos_ids;  // from generation_config.json / config.json
  SamplingParams sampling;
};

enum class FinishReason { Eos, StopString, Length, ContextFull, Cancelled };
std::string_view finish_reason_name(FinishReason reason);

struct GenerateResult {
  std::vector<int> ids;  // generated ids (EOS excluded)
  std::string text;      // generated text, stop string excluded
  FinishReason finish_reason = FinishReason::Length;
  int prompt_tokens = 0;
  double prompt_seconds = 0.0;
  double generate_seconds = 0.0;
};

// on_text receives each new piece of text as it becomes final; returning false cancels.
// Cached tokens of the session that are a prefix of prompt_ids are reused; the session is
// rewound to the longest common prefix and only the rest of the prompt is evaluated.
GenerateResult generate(Session& session, const Tokenizer& tokenizer,
                        std::span<const int> prompt_ids, const GenerateOptions& options,
                        const std::function<bool(std::string_view)>& on_text);

}  // namespace tulu
