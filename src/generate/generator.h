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
  int max_new_tokens = 256;                // ≥ 0
  std::vector<std::string> stop_strings;  // each non-empty
  std::vector<int> eos_ids;  // from generation_config.json / config.json; empty = none
  SamplingParams sampling;
};

enum class FinishReason { Eos, StopString, Length, ContextFull, Cancelled };
std::string_view finish_reason_name(FinishReason reason);

struct GenerateResult {
  std::vector<int> ids;  // generated ids (EOS excluded)
  std::string text;      // generated text, stop string excluded
  FinishReason finish_reason = FinishReason::Length;
  int prompt_tokens = 0;
  int cached_tokens = 0;          // prompt tokens whose keys/values were reused from the cache
  double prompt_seconds = 0.0;    // evaluating the prompt (the uncached part)
  double generate_seconds = 0.0;  // everything after: sampling and one-token steps
};

// on_text receives each new piece of text as it becomes final (never a broken UTF-8
// sequence; special tokens are not rendered); returning false cancels.
// Cached tokens of the session that are a prefix of prompt_ids are reused; the session is
// rewound to the longest common prefix and only the rest of the prompt is evaluated (at
// least its last token, for the logits).
// The sampled token is evaluated only when another one is to follow, so afterwards the
// session caches the prompt and the generated ids except the last (and never the EOS).
// Throws tulu::Error for an empty prompt, a prompt longer than session.capacity() (naming
// both lengths), invalid sampling values, max_new_tokens < 0 or an empty stop string.
GenerateResult generate(Session& session, const Tokenizer& tokenizer,
                        std::span<const int> prompt_ids, const GenerateOptions& options,
                        const std::function<bool(std::string_view)>& on_text);

}  // namespace tulu
