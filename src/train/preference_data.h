// DPO preference data: JSON Lines → (prompt, chosen, rejected) token ids.
// Row forms (the first that matches decides; other fields are ignored):
//  * HuggingFaceH4/ultrafeedback_binarized: {"chosen": [messages], "rejected": [messages],
//    "prompt": str, ...} — each side a conversation ({"role": "system"|"user"|"assistant",
//    "content": str}) whose last message is the assistant reply and whose earlier messages
//    (the prompt) are the same on both sides. "prompt" is used only when the sides have no
//    earlier message: it is then one user turn.
//  * plain: {"prompt": str, "chosen": str, "rejected": str} — the prompt is one user turn.
// Tokenization (TULU2.md: each side like SFT, the prompt masked, the final reply plus </s>
// scored): the Tulu chat text of the prompt messages ("<|system|>\n" c "\n", "<|user|>\n" c
// "\n", "<|assistant|>\n" c "</s>\n", every content c .strip()'ed as finetune.py does) plus
// "<|assistant|>\n", encoded with BOS = prompt_ids; each side's full text (prompt text +
// reply.strip() + "</s>", as SFT's stripped text) encoded with BOS, minus its first
// |prompt_ids| tokens = that side's completion ids (open-instruct's mask: the first
// len(tokenize(prompt)) tokens are the prompt). The completion always ends in </s>.
// Truncation (TRL's DPO rule with its default truncation_mode "keep_end"): when
// |prompt| + max(|chosen|, |rejected|) > max_length, first the prompt is cut to
// max_prompt_length tokens keeping BOS and the END of the prompt (skipped when
// max_prompt_length is -1); then, if still too long, both completions are cut to
// max_length − |prompt| tokens keeping their start. A pair whose chosen or rejected completion
// is then empty is dropped and counted. Identical chosen and rejected are allowed.
// Two differences from TRL's tokenize_row, both to waste nothing and keep the SFT input shape:
// TRL's keep_end slice prompt[-max_prompt_length:] loses BOS, here BOS stays in front (the
// model never saw a sequence without it in SFT); TRL cuts completions to max_length −
// max_prompt_length even when the prompt is shorter, here to what the prompt leaves (the
// same length whenever the prompt was cut). BOS counts in max_prompt_length.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace tulu {

struct PreferencePair {
  std::vector<int> prompt_ids;    // BOS + rendered prompt incl. "<|assistant|>\n"
  std::vector<int> chosen_ids;    // completion tokens incl. the final </s> (unless truncated)
  std::vector<int> rejected_ids;  // likewise
  int64_t line = 0;               // 1-based line in the source file
};

struct PreferenceDataOptions {
  int64_t max_length = 8192;       // prompt + longer completion, in tokens (≥ 1)
  int64_t max_prompt_length = -1;  // -1: no separate prompt limit; else ≥ 1
  bool skip_bad_rows = false;      // malformed rows counted and skipped instead of an error
  int threads = 0;                 // tokenizing threads (0 = all hardware threads); the result
                                   // does not depend on it
};

struct PreferenceDataset {
  std::vector<PreferencePair> pairs;
  int64_t rows_read = 0;      // non-empty lines
  int64_t dropped_empty = 0;  // a completion empty after truncation
  int64_t truncated = 0;      // rows whose prompt or completions were cut (kept or dropped)
  int64_t bad_rows = 0;       // skipped (skip_bad_rows only)
  std::string first_bad_row;  // the first skipped row's error message
};

// Reads and tokenizes a JSONL file. Errors (tulu::Error) name the file, the 1-based line and
// the field, e.g. "prefs.jsonl:7: field rejected[0].content: differs from chosen[0].content
// (the prompt messages must be the same)"; invalid UTF-8 and malformed JSON name the line too.
// Blank lines are skipped. An empty file or one with no usable pair is an error. Pairs keep
// the file's order.
PreferenceDataset load_preference_jsonl(const std::string& path, const Tokenizer& tokenizer,
                                        const PreferenceDataOptions& options);

// Tokenizes one parsed row; exposed for tests. `where` prefixes error messages. Returns false
// when the pair is dropped (a completion empty after truncation); *truncated tells whether
// anything was cut.
bool encode_preference_row(const Json& row, const Tokenizer& tokenizer,
                           const PreferenceDataOptions& options, const std::string& where,
                           PreferencePair& out, bool* truncated);

}  // namespace tulu
