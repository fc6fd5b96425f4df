// SFT data: JSON Lines → token ids and labels, as open-instruct's finetune.py encodes them.
//  * {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]} (the
//    allenai/tulu-v2-sft-mixture rows; other fields ignored): encode_with_messages_format —
//    text = Tulu chat format of all messages ("<|system|>\n" c "\n", "<|user|>\n" c "\n",
//    "<|assistant|>\n" c "</s>\n", every content c .strip()'ed as Python does), then the
//    whole text stripped; tokenized with BOS, right-truncated at max_seq_length; labels =
//    ids with every non-assistant span masked (−100), the span of message i ending at the
//    length of the tokenized prefix up to and including message i (plus "<|assistant|>\n"
//    when the next message is the assistant's), so the assistant content and its "</s>"
//    carry the loss (and the "\n" after "</s>" when another message follows, since the
//    next message's span starts after it, as in open-instruct); masking stops after the
//    first span that reaches max_seq_length (as open-instruct's loop breaks).
//  * {"prompt": str, "completion": str}: encode_with_prompt_completion_format — a space
//    joins them unless the prompt ends or the completion starts with whitespace; "</s>"
//    appended; the tokenized prompt's length (with BOS, truncated) is masked. Neither is
//    stripped.
//  * {"text": str}: pre-training rows, ids = BOS + text + EOS, every token a target.
// The first of these a row has (non-null) decides its kind. "</s>" written in the text is
// the EOS token (the tokenizer splits added tokens out, as Hugging Face's legacy mode).
// A row whose labels are all −100 after truncation is dropped and counted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "tokenizer/tokenizer.h"

namespace tulu {

struct SftExample {
  std::vector<int> input_ids;
  std::vector<int> labels;  // same length; −100 = no loss
  int64_t line = 0;         // 1-based line in the source file
};

struct SftDataOptions {
  int64_t max_seq_length = 8192;
  bool skip_bad_rows = false;  // malformed rows counted and skipped instead of an error
  int threads = 0;             // tokenizing threads (0 = all hardware threads); the result
                               // does not depend on it
};

struct SftDataset {
  std::vector<SftExample> examples;
  int64_t rows_read = 0;  // non-empty lines
  int64_t dropped_no_labels = 0;
  int64_t truncated = 0;      // rows cut at max_seq_length
  int64_t bad_rows = 0;       // skipped (skip_bad_rows only)
  std::string first_bad_row;  // the first skipped row's error message
};

// Reads and tokenizes a JSONL file. Errors (tulu::Error) name the file, the 1-based line and
// the field, e.g. "data.jsonl:7: field messages[2].role: expected a string, got 5"; invalid
// UTF-8 and malformed JSON name the line too. Blank lines are skipped. An empty file or one
// with no usable row is an error. Examples keep the file's order.
SftDataset load_sft_jsonl(const std::string& path, const Tokenizer& tokenizer,
                          const SftDataOptions& options);

// Tokenizes one row (already parsed); exposed for tests. `where` prefixes error messages.
// Returns false when the row has no target token (dropped).
bool encode_sft_row(const Json& row, const Tokenizer& tokenizer, int64_t max_seq_length,
                    const std::string& where, SftExample& out, bool* truncated);

}  // namespace tulu
